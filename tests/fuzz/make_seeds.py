#!/usr/bin/python3
"""Writes the seed inputs of the cas.h fuzz targets into a directory per target.

    /usr/bin/python3 tests/fuzz/make_seeds.py OUTDIR [FIXTURES]

OUTDIR/<target>/ receives the seeds: the fixture blobs and sidecars of
tests/fixtures/metaflow (wrapped into each target's input layout), the
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


SCHEDULES = [
    bytes([1] * 8),                        # one byte at a time
    bytes([7, 3, 0, 64, 1, 0x90, 2, 5]),   # small, with empty calls
    bytes([0xFF] * 8),                     # 256 KiB slices
    bytes([0x81, 0xC0, 13, 0x85, 1, 0xC3, 0, 33]),
]


def stream_input(sc, flags, mode, isched, osched, rest):
    return bytes([sc, flags, mode]) + isched + osched + rest


def seeds_stream(out, fixtures):
    d = os.path.join(out, "stream")
    k = 0
    for blob, meta, key in fixture_blobs(fixtures):
        if len(blob) > 16 << 10:
            continue
        s1, s2 = SCHEDULES[k % 4], SCHEDULES[(k + 1) % 4]
        write(d, "fix-" + key[:12], stream_input(sidecar_index(meta), 0, 0, s1, s2, blob))
        k += 1
    for name, blob, sc in edge_blobs():
        if len(blob) > 16 << 10:
            continue
        s1, s2 = SCHEDULES[k % 4], SCHEDULES[(k + 3) % 4]
        write(d, name, stream_input(sc, (k % 3) | ((k & 1) << 4), 0, s1, s2, blob))
        k += 1
    one, small = SCHEDULES[0], SCHEDULES[1]
    p = b"hello metaflow " * 40
    # mode 1: gzip members around raw deflate bytes (params: members, then per member
    # flags, body length u16, pad, [xlen + extra], body)
    body = zlib.compressobj(3, zlib.DEFLATED, -15).compress(p)
    co = zlib.compressobj(3, zlib.DEFLATED, -15)
    body = co.compress(p) + co.flush()
    write(d, "mode1-one-member", stream_input(SC_V1, 0, 1, one, small,
                                              bytes([0, 0]) + struct.pack("<H", 0) + b"\0" + body))
    write(d, "mode1-two-members-fextra", stream_input(SC_NONE, 1, 1, small, one, bytes([1, 0x1e]) +
          struct.pack("<H", len(body)) + b"\2" + bytes([3]) + b"xyz" + body + bytes([0x04, 0, 0, 2]) + b"ab" + body))
    write(d, "mode1-stored", stream_input(SC_V1, 2, 1, small, small,
                                          bytes([0, 0, 0, 0, 0]) + b"\x01\x05\x00\xfa\xffhello"))
    # mode 2: zlib level, strategy, window, memlevel, members, header flags, 4 mutation bytes, payload
    for lvl, strat, mut in ((3, 0, b"\0\0\0\0"), (9, 1, b"\1\x10\0\x40"), (1, 2, b"\2\x20\0\0"),
                            (6, 3, b"\3\0\0\x05"), (0, 4, b"\4\0\0\x33")):
        write(d, "mode2-l%d-s%d" % (lvl, strat), stream_input(SC_V1, lvl & 3, 2, small, one,
              bytes([lvl, strat, 6, 7, 2, 0x0a]) + mut + p))
    # mode 3: LZ4F flags, level, 4 mutation bytes, payload
    for f, lv, mut in ((0, 3, b"\0\0\0\0"), (3 | 8 | 16 | 32, 15, b"\0\0\0\0"), (1 | 4 | 32, 3, b"\1\x07\0\x80"),
                       (2 | 8, 0, b"\2\x30\0\0"), (16, 1, b"\3\0\0\x09")):
        write(d, "mode3-f%d-l%d" % (f, lv), stream_input(SC_V2, 4 if f & 4 else 0, 3, small, one,
              bytes([f, lv]) + mut + p * 4))
    # mode 4: FLG low bits, BD, fix, block selector, content size u32, content checksum u32, block bytes
    stored = b"stored block bytes " * 3
    for flg, fix, bsel in ((0x20, 0, 0x55), (0x20 | 0x10 | 0x08 | 0x04, 3, 0x55), (0x08, 1, 0xff), (0x04, 2, 0x01),
                           (0x01, 0, 0x55), (0x02, 0, 0x55)):
        write(d, "mode4-flg%02x-fix%d" % (flg, fix), stream_input(SC_V2, 0, 4, small, one,
              bytes([flg, 0x70, fix, bsel]) + b"\0" * 8 + stored))


META_SEEDS = [
    b'{"cas_raw": false, "cas_version": 1}',
    b'{"cas_raw": false, "cas_version": 2}',
    b'{"cas_raw": true, "cas_version": 1}',
    b'{}', b'[]', b'', b' ', b'null', b'1', b'"x"', b'{"cas_raw": false}',
    b'{"cas_version": 3}', b'{"cas_version": 0}', b'{"cas_version": -1}', b'{"cas_version": -1.0}',
    b'{"cas_version": 1.0}', b'{"cas_version": 1.5}', b'{"cas_version": 2e0}', b'{"cas_version": 1E400}',
    b'{"cas_version": -0}', b'{"cas_version": 99999999999999999999999}', b'{"cas_version": -9223372036854775809}',
    b'{"cas_version": 9223372036854775807}', b'{"cas_version": "1"}', b'{"cas_version": true}',
    b'{"cas_version": null}', b'{"cas_version": [1]}', b'{"cas_version": {"v": 1}}',
    b'{"cas_raw": 1, "cas_version": 5}', b'{"cas_raw": 0.0, "cas_version": 2}', b'{"cas_raw": "", "cas_version": 1}',
    b'{"cas_raw": " ", "cas_version": 7}', b'{"cas_raw": [0], "cas_version": 7}', b'{"cas_raw": {}, "cas_version": 2}',
    b'{"cas_raw": null, "cas_version": 2}', b'{"cas_version": 1, "cas_version": 2}',
    b'{"cas_raw": true, "cas_raw": false, "cas_version": 2}',
    b'{"\\u0063as_raw": true, "cas_version": 1}', b'{"cas_version": 1, "x": "\\ud83d\\ude00\\n\\"\\\\"}',
    b' \t\r\n{ "cas_version" : 2 } \n', b'{"cas_version": 2}\x00', b'{"cas_version": 2} x',
    b'{"cas_version": 2,}', b'{"cas_version" 2}', b'{"cas_version": 01}', b'{"cas_version": +1}',
    b'{"cas_version": 1.}', b'{"cas_version": .5}', b'{"cas_version": 1e}', b'{"cas_version": NaN}',
    b'{"cas_version": 2, "nested": ' + b'[' * 70 + b']' * 70 + b'}',
    b'{"cas_version": 2, "nested": ' + b'[' * 63 + b']' * 63 + b'}',
    b'{"a": "\x01"}', b'{"a": "\\x"}', b'{"a": "\\u12"}', b'{"a": "unterminated}',
    b'{"cas_version": 2, "big": "' + b'x' * 70000 + b'"}',
]


def seeds_meta(out, fixtures):
    d = os.path.join(out, "meta")
    for i, m in enumerate(META_SEEDS):
        write(d, "meta-%02d" % i, m)
    for name in sorted({m for _b, m, _k in fixture_blobs(fixtures) if m is not None}):
        write(d, "fix-" + hashlib.sha1(name).hexdigest()[:12], name)


DATAJSON_SEEDS = [
    b'{"objects": {}}',
    b'{"objects": {"a": "a9993e364706816aba3e25717850c26c9cd0d89d"}}',
    b'{"objects": {"a": "k1", "b": "k2"}, '
    b'"info": {"a": {"size": 3, "type": "<class \'str\'>", "encoding": "pickle-v4"}}}',
    b'{"objects": {"a": "k", "a": "k2"}, "info": {"a": {"size": 1}, "a": {"size": 2}}}',
    b'{"objects": {"\\u00e9t\\u00e9": "k", "\\ud83d\\ude00": "k", "n\\u0000ul": "k"}}',
    b'{"objects": {"a": 1, "b": null, "c": ["x"], "d": {"e": "f"}}}',
    b'{"objects": {"a": "k"}, "info": {"a": {"size": -1}}}',
    b'{"objects": {"a": "k"}, "info": {"a": {"size": 1.0}}}',
    b'{"objects": {"a": "k"}, "info": {"a": {"size": 1.5}}}',
    b'{"objects": {"a": "k"}, "info": {"a": {"size": 99999999999999999999}}}',
    b'{"objects": {"a": "k"}, "info": {"a": {"size": true, "encoding": 5, "type": null}}}',
    b'{"objects": {"a": "k"}, "info": {"a": "not an object"}}',
    b'{"objects": {"a": "k"}, "info": ["a", {"size": 1}]}',
    b'{"objects": {"a": "k"}, "info": "a"}',
    b'{"objects": []}', b'{"objects": "x"}', b'{"info": {}}', b'[]', b'', b'{', b'null',
    b'{"objects": {"a": "k"}}   \n', b'{"objects": {"a": "k"}} x',
    b'{"objects": {"a": "k"}, "objects": {"b": "k", "c": "k"}}',
    b'{"objects": {' + b', '.join(b'"n%d": "%040d"' % (i, i) for i in range(200)) + b'}}',
    b'{"x": ' + b'[' * 64 + b']' * 64 + b', "objects": {}}',
    b'{"x": ' + b'[' * 65 + b']' * 65 + b', "objects": {}}',
    b'{"objects": {"a": "k", "a": "k", "a": "k"}, "info": {"a": {"type": "' + b'T' * 300 + b'", "encoding": "'
    + b'E' * 300 + b'"}}}',
]


def seeds_datajson(out, fixtures):
    d = os.path.join(out, "datajson")
    for i, m in enumerate(DATAJSON_SEEDS):
        write(d, "dj-%02d" % i, m)
    seen = set()
    for dirpath, _dirs, files in os.walk(fixtures):
        for f in sorted(files):
            if f.endswith(".data.json") or (f.endswith(".json") and dirpath.endswith("_meta")):
                b = open(os.path.join(dirpath, f), "rb").read()
                h = hashlib.sha1(b).hexdigest()[:12]
                if h not in seen and len(b) < 64 << 10:
                    seen.add(h)
                    write(d, "fix-" + h, b)


NAME_SEEDS = [
    b"FixtureFlow", b"F", b".", b"..", b".hidden", b"a..b", b"a/b", b"/abs", b"a b", b"x" * 255, b"x" * 256,
    b"Flow-1_2.3", b"caf\xc3\xa9", b"a\\b", b"",
    b"FixtureFlow/1795238722606761/start/1", b"F/1/s/1", b"F/1/s/1/", b"/F/1/s", b"F//s/1", b"F/1/s/1/x",
    b"F/../s/1", b"F/./s/1", b"F/1/s", b"F/1/.s/1", b"F/" + b"r" * 255 + b"/s/1", b"F/" + b"r" * 256 + b"/s/1",
    b"a9993e364706816aba3e25717850c26c9cd0d89d", b"A9993E364706816ABA3E25717850C26C9CD0D89D",
    b"a9993e364706816aba3e25717850c26c9cd0d89", b"0123456789abcdef0123456789abcdef",
    b"a9993e364706816aba3e25717850c26c9cd0d89d\x00", b"a9993e364706816aba3e25717850\x00c26c9cd0d89d",
    b"FixtureFlow\x00a9993e364706816aba3e25717850c26c9cd0d89d",
    b"F\x000123456789abcdef0123456789abcdef", b"..\x00a9993e364706816aba3e25717850c26c9cd0d89d",
    b"F\x00../../../../../../etc/passwd0000000000",
]


def seeds_names(out, fixtures):
    d = os.path.join(out, "names")
    for i, m in enumerate(NAME_SEEDS):
        for sel in (0xff, 8, 60):
            write(d, "n-%02d-%02x" % (i, sel), bytes([sel]) + m)


def seeds_roundtrip(out, fixtures):
    d = os.path.join(out, "roundtrip")
    data = payloads()
    k = 0
    for fmt in range(4):
        for be in range(3):
            for lvl in (0, 1, 3, 9, 12):
                p = data[k % len(data)]
                s1, s2 = SCHEDULES[k % 4], SCHEDULES[(k + 1) % 4]
                fb = fmt | (be << 2) | ((k & 1) << 4) | ((k % 3 == 0) << 5) | ((k % 5 == 0) << 6) | ((k % 4 == 1) << 7)
                write(d, "rt-%d-%d-%d" % (fmt, be, lvl), bytes([fb, lvl, k % 4, k % 4]) + s1 + s2 + p)
                k += 1
    # the two-thread path: 1 KiB repeated 256 times
    write(d, "rt-threads-v1", bytes([0, 3, 0, 0xFF]) + SCHEDULES[2] + SCHEDULES[2] + data[4])
    write(d, "rt-threads-v2", bytes([1, 1, 3, 0xFF]) + SCHEDULES[2] + SCHEDULES[3] + data[4])
    for blob, meta, key in fixture_blobs(fixtures)[:20]:
        try:
            raw = zlib.decompress(blob, 31) if blob[:2] == b"\x1f\x8b" else lz4.frame.decompress(blob)
        except Exception:
            continue
        if len(raw) < 8192:
            write(d, "fix-" + key[:12], bytes([k % 3, 0, 0, 0]) + SCHEDULES[k % 4] + SCHEDULES[(k + 2) % 4] + raw)
            k += 1


def seeds_pickle(out, fixtures):
    """Pickles of every kind pickle_cases.py makes (protocols 0-5), the fixtures' own
    pickles, and the known pickle attacks, behind the 4 parameter bytes."""
    import tempfile

    sys.path.insert(0, os.path.join(HERE, "../../python/tests"))
    import pickle_cases

    d = os.path.join(out, "pickle")
    k = 0
    with tempfile.TemporaryDirectory() as tmp:
        pickle_cases.write(tmp)
        for name in sorted(os.listdir(tmp)):
            with open(os.path.join(tmp, name), "rb") as f:
                data = f.read()
            if len(data) <= MAX_BLOB:
                write(d, name, bytes([k & 0xff, (k * 7) % 5, 0, 0]) + data)
                k += 1
    for blob, meta, key in fixture_blobs(fixtures)[:40]:
        try:
            raw = zlib.decompress(blob, 31) if blob[:2] == b"\x1f\x8b" else lz4.frame.decompress(blob)
        except Exception:
            continue
        if len(raw) <= MAX_BLOB:
            write(d, "fix-" + key[:12], bytes([k & 0xff, 0, 0, 0]) + raw)
            k += 1
    n = 3000
    attacks = {
        "deep-lists": b"\x80\x04" + b"]" * n + b"a" * (n - 1) + b".",
        "deep-tuples": b"\x80\x04" + b"(" * n + b"t" * n + b".",
        "deep-dicts": b"\x80\x04}" + b"K\x01}" * n + b"s" * n + b".",
        "mark-bomb": b"\x80\x04" + b"(" * n + b".",
        "dup-bomb": b"\x80\x04]" + b"2" * n + b".",
        "huge-binbytes8": b"\x80\x05\x8e" + struct.pack("<Q", 1 << 62) + b"abc.",
        "huge-binunicode8": b"\x80\x05\x8d" + struct.pack("<Q", 1 << 62) + b"abc.",
        "huge-bytearray8": b"\x80\x05\x96" + struct.pack("<Q", 1 << 62) + b"abc.",
        "huge-long4": b"\x80\x04\x8b" + struct.pack("<i", 2 ** 31 - 1) + b"abc.",
        "huge-frame": b"\x80\x04\x95" + struct.pack("<Q", 1 << 62) + b"N.",
        "memo-unset": b"\x80\x04h\x05.",
        "memo-big-index": b"\x80\x04Nr\xff\xff\xff\xffj\xff\xff\xff\xff.",
        "memo-overwrite": b"\x80\x04]\x94K\x01p0\nh\x00.",
        "self-list": b"\x80\x04]\x94h\x00a.",
        "self-dict": b"\x80\x04}\x94(K\x01h\x00u.",
        "set-self": b"\x80\x04\x8f\x94(h\x00\x90.",
        "build-cycle": b"\x80\x04c__main__\nC\n)\x81\x94h\x00b.",
        "reduce-chain": b"\x80\x04cos\nsystem\n\x8c\x02id\x85R.",
        "ndarray-lies": b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R(K\x01"
                        b"J\xff\xff\xff\x7f\x85cnumpy\ndtype\nX\x02\x00\x00\x00f8\x89\x88\x87R\x89C\x08\x00\x00"
                        b"\x00\x00\x00\x00\xf0?tb.",
        "trailing": b"N.xyz",
        "stop-in-mark": b"(N.",
        "bad-utf8": b"\x80\x04\x8c\x03\xff\xfeA.",
        "ext-persid-buffers": b"\x80\x05(\x82\x05P42\n\x97\x98l.",
        "long-line": b"I" + b"9" * 70000 + b"\n.",
    }
    for name, data in attacks.items():
        for mode in (0, 1, 0xe6):
            write(d, "%s-%02x" % (name, mode), bytes([mode, 3, 1, 1]) + data[:MAX_BLOB])


def main():
    out = sys.argv[1]
    fixtures = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "../fixtures/metaflow")
    for fn in (seeds_unpack, seeds_stream, seeds_meta, seeds_datajson, seeds_names, seeds_roundtrip, seeds_pickle):
        fn(out, fixtures)


if __name__ == "__main__":
    main()
