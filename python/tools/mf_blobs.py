"""Sorts CasFlow's blobs by sidecar and framing (a gzip header mtime of 0 =
written by cas.h, a wall-clock mtime = Python's GzipFile) and rehashes every
blob against its key through cas_h."""
import collections
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import cas_h  # noqa: E402

root = sys.argv[1] if len(sys.argv) > 1 else ".metaflow"
kinds = collections.Counter()
with cas_h.Store(root) as st:
    for key in st.keys("CasFlow"):
        p = os.path.join(root, "CasFlow", "data", key[:2], key)
        meta = open(p + "_meta").read() if os.path.exists(p + "_meta") else "(no sidecar)"
        with open(p, "rb") as f:
            head = f.read(8)
        if head[:2] == b"\x1f\x8b":
            kind = "gzip, mtime %s" % ("0 (cas.h)" if head[4:8] == b"\0\0\0\0" else "set (Python's gzip)")
        elif head[:4] == b"\x04\x22\x4d\x18":
            kind = "LZ4 frame"
        else:
            kind = "other"
        kinds[(meta, kind)] += 1
        st.verify("CasFlow", key)
for (meta, kind), n in sorted(kinds.items()):
    print("  %3d blobs  %-38s %s" % (n, meta, kind))
print("  all %d blobs rehash to their keys" % sum(kinds.values()))
