#!/usr/bin/python3
"""Writes the seed inputs of the cas.h fuzz targets into a directory per target.

    /usr/bin/python3 tests/fuzz/make_seeds.py OUTDIR [FIXTURES]

OUTDIR/<target>/ receives the seeds: the fixture blobs and sidecars of
../shared/fixtures/metaflow (wrapped into each target's input layout), the
data.json files, and handmade edge cases (multi-member gzip, NUL padding,
FEXTRA/FNAME/FCOMMENT/FHCRC headers, truncations, LZ4 frames with 4 MiB blocks,
content size, block and content checksums, trailing bytes, wrong sidecars).
The committed corpora under tests/fuzz/corpus/ are these seeds after fuzzing
and `-merge=1` minimisation; this script is how to start over.
Needs python3-lz4 (Debian), so run it with /usr/bin/python3.
"""
import hashlib
import os
import struct
import sys
import zlib

import lz4.frame

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_BLOB = 60 << 10  # seeds stay below the targets' -max_len

# Indices into fuzz_sidecars[] in fuzz_common.h.
SC_NONE, SC_V1, SC_V2, SC_RAW = 0, 1, 2, 3
SC_EMPTY_OBJ, SC_NO_VERSION, SC_V3, SC_STR_VERSION, SC_FLOAT_VERSION = 4, 5, 6, 7, 8
SIDECARS = {
    b'{"cas_raw": false, "cas_version": 1}': SC_V1,
    b'{"cas_raw": false, "cas_version": 2}': SC_V2,
    b'{"cas_raw": true, "cas_version": 1}': SC_RAW,
}


def gzip_member(data, level=3, mtime=0, flags=0, extra=b"", fname=b"", comment=b"", hcrc=False, wbits=-15,
                strategy=zlib.Z_DEFAULT_STRATEGY):
    flg = flags
    if extra:
        flg |= 4
    if fname:
        flg |= 8
    if comment:
        flg |= 16
    if hcrc:
        flg |= 2
    head = b"\x1f\x8b\x08" + bytes([flg]) + struct.pack("<I", mtime) + b"\x00\xff"
    if extra:
        head += struct.pack("<H", len(extra)) + extra
    if fname:
        head += fname + b"\x00"
    if comment:
        head += comment + b"\x00"
    if hcrc:
        head += struct.pack("<H", zlib.crc32(head) & 0xFFFF)
    co = zlib.compressobj(level, zlib.DEFLATED, wbits, 8, strategy)
    body = co.compress(data) + co.flush()
    return head + body + struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)


def lz4f(data, **kw):
    return lz4.frame.compress(data, **kw)


def fixture_blobs(fixtures):
    """(blob bytes, sidecar bytes or None, key) for every small fixture blob."""
    out = []
    seen = set()
    for dirpath, _dirs, files in os.walk(fixtures):
        if os.path.basename(os.path.dirname(dirpath)) != "data":
            continue
        for f in sorted(files):
            if f.endswith("_meta"):
                continue
            p = os.path.join(dirpath, f)
            blob = open(p, "rb").read()
            meta = open(p + "_meta", "rb").read() if os.path.exists(p + "_meta") else None
            if (blob, meta) in seen or len(blob) > MAX_BLOB:
                continue
            seen.add((blob, meta))
            out.append((blob, meta, f))
    return out


def sidecar_index(meta):
    if meta is None:
        return SC_NONE
    return SIDECARS.get(meta, SC_EMPTY_OBJ)


def payloads():
    """Artifact-like bytes: empty, tiny, text, binary, repetitive, incompressible."""
    rnd = hashlib.sha256(b"seed").digest() * 64
    return [
        b"",
        b"abc",
        b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00\x8c\x01x\x94.",
        b"hello metaflow " * 40,
        bytes(range(256)) * 4,
        b"\x00" * 5000,
        rnd[:2048],
    ]


def edge_blobs():
    """(name, blob, sidecar index) handmade edge cases."""
    p = b"hello metaflow " * 40
    e = []
    g = gzip_member(p)
    e.append(("gzip_plain", g, SC_V1))
    e.append(("gzip_legacy", g, SC_NONE))
    e.append(("gzip_multi", gzip_member(b"first ") + gzip_member(b"second ", level=9) + gzip_member(b""), SC_V1))
    e.append(("gzip_nulpad", g + b"\x00" * 37, SC_V1))
    e.append(("gzip_nulpad_between", gzip_member(b"a") + b"\x00" * 5 + gzip_member(b"b"), SC_NONE))
    e.append(("gzip_fextra", gzip_member(p, extra=b"AB\x04\x00data"), SC_V1))
    e.append(("gzip_fname", gzip_member(p, fname=b"blobtmp.x1y2z3w4"), SC_NONE))
    e.append(("gzip_fcomment", gzip_member(p, comment=b"a comment"), SC_V1))
    e.append(("gzip_fhcrc", gzip_member(p, hcrc=True, fname=b"n", comment=b"c", extra=b"xy"), SC_V1))
    e.append(("gzip_reserved_flags", gzip_member(p, flags=0xE0), SC_V1))
    e.append(("gzip_stored", gzip_member(p, level=0), SC_V1))
    e.append(("gzip_huffman", gzip_member(p, strategy=zlib.Z_HUFFMAN_ONLY), SC_V1))
    e.append(("gzip_fixed", gzip_member(p, strategy=zlib.Z_FIXED), SC_V1))
    e.append(("gzip_rle", gzip_member(b"a" * 3000, strategy=zlib.Z_RLE), SC_V1))
    e.append(("gzip_empty_member", gzip_member(b""), SC_V1))
    e.append(("gzip_trunc_body", g[: len(g) // 2], SC_V1))
    e.append(("gzip_trunc_trailer", g[:-3], SC_V1))
    e.append(("gzip_trunc_header", g[:7], SC_V1))
    e.append(("gzip_trailing_junk", g + b"junk", SC_V1))
    e.append(("gzip_bad_crc", g[:-8] + b"\x00\x00\x00\x00" + g[-4:], SC_V1))
    e.append(("gzip_bad_len", g[:-4] + b"\x01\x00\x00\x00", SC_V1))
    e.append(("gzip_bad_method", g[:2] + b"\x07" + g[3:], SC_V1))
    e.append(("gzip_bomb", gzip_member(b"\x00" * (4 << 20), level=9), SC_V1))
    e.append(("gzip_bomb_multi", gzip_member(b"\x00" * (1 << 20), level=9) * 3, SC_NONE))
    e.append(("one_byte_1f", b"\x1f", SC_V1))
    e.append(("empty_v1", b"", SC_V1))
    e.append(("empty_legacy", b"", SC_NONE))
    e.append(("empty_v2", b"", SC_V2))
    e.append(("empty_raw", b"", SC_RAW))
    e.append(("raw_text", p, SC_RAW))
    e.append(("raw_lost_sidecar", b"ra" + p, SC_NONE))
    e.append(("zstd_magic", b"\x28\xb5\x2f\xfd" + b"\x00" * 12, SC_V1))
    l = lz4f(p)
    e.append(("lz4_plain", l, SC_V2))
    e.append(("lz4_as_v1", l, SC_V1))
    e.append(("lz4_lost_sidecar", l, SC_NONE))
    e.append(("gzip_as_v2", g, SC_V2))
    e.append(("lz4_4mib_blocks", lz4f(p * 20, block_size=lz4.frame.BLOCKSIZE_MAX4MB), SC_V2))
    e.append(("lz4_1mib_blocks", lz4f(p * 20, block_size=lz4.frame.BLOCKSIZE_MAX1MB), SC_V2))
    e.append(("lz4_256k_independent", lz4f(p * 20, block_size=lz4.frame.BLOCKSIZE_MAX256KB, block_linked=False),
              SC_V2))
    e.append(("lz4_content_size", lz4f(p, store_size=True), SC_V2))
    e.append(("lz4_no_content_size", lz4f(p, store_size=False), SC_V2))
    e.append(("lz4_content_checksum", lz4f(p, content_checksum=True), SC_V2))
    e.append(("lz4_block_checksum", lz4f(p, block_checksum=True), SC_V2))
    e.append(("lz4_both_checksums", lz4f(p * 3, block_checksum=True, content_checksum=True), SC_V2))
    e.append(("lz4_hc", lz4f(p * 3, compression_level=12), SC_V2))
    e.append(("lz4_uncompressed_block", lz4f(hashlib.sha512(b"x").digest() * 2), SC_V2))
    e.append(("lz4_empty", lz4f(b""), SC_V2))
    e.append(("lz4_trailing", l + b"trailing bytes", SC_V2))
    e.append(("lz4_two_frames", l + lz4f(b"second"), SC_V2))
    e.append(("lz4_trunc", l[: len(l) - 5], SC_V2))
    e.append(("lz4_trunc_header", l[:6], SC_V2))
    e.append(("lz4_magic_only", l[:4], SC_V2))
    e.append(("lz4_short", l[:3], SC_V2))
    e.append(("lz4_bad_hc", l[:6] + bytes([l[6] ^ 0xFF]) + l[7:], SC_V2))
    cs = bytearray(lz4f(p, store_size=True))
    cs[6:14] = struct.pack("<Q", 1 << 40)
    e.append(("lz4_lying_content_size", bytes(cs), SC_V2))
    e.append(("lz4_bomb", lz4f(b"\x00" * (4 << 20), block_size=lz4.frame.BLOCKSIZE_MAX4MB), SC_V2))
    e.append(("lz4_skippable", b"\x50\x2a\x4d\x18\x04\x00\x00\x00abcd" + l, SC_V2))
    return e


def write(d, name, data):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def seeds_unpack(out, fixtures):
    d = os.path.join(out, "unpack")
    for blob, meta, key in fixture_blobs(fixtures):
        write(d, "fix-" + key[:12] + "-" + str(sidecar_index(meta)), bytes([sidecar_index(meta), 0, 0]) + blob)
    for name, blob, sc in edge_blobs():
        if len(blob) <= MAX_BLOB:
            write(d, name, bytes([sc, 0, 0]) + blob)
    # a few with other flags: ISA-L, zlib, strict, small limit, OOM pass
    g = gzip_member(b"hello " * 100)
    write(d, "flags-zlib", bytes([SC_V1, 1, 0]) + g)
    write(d, "flags-isal", bytes([SC_V1, 2, 0]) + g)
    write(d, "flags-strict-lz4-trailing", bytes([SC_V2, 4, 0]) + lz4f(b"x" * 100) + b"tail")
    write(d, "flags-limit64k", bytes([SC_V1, 8, 0]) + gzip_member(b"\x00" * 200000, level=9))
    write(d, "flags-oom", bytes([SC_V1, 64, 3]) + g)
    write(d, "flags-oom-lz4", bytes([SC_V2, 64, 2]) + lz4f(b"x" * 100))
    for i in range(4, 20):
        write(d, "sidecar-%d" % i, bytes([i, 0, 0]) + g)


def main():
    out = sys.argv[1]
    fixtures = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "../../../shared/fixtures/metaflow")
    for fn in (seeds_unpack,):
        fn(out, fixtures)


if __name__ == "__main__":
    main()
