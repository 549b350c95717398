"""Metaflow's own ContentAddressedStore + LocalStorage, stock vs the cas_h
extension, on one large pickle (needs Metaflow on PYTHONPATH):

  PYTHONPATH=/path/to/metaflow:python /usr/bin/python3 python/tools/bench_metaflow.py [MiB]
"""
import os
import pickle
import shutil
import sys
import tempfile
import time

import numpy as np

from metaflow.datastore.content_addressed_store import ContentAddressedStore
from metaflow.plugins.datastores.local_storage import LocalStorage

from metaflow_extensions.cas_h import cas_store


def payload(mib):
    rng = np.random.default_rng(1)
    n = (mib << 20) // 16
    return pickle.dumps((np.round(rng.random(n) * 1000, 3), rng.integers(0, 50, n)), protocol=4)


def one(data, label, reps=3):
    """Best of `reps` fresh saves (into an empty store) and loads."""
    save = again = load = float("inf")
    for _ in range(reps):
        root = tempfile.mkdtemp()
        try:
            st = ContentAddressedStore("BenchFlow/data", LocalStorage(root))
            t0 = time.perf_counter()
            (res,) = st.save_blobs([data])
            t1 = time.perf_counter()
            ((key, back),) = list(st.load_blobs([res.key]))
            t2 = time.perf_counter()
            st.save_blobs([data])  # the key exists: what re-saving an artifact a step read costs
            t3 = time.perf_counter()
            assert back == data and key == res.key
            size = os.path.getsize(os.path.join(root, "BenchFlow/data", key[:2], key))
            save, load, again = min(save, t1 - t0), min(load, t2 - t1), min(again, t3 - t2)
            del back
        finally:
            shutil.rmtree(root)
    mbs = lambda t: len(data) / t / 1e6  # noqa: E731
    print("%-32s save %5.2f s (%4.0f MB/s)  load %5.2f s (%4.0f MB/s)  re-save %5.2f s  blob %4.1f%%" % (
        label, save, mbs(save), load, mbs(load), again, 100.0 * size / len(data)))


def main():
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    data = payload(mib)
    print("%d MiB pickle (%d bytes), Metaflow's ContentAddressedStore + LocalStorage" % (mib, len(data)))
    cas_store.uninstall()
    one(data, "stock Metaflow (gzip level 3)")
    cas_store.install(version=1)
    one(data, "cas_h extension, cas_version 1")
    cas_store.install(version=2)
    one(data, "cas_h extension, cas_version 2")
    cas_store.uninstall()


if __name__ == "__main__":
    main()
