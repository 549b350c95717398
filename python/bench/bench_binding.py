"""Measures the choices the binding makes (run from the repo root after make):

  /usr/bin/python3 python/bench/bench_binding.py [MiB ...]

- unpack output: decode straight into a bytes object sized by the blob's own
  size field (what cas_h.unpack does) vs C's buffer + one copy out
  (cas_reader_unpack + ctypes.string_at) vs a bytearray;
- Store.get (C buffer + copy) vs streaming into a bytes object of the known
  size (what Store.artifact does);
- pack and unpack against Python's gzip / hashlib / lz4.frame, the stock path.
"""

import ctypes
import json
import gzip
import hashlib
import os
import pickle
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import lz4.frame  # noqa: E402

import cas_h  # noqa: E402
from cas_h import _lib  # noqa: E402

c = _lib.lib


def best(f, reps=5):
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        t.append(time.perf_counter() - t0)
    return min(t)


def payload(mib):
    n = mib << 20
    rng = np.random.default_rng(1)
    # a pickled frame-like object: floats with 3 decimals + small ints + text
    floats = np.round(rng.random(n // 16) * 1000, 3)
    ints = rng.integers(0, 50, n // 16, dtype=np.int64)
    text = (b"metaflow artifact %d " * (n // 64 // 20)) % tuple(range(n // 64 // 20))
    return pickle.dumps((floats, ints, text), protocol=4)


def via_c_buffer(blob, meta):
    """The C API's own reader: decode into a C buffer, copy out."""
    r = ctypes.c_void_p()
    c.cas_reader_create(ctypes.byref(r), None)
    mb = json.dumps(meta).encode()
    c.cas_reader_begin(r, mb, len(mb), None, None)
    p, n = ctypes.c_void_p(), ctypes.c_size_t()
    assert c.cas_reader_unpack(r, blob, len(blob), ctypes.byref(p), ctypes.byref(n)) == 0
    out = ctypes.string_at(p, n.value)
    c.cas_reader_free_buffer(r, p)
    c.cas_reader_free(r)
    return out


def via_bytearray(blob, meta):
    n = cas_h.size_hint(blob, meta)
    out = bytearray(n)
    cas_h.unpack_into(blob, out, meta)
    return out


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [1, 64, 256]
    print("cas_h %s, library %s" % (cas_h.__version__, cas_h.library_path))
    for mib in sizes:
        data = payload(mib)
        n = len(data)
        mbs = lambda t: "%7.0f MB/s" % (n / t / 1e6)  # noqa: E731
        print("\n== %d MiB pickle (%d bytes)" % (mib, n))
        for version in (1, 2):
            meta = cas_h.sidecar(version)
            key, blob = cas_h.pack(data, version=version)
            print("v%d: blob %d bytes (%.1f%%)" % (version, len(blob), 100.0 * len(blob) / n))
            print("  pack   cas_h.pack (hash || compress)      %s"
                  % mbs(best(lambda: cas_h.pack(data, version=version))))
            if version == 1:
                def stock_pack():
                    hashlib.sha1(data).hexdigest()
                    gzip.compress(data, compresslevel=3)
                reps = 1 if mib > 64 else 3
                print("  pack   hashlib.sha1 + gzip level 3        %s" % mbs(best(stock_pack, reps)))
                print("  unpack gzip.decompress                    %s" % mbs(best(lambda: gzip.decompress(blob), reps)))
            else:
                print("  pack   hashlib.sha1 + lz4.frame.compress  %s" % mbs(best(
                    lambda: (hashlib.sha1(data).hexdigest(), lz4.frame.compress(data)))))
                print("  unpack lz4.frame.decompress               %s" % mbs(best(lambda: lz4.frame.decompress(blob))))
            print("  unpack into sized bytes (cas_h.unpack)   %s" % mbs(best(lambda: cas_h.unpack(blob, meta))))
            print("  unpack C buffer + string_at copy         %s" % mbs(best(lambda: via_c_buffer(blob, meta))))
            print("  unpack into bytearray                    %s" % mbs(best(lambda: via_bytearray(blob, meta))))
            assert cas_h.unpack(blob, meta) == data == via_c_buffer(blob, meta)
            root = tempfile.mkdtemp()
            try:
                with cas_h.Store(root, version=version) as st:
                    key = st.put("BenchFlow", data)
                    print("  store  get (C buffer + copy)             %s" % mbs(best(lambda: st.get("BenchFlow", key))))

                    def streamed():
                        with st.open("BenchFlow", key, expected_size=n) as f:
                            return f.readall()
                    print("  store  stream into sized bytes           %s" % mbs(best(streamed)))
                    assert streamed() == data
            finally:
                shutil.rmtree(root)


if __name__ == "__main__":
    main()
