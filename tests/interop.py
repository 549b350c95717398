#!/usr/bin/env python3
"""Interoperability with Python's own readers and writers, through the `cas` command.

cas.h writes v1 and v2 blobs that /usr/bin/python3 reads with gzip and
python3-lz4 (lz4.frame), and reads what Python writes the way Metaflow writes
it (gzip.GzipFile(compresslevel=3) into a BytesIO, lz4.frame.compress), over
sizes from 0 B to 16 MB.
"""
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

import lz4.frame

HERE = os.path.dirname(os.path.abspath(__file__))
CAS = os.environ.get("CAS", os.path.join(HERE, "..", "build", "cas"))
SIZES = [0, 1, 2, 3, 100, 4095, 65535, 65536, 65537, 1 << 20, 16 << 20]
failures = 0


def fail(msg):
    global failures
    failures += 1
    print("FAIL", msg)


def payload(n, kind, rng):
    if kind == "random":
        return rng.randbytes(n)
    if kind == "float":  # pickled-float-like: compressible a little
        return bytes(rng.getrandbits(8) if i % 8 < 4 else 0x3F for i in range(n)) if n < 70000 else (
            (rng.randbytes(4) + b"\x00\x00\xf0\x3f") * (n // 8 + 1))[:n]
    text = b'{"step": %d, "loss": 0.%d, "tag": "metaflow artifact"}\n'
    out = bytearray()
    i = 0
    while len(out) < n:
        out += text % (i, rng.randrange(10**6))
        i += 1
    return bytes(out[:n])


def python_pack_v1(data):
    buf = io.BytesIO()  # Metaflow's _pack_v1
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=3) as f:
        f.write(data)
    return buf.getvalue()


def main():
    rng = random.Random(20261121)
    sizes = SIZES + [rng.randrange(0, 16 << 20) for _ in range(3)]
    root = tempfile.mkdtemp(prefix="cas-interop-")
    store = os.path.join(root, ".metaflow")
    os.makedirs(store)
    checked = 0
    try:
        for n in sizes:
            for kind in ("random", "float", "text"):
                if n > (1 << 20) and kind == "float":
                    continue
                data = payload(n, kind, rng)
                key = hashlib.sha1(data).hexdigest()
                src = os.path.join(root, "input")
                with open(src, "wb") as f:
                    f.write(data)
                # cas.h writes, Python reads
                for fmt in ("v1", "v2"):
                    flow = "Cas%sFlow" % fmt.upper()
                    out = subprocess.run([CAS, "put", "--flow", flow, "--root", store, "--" + fmt, src],
                                         capture_output=True, check=False)
                    if out.returncode != 0 or out.stdout.decode().strip() != key:
                        fail("cas put %s %d %s: %r %r" % (fmt, n, kind, out.stdout, out.stderr))
                        continue
                    blob_path = os.path.join(store, flow, "data", key[:2], key)
                    with open(blob_path + "_meta") as f:
                        meta = json.load(f)
                    with open(blob_path, "rb") as f:
                        blob = f.read()
                    if meta != {"cas_raw": False, "cas_version": int(fmt[1])}:
                        fail("sidecar %r" % meta)
                    back = gzip.GzipFile(fileobj=io.BytesIO(blob)).read() if fmt == "v1" else lz4.frame.decompress(blob)
                    if back != data:
                        fail("python cannot read cas %s blob of %d %s bytes" % (fmt, n, kind))
                    checked += 1
                # Python writes (as Metaflow and PR #3090 do), cas.h reads
                for fmt, blob in (("v1", python_pack_v1(data)), ("v2", lz4.frame.compress(data))):
                    flow = "Py%sFlow" % fmt.upper()
                    d = os.path.join(store, flow, "data", key[:2])
                    os.makedirs(d, exist_ok=True)
                    with open(os.path.join(d, key), "wb") as f:
                        f.write(blob)
                    with open(os.path.join(d, key + "_meta"), "w") as f:
                        f.write(json.dumps({"cas_raw": False, "cas_version": int(fmt[1])}))
                    out = subprocess.run([CAS, "get", "--flow", flow, key, "--root", store, "--verify"],
                                         capture_output=True, check=False)
                    if out.returncode != 0 or out.stdout != data:
                        fail("cas cannot read python %s blob of %d %s bytes: %r" % (fmt, n, kind, out.stderr))
                    checked += 1
        out = subprocess.run([CAS, "verify", "--root", store, "--quiet"], capture_output=True, check=False)
        if out.returncode != 0:
            fail("cas verify: %r %r" % (out.stdout, out.stderr))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("interop: %d blobs checked across %d sizes (max %d bytes), %d failures"
          % (checked, len(sizes), max(sizes), failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
