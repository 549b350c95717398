#!/usr/bin/env python3
"""`make bench`, preview part: an artifact's value shown from its pickle (cas_pickle.h).

Every figure is timed in this run, both sides in the same process, interleaved
round by round (medians of 5 rounds).

  1. A 1 GiB float64 ndarray artifact (pickle protocol 4, as Metaflow writes it),
     stored v2 (LZ4) and v1 (gzip) in a local store. The preview (Store.preview:
     cas_store_preview, one C call) stops once the first values are in: its time
     and the decoded bytes it read, against decoding the whole artifact as it
     streams (Store.open + read in 1 MiB pieces, nothing kept: the least any
     reader that goes through the whole artifact pays, in bounded memory like the
     preview) and against what a viewer without cas does (Store.get + pickle.loads,
     i.e. Metaflow's client; it needs numpy and 2 GiB, and pays this machine's
     fresh-memory cost for them: PERF-NOTES ~230 MB/s first touch, so it is shown
     as information, not as the ratio that counts).
  2. A 64 MiB DataFrame (1M rows x 8 float64 columns, protocol 4, v2): its column
     names come after its data, so the preview reads the whole stream, skipping
     the array bytes without keeping them. Against the same streaming decode, to
     show what parsing adds on top of decoding.

Results: printed, and bench/results/preview.md.
"""
import ctypes
import os
import pickle
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))

import cas_h  # noqa: E402

# The C API itself (what a C program calls), for the bytes a preview read: a
# second handle on libcas, with its own store, not the binding's internals.
_C = ctypes.CDLL(cas_h.library_path)
_C.cas_preview_text.restype = ctypes.c_void_p
_C.cas_preview_bytes_read.restype = ctypes.c_uint64
_C.cas_preview_bytes_read.argtypes = [ctypes.c_void_p]
for _f in ("cas_store_open", "cas_store_close", "cas_preview_create", "cas_preview_free", "cas_store_preview",
           "cas_preview_text"):
    getattr(_C, _f).argtypes = None

ROUNDS = 5


def log(*a):
    print(*a, flush=True)


def preview_c(st, flow, key):
    """Store.preview's C call (cas_store_preview on a C store of the same root),
    with the decoded bytes it read."""
    c = _C
    p, s = ctypes.c_void_p(), ctypes.c_void_p()
    err = ctypes.create_string_buffer(1024)
    assert c.cas_store_open(ctypes.byref(s), st.root.encode(), None, err, ctypes.c_size_t(1024)) == 0, err.value
    assert c.cas_preview_create(ctypes.byref(p), None) == 0
    rc = c.cas_store_preview(s, flow.encode(), key.encode(), p, err, ctypes.c_size_t(1024))
    c.cas_store_close(s)
    n = ctypes.c_size_t()
    text = ctypes.string_at(c.cas_preview_text(p, ctypes.byref(n)), n.value).decode()
    read = c.cas_preview_bytes_read(p)
    c.cas_preview_free(p)
    assert rc == 0, (rc, err.value)
    return text, read


def stream_all(st, flow, key):
    total = 0
    with st.open(flow, key) as f:
        buf = bytearray(1 << 20)
        while True:
            got = f.readinto(buf)
            if not got:
                return total
            total += got


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main():
    import numpy as np

    rows = []
    with tempfile.TemporaryDirectory(prefix="cas-bench-preview-") as d:
        arr = np.arange(1 << 27, dtype=np.float64) / 3  # 1 GiB
        data = pickle.dumps(arr, protocol=4)
        del arr
        keys = {}
        for version in (2, 1):
            with cas_h.Store(d, version=version) as st:
                keys[version] = st.put("Bench%d" % version, data)
        size = len(data)
        del data
        log("1 GiB float64 ndarray (%d pickled bytes), protocol 4" % size)
        with cas_h.Store(d) as st:
            for version in (2, 1):
                flow, key = "Bench%d" % version, keys[version]
                pv, full, loads = [], [], []
                for r in range(ROUNDS):
                    t, (text, read) = timed(lambda: preview_c(st, flow, key))
                    pv.append(t)
                    t, n = timed(lambda: stream_all(st, flow, key))
                    assert n == size
                    full.append(t)
                    if r < 2:  # 2 GiB of fresh memory a round: two rounds are enough to show it
                        t, _ = timed(lambda: pickle.loads(st.get(flow, key)))
                        loads.append(t)
                p, f, lo = statistics.median(pv), statistics.median(full), statistics.median(loads)
                log("  v%d: preview %.2f ms, %.2f MiB decoded read (of %.0f MiB); whole stream decoded %.2f s "
                    "(%.0fx the preview); get + pickle.loads %.2f s (%.0fx)"
                    % (version, p * 1e3, read / 2 ** 20, size / 2 ** 20, f, f / p, lo, lo / p))
                log("      %s" % text[:100])
                rows.append(("1 GiB float64 ndarray, v%d" % version, "%.2f ms" % (p * 1e3),
                             "%.2f MiB of %.0f MiB" % (read / 2 ** 20, size / 2 ** 20), "%.2f s" % f,
                             "%.0fx" % (f / p), "%.2f s (%.0fx)" % (lo, lo / p)))

        import pandas as pd

        frame = pd.DataFrame(np.arange(8 << 20, dtype=np.float64).reshape(-1, 8) / 7,
                             columns=["c%d" % i for i in range(8)])
        data = pickle.dumps(frame, protocol=4)
        del frame
        with cas_h.Store(d, version=2) as st:
            key = st.put("Frame", data)
            size = len(data)
            del data
            pv, full = [], []
            for r in range(ROUNDS):
                t, (text, read) = timed(lambda: preview_c(st, "Frame", key))
                pv.append(t)
                t, n = timed(lambda: stream_all(st, "Frame", key))
                full.append(t)
            p, f = statistics.median(pv), statistics.median(full)
            log("64 MiB DataFrame, v2: preview %.1f ms (%.0f MiB read: all of it), whole stream decoded %.1f ms: "
                "the preview is %.2fx the decode" % (p * 1e3, read / 2 ** 20, f * 1e3, p / f))
            log("      %s" % text.split("\n")[0])
            rows.append(("64 MiB DataFrame (1M x 8), v2", "%.1f ms" % (p * 1e3),
                         "%.0f MiB of %.0f MiB" % (read / 2 ** 20, size / 2 ** 20), "%.1f ms" % (f * 1e3),
                         "%.2fx" % (f / p), "-"))

    out = os.path.join(HERE, "results", "preview.md")
    with open(out, "w") as fo:
        fo.write("# Pickle previews (bench/preview.py)\n\nMedians of %d rounds, one process, local store "
                 "(page cache). 'whole stream' decodes the artifact in 1 MiB pieces, keeping nothing; "
                 "'get + loads' is what a viewer that unpickles does (fresh memory for 2 GiB on this "
                 "machine, see PERF-NOTES).\n\n" % ROUNDS)
        fo.write("| artifact | preview | decoded bytes read | whole stream | stream / preview | get + loads |\n")
        fo.write("|---|---|---|---|---|---|\n")
        for row in rows:
            fo.write("| %s |\n" % " | ".join(row))
    log("wrote %s" % os.path.relpath(out, ROOT))


if __name__ == "__main__":
    main()
