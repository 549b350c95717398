"""cas_h: pack/unpack, interop with Python's gzip and lz4.frame, buffers
without copies, messages word for word, readers over file objects."""

import ctypes
import gc
import gzip
import hashlib
import io
import mmap
import os
import tempfile
import sys
import tracemalloc
import unittest

import lz4.frame
import numpy as np

import cas_h
from tests._util import RAWMETA, V1META, V2META

NAME = "MyFlow/data/a9/a9993e364706816aba3e25717850c26c9cd0d89d"


def sha1(b):
    return hashlib.sha1(b).hexdigest()


def samples():
    rng = np.random.default_rng(7)
    return [
        b"",
        b"abc",
        b"x" * 100000,
        rng.bytes(300000),  # incompressible, above the 2-thread threshold
        (b"metaflow " * 50000) + rng.bytes(1000),
    ]


class TestGolden(unittest.TestCase):
    def test_vectors(self):
        # byte for byte CPython's gzip (level 3, mtime 0) needs the zlib backend; the
        # default picks the fastest encoder, whose bytes differ but read the same
        with cas_h.Packer(gzip_backend="zlib") as p:
            key, blob = p.pack(b"abc")
            self.assertEqual(key, "a9993e364706816aba3e25717850c26c9cd0d89d")
            self.assertEqual(blob.hex(), "1f8b08000000000000ff4b4c4a0600c241243503000000")
            key, blob = p.pack(b"")
            self.assertEqual(key, "da39a3ee5e6b4b0d3255bfef95601890afd80709")
            self.assertEqual(blob.hex(), "1f8b08000000000000ff03000000000000000000")
        for data in (b"", b"abc"):
            key, blob = cas_h.pack(data)
            self.assertEqual(gzip.decompress(blob), data)
        key, blob = cas_h.pack(b"abc", version=2)
        self.assertEqual(blob.hex(), "04224d1868400300000000000000870300008061626300000000")

    def test_sidecars(self):
        self.assertEqual(cas_h.sidecar_json(1), b'{"cas_raw": false, "cas_version": 1}')
        self.assertEqual(cas_h.sidecar_json(2), b'{"cas_raw": false, "cas_version": 2}')
        self.assertEqual(cas_h.sidecar_json(raw=True), b'{"cas_raw": true, "cas_version": 1}')
        self.assertEqual(cas_h.sidecar(2), V2META)
        self.assertEqual(cas_h.sidecar(raw=True), RAWMETA)
        self.assertEqual(cas_h.meta_format(V1META), cas_h.V1)
        self.assertEqual(cas_h.meta_format(b'{"cas_version": 2}'), cas_h.V2)
        self.assertEqual(cas_h.meta_format('{"cas_raw": true}'), cas_h.RAW)
        self.assertEqual(cas_h.meta_format(None), cas_h.LEGACY)
        with self.assertRaises(cas_h.VersionMissing):
            cas_h.meta_format({})
        with self.assertRaises(cas_h.UnknownVersion):
            cas_h.meta_format({"cas_version": 3})

    def test_hash_key(self):
        for d in samples():
            self.assertEqual(cas_h.hash_key(d), sha1(d))
        self.assertTrue(cas_h.hash_available(cas_h.SHA1))
        if cas_h.hash_available(cas_h.XXH3):
            self.assertEqual(cas_h.hash_key(b"abc", cas_h.XXH3), "06b05ab6733a618578af5f94892f3950")
        else:  # a build without xxhash.h says so
            with self.assertRaises(cas_h.Unsupported):
                cas_h.hash_key(b"abc", cas_h.XXH3)

    def test_bad_version(self):
        with self.assertRaises(ValueError):
            cas_h.pack(b"x", version=3)
        with self.assertRaises(ValueError):
            cas_h.Store(tempfile.gettempdir(), version=7)


class TestMany(unittest.TestCase):
    """pack_many / unpack_many: one C call for many blobs, each item what
    pack / unpack give it alone."""

    def blobs(self):
        rng = np.random.default_rng(3)
        return [b"", b"x", b"abc" * 77, rng.integers(0, 4, 70000, dtype=np.uint8).tobytes(),
                rng.integers(0, 256, 1 << 20, dtype=np.uint8).tobytes(), bytearray(b"ba"), memoryview(b"mv")]

    def test_same_as_one_by_one(self):
        blobs = self.blobs()
        for version, raw in ((1, False), (2, False), (1, True)):
            for threads in (0, 1, 3):
                keys, packed = cas_h.pack_many(blobs, version, raw=raw, threads=threads)
                alone = [cas_h.pack(bytes(b), version, raw=raw) for b in blobs]
                self.assertEqual(keys, [k for k, _ in alone])
                self.assertEqual(packed, [p for _, p in alone])
                metas = [cas_h.sidecar(version, raw)] * len(blobs)
                self.assertEqual(cas_h.unpack_many(packed, metas, keys=keys, threads=threads),
                                 [bytes(b) for b in blobs])
        self.assertEqual(cas_h.pack_many(blobs, compress=False), ([sha1(bytes(b)) for b in blobs], None))
        self.assertEqual(cas_h.pack_many(blobs, 2, keys=False)[1], [cas_h.compress(bytes(b), 2) for b in blobs])
        self.assertEqual(cas_h.pack_many([]), ([], []))
        self.assertEqual(cas_h.unpack_many([], []), [])
        with self.assertRaises(ValueError):
            cas_h.pack_many(blobs, keys=False, compress=False)

    def test_outputs_cut_in_place(self):
        """A blob written into its bound comes out as a bytes object cut to its length
        in place (no copy), the only reference to it; one never handed out is freed."""
        from cas_h import _lib
        ob = _lib.OwnedBytes(1 << 20)
        ctypes.memset(ob.addr, 0x61, 10)
        cut = ob.take(10)
        refs = sys.getrefcount(cut)
        self.assertEqual((cut, refs), (b"a" * 10, 2))  # 2: ours and getrefcount's
        exact = _lib.OwnedBytes(3)
        ctypes.memset(exact.addr, 0x62, 3)
        self.assertEqual(exact.take(3), b"bbb")
        self.assertEqual(_lib.OwnedBytes(5).take(0), b"")
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            for _ in range(40):
                _lib.OwnedBytes(1 << 20).close()
                _lib.OwnedBytes(1 << 20)  # dropped untaken: freed by its finalizer
            self.assertLess(tracemalloc.get_traced_memory()[0] - base, 1 << 20)
        finally:
            tracemalloc.stop()
        big = bytes(range(256)) * 8192  # 2 MiB: a bound-sized output per blob, each cut
        self.assertEqual(cas_h.pack_many([big, big[:70000]], 2)[1], [cas_h.compress(big, 2),
                                                                     cas_h.compress(big[:70000], 2)])

    def test_buffers_read_in_place(self):
        """unpack_many and decoded_sizes take any buffer (a read-only mmap of a blob
        file, a bytearray, a memoryview) beside bytes, and let go of it after: the
        mmap can be closed once the call returns."""
        data = bytes(range(256)) * 4000
        blobs = [cas_h.compress(data, 2), cas_h.compress(data, 1)]
        with tempfile.TemporaryFile() as f:
            f.write(blobs[0])
            f.flush()
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            got = cas_h.unpack_many([mm, bytearray(blobs[1]), memoryview(blobs[0])], [2, 1, 2])
            self.assertEqual(got, [data] * 3)
            self.assertEqual(cas_h.decoded_sizes([mm, blobs[1]], [2, 1]), [len(data)] * 2)
            with self.assertRaises(cas_h.CasError):  # a bad blob beside a mapped one: its error, and let go
                cas_h.unpack_many([mm, bytearray(blobs[1][:-9])], [2, 1])
            mm.close()  # BufferError if an export were still held
        with self.assertRaises(TypeError):
            cas_h.unpack_many([object()], [2])

    def test_formats_and_errors(self):
        data = b"payload " * 100
        blobs = [gzip.compress(data), lz4.frame.compress(data), data, gzip.compress(data)]
        metas = [cas_h.V1, {"cas_raw": False, "cas_version": 2}, '{"cas_raw": true, "cas_version": 1}', None]
        self.assertEqual(cas_h.unpack_many(blobs, metas), [data] * 4)
        # an LZ4 frame that states no size, and two gzip members (the length field states the last one's)
        nosize = lz4.frame.compress(data, store_size=False)
        liar = gzip.compress(data[:8]) + gzip.compress(data[8:])
        self.assertEqual(cas_h.unpack_many([nosize, liar], [cas_h.V2, cas_h.V1]), [data, data])
        # the first bad blob in order raises what unpack() raises for it
        bad = [blobs[0], gzip.compress(data)[:-3], b"garbage"]
        with self.assertRaises(cas_h.CasError) as cm:
            cas_h.unpack_many(bad, [cas_h.V1] * 3)
        with self.assertRaises(type(cm.exception)) as alone:
            cas_h.unpack(bad[1], cas_h.sidecar(1))
        self.assertEqual(str(cm.exception), str(alone.exception))
        # a length field that states more than its blob could hold allocates nothing and is the blob's error
        liar = gzip.compress(data)[:-4] + b"\xff\xff\xff\xff"
        self.assertEqual(cas_h.decoded_sizes([liar, blobs[1], data], [cas_h.V1, cas_h.V2, cas_h.RAW]),
                         [None, len(data), len(data)])
        with self.assertRaises(cas_h.CorruptBlob) as cm:
            cas_h.unpack_many([blobs[0], liar], [cas_h.V1, cas_h.V1])
        self.assertIn("Incorrect length of data produced", str(cm.exception))
        with self.assertRaises(cas_h.HashMismatch):
            cas_h.unpack_many(blobs[:1], [cas_h.V1], keys=[sha1(b"other")])
        with self.assertRaises(cas_h.VersionMissing):
            cas_h.unpack_many(blobs[:1], [{}])
        with self.assertRaises(ValueError):
            cas_h.unpack_many(blobs, metas[:2])


class TestInterop(unittest.TestCase):
    """Blobs written here read by Python's gzip / lz4.frame, and back."""

    def test_v1_read_by_gzip(self):
        for d in samples():
            key, blob = cas_h.pack(d, version=1)
            self.assertEqual(key, sha1(d))
            self.assertEqual(gzip.decompress(blob), d)
            with gzip.GzipFile(fileobj=io.BytesIO(blob), mode="rb") as f:  # Metaflow's _unpack_v1
                self.assertEqual(f.read(), d)

    def test_v2_read_by_lz4(self):
        for d in samples():
            key, blob = cas_h.pack(d, version=2)
            self.assertEqual(key, sha1(d))
            self.assertEqual(lz4.frame.decompress(blob), d)

    def test_raw(self):
        for d in samples():
            key, blob = cas_h.pack(d, raw=True)
            self.assertEqual((key, blob), (sha1(d), d))
            self.assertEqual(cas_h.unpack(blob, RAWMETA), d)
            self.assertEqual(cas_h.unpack(bytearray(blob), RAWMETA), d)

    def test_gzip_written_read_here(self):
        for d in samples():
            buf = io.BytesIO()
            with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=3) as f:  # Metaflow's _pack_v1
                f.write(d)
            blob = buf.getvalue()
            self.assertEqual(cas_h.unpack(blob, V1META, key=sha1(d)), d)
            self.assertEqual(cas_h.unpack(blob), d)  # no sidecar: legacy gzip
            self.assertEqual(cas_h.unpack(blob, b'{"cas_raw": false, "cas_version": 1}'), d)
            self.assertEqual(cas_h.head(io.BytesIO(blob), 10, meta=V1META), d[:10])

    def test_lz4_written_read_here(self):
        for d in samples():
            for blob in (lz4.frame.compress(d), lz4.frame.compress(d, content_checksum=True, block_linked=False),
                         lz4.frame.compress(d, store_size=False)):
                self.assertEqual(cas_h.unpack(blob, V2META, key=sha1(d)), d)
                with cas_h.open_blob(io.BytesIO(blob), meta=V2META) as f:
                    self.assertEqual(f.read(), d)

    def test_unpack_into_and_hint(self):
        for d in samples():
            for v in (1, 2):
                _, blob = cas_h.pack(d, version=v)
                meta = cas_h.sidecar(v)
                hint = cas_h.size_hint(blob, meta)
                self.assertEqual(hint, len(d) if d or v == 1 else None)  # LZ4 omits the size of b""
                out = bytearray(len(d) + 5)
                self.assertEqual(cas_h.unpack_into(blob, out, meta), len(d))
                self.assertEqual(bytes(out[:len(d)]), d)
                if d:
                    with self.assertRaises(ValueError):
                        cas_h.unpack_into(blob, bytearray(len(d) - 1), meta)
                arr = np.zeros(len(d), dtype=np.uint8)
                self.assertEqual(cas_h.unpack_into(blob, arr, meta), len(d))
                self.assertEqual(arr.tobytes(), d)

    def test_hint_that_lies(self):
        # a multi-member gzip blob: the trailer's length is the last member's only
        a, b = b"first part " * 1000, b"second"
        blob = gzip.compress(a) + gzip.compress(b)
        self.assertEqual(cas_h.size_hint(blob, V1META), len(b))
        self.assertEqual(cas_h.unpack(blob, V1META), a + b)
        # an LZ4 frame without a content size
        self.assertIsNone(cas_h.size_hint(lz4.frame.compress(a, store_size=False), V2META))

    def test_packer_objects(self):
        d = samples()[4]
        with cas_h.Packer(version=1, level=9) as p:
            k, blob9 = p.pack(d)
        self.assertEqual(gzip.decompress(blob9), d)
        self.assertLessEqual(len(blob9), len(cas_h.pack(d)[1]))
        with cas_h.Packer(version=2, level=9, lz4_block=7) as p:
            self.assertEqual(p.meta, V2META)
            out = bytearray(p.bound(len(d)))
            key, n = p.pack_into(d, out)
            self.assertEqual(lz4.frame.decompress(bytes(out[:n])), d)
        with self.assertRaises(cas_h.InvalidArgument):
            cas_h.Packer(version=1, level=13)
        p = cas_h.Packer()
        p.close()
        with self.assertRaises(ValueError):
            p.pack(b"x")

    def test_fast_paths_match_slow_ones(self):
        """hash_key, compress and unpack take one C call through per-thread
        scratch for small bytes; around its edges (and past them, where the
        output outgrows the scratch) the answers are the general path's."""
        rng = np.random.default_rng(5)
        for n in (0, 1, 16383, 16385, 65535, 65536, 65537, 300000):
            d = rng.integers(0, 4, n, dtype=np.uint8).tobytes()  # ~4:1 compressible
            self.assertEqual(cas_h.hash_key(d), sha1(d))
            self.assertEqual(cas_h.hash_key(d), cas_h.hash_key(bytearray(d)))
            if cas_h.hash_available(cas_h.XXH3):
                self.assertEqual(cas_h.hash_key(d, cas_h.XXH3), cas_h.hash_key(memoryview(d), cas_h.XXH3))
            self.assertEqual(gzip.decompress(cas_h.compress(d, 1)), d)
            self.assertEqual(cas_h.compress(d, 1), cas_h.compress(bytearray(d), 1))
            self.assertEqual(lz4.frame.decompress(cas_h.compress(d, 2)), d)
            for v, meta in ((1, V1META), (2, V2META)):
                blob = cas_h.pack(d, version=v)[1]
                self.assertEqual(cas_h.unpack(blob, meta), d, (n, v))
        # LZ4 blobs under 16 KiB and of 16-64 KiB that decode to far more than the scratch holds
        big = cas_h.compress(bytes(1 << 20), 2)
        self.assertLess(len(big), 16384)
        self.assertEqual(cas_h.unpack(big, V2META), bytes(1 << 20))
        small_lz4_big_out = lz4.frame.compress(bytes(8 << 20))
        self.assertTrue(16384 < len(small_lz4_big_out) <= 65536, len(small_lz4_big_out))
        self.assertEqual(cas_h.unpack(small_lz4_big_out, V2META), bytes(8 << 20))


class TestBuffers(unittest.TestCase):
    """Any contiguous buffer, read where it lies."""

    def test_buffer_kinds(self):
        d = samples()[4]
        key = sha1(d)
        arr = np.frombuffer(d, dtype=np.uint8).copy()
        ro = arr.copy()
        ro.flags.writeable = False
        with tempfile.TemporaryFile() as f:
            f.write(d)
            f.flush()
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            for obj in (d, bytearray(d), memoryview(d), memoryview(bytearray(d)), arr, ro,
                        arr.view(np.int8).reshape(-1, len(d) // 4 if len(d) % 4 == 0 else 1), mm,
                        memoryview(b"zz" + d)[2:]):
                self.assertEqual(cas_h.pack(obj)[0], key, type(obj))
                self.assertEqual(cas_h.hash_key(obj), key)
                self.assertEqual(cas_h.unpack(cas_h.pack(obj, version=2)[1], V2META), d)
            mm.close()
        with self.assertRaises(TypeError):
            cas_h.pack(arr[::2])  # not contiguous
        with self.assertRaises(TypeError):
            cas_h.pack("text")
        with self.assertRaises(TypeError):
            cas_h.unpack_into(cas_h.pack(d)[1], b"read-only output", V1META)

    def test_float_array(self):
        a = np.linspace(0, 1, 100000)
        key, blob = cas_h.pack(a)
        self.assertEqual(key, sha1(a.tobytes()))
        out = np.empty_like(a)
        cas_h.unpack_into(blob, out, V1META)
        self.assertTrue(np.array_equal(a, out))

    def test_large_read_only_input_not_copied(self):
        n = 64 << 20
        big = np.tile(np.arange(251, dtype=np.uint8), n // 251 + 1)[:n]  # compresses to next to nothing
        big.flags.writeable = False
        as_bytes = big.tobytes()
        for obj in (big, memoryview(big), as_bytes, memoryview(as_bytes)[1:]):
            gc.collect()
            tracemalloc.start()
            try:
                cas_h.hash_key(obj)
                hash_peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.reset_peak()
                # the blob's room: a bytes object of pack_bound bytes (pages past the blob
                # never touched), cut to the blob in place, as python-lz4 does
                key, blob = cas_h.pack(obj, version=2)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            # a copy of the input would show up as >= 64 MiB more
            self.assertLess(len(blob), 1 << 20)
            self.assertLess(hash_peak, 8 << 20, type(obj))
            self.assertLess(peak, cas_h.pack_bound(n, version=2) + (8 << 20), type(obj))
        # and the addresses: the C side reads the caller's memory itself
        from cas_h import _lib
        with _lib.Buffer(big) as b:
            self.assertEqual(b.addr, big.ctypes.data)
        with _lib.Buffer(as_bytes) as b:
            self.assertEqual(b.addr, np.frombuffer(as_bytes, np.uint8).ctypes.data)

    def test_unpack_output_not_copied_twice(self):
        d = np.random.default_rng(5).integers(0, 4, 32 << 20, dtype=np.uint8).tobytes()
        for v in (1, 2):
            blob = cas_h.pack(d, version=v)[1]
            gc.collect()
            tracemalloc.start()
            try:
                out = cas_h.unpack(blob, cas_h.sidecar(v))
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            self.assertEqual(out, d)
            self.assertLess(peak, len(d) + (1 << 20))  # the result and nothing else
            del out


class TestMessages(unittest.TestCase):
    """The C library's messages arrive in the exceptions word for word."""

    def setUp(self):
        self.gz = cas_h.pack(b"abc")[1]
        self.lz = cas_h.pack(b"abc", version=2)[1]

    def check(self, blob, meta, cls, msg):
        with self.assertRaises(cls) as cm:
            cas_h.unpack(blob, meta, name=NAME)
        self.assertEqual(str(cm.exception), msg)
        self.assertIsInstance(cm.exception, cas_h.CasError)
        self.assertEqual(cm.exception.code, cls.code)
        # the streaming reader says the same
        with self.assertRaises(cls) as cm:
            with cas_h.open_blob(io.BytesIO(blob), meta=meta, name=NAME) as f:
                f.read()
        self.assertEqual(str(cm.exception), msg)
        return cm.exception

    def test_empty_sidecar(self):
        e = self.check(self.gz, {}, cas_h.VersionMissing, "Could not extract encoding version for '%s'" % NAME)
        self.assertEqual(e.status, "CAS_E_VERSION_MISSING")
        self.assertIsInstance(e, cas_h.MetadataError)
        self.check(self.gz, b"{}", cas_h.VersionMissing, "Could not extract encoding version for '%s'" % NAME)

    def test_version_999(self):
        self.check(self.gz, {"cas_raw": False, "cas_version": 999}, cas_h.UnknownVersion,
                   "Unknown encoding version 999 for '%s' -- the artifact is either corrupt or you need to "
                   "update Metaflow to the latest version" % NAME)

    def test_truncated_gzip(self):
        e = self.check(self.gz[:-3], V1META, cas_h.TruncatedBlob,
                       "Could not unpack artifact '%s': Compressed file ended before the end-of-stream marker "
                       "was reached" % NAME)
        self.assertEqual(e.reason, "Compressed file ended before the end-of-stream marker was reached")
        self.assertIsInstance(e, cas_h.DecodeError)

    def test_truncated_lz4(self):
        self.check(self.lz[:-2], V2META, cas_h.TruncatedBlob,
                   "Could not unpack artifact '%s': LZ4 frame ended before the end-of-stream marker was "
                   "reached" % NAME)

    def test_trailing_and_corrupt(self):
        self.check(self.gz + b"xy", V1META, cas_h.TrailingBytes,
                   "Could not unpack artifact '%s': Not a gzipped file (b'xy')" % NAME)
        self.check(b"raw bytes", V1META, cas_h.CorruptBlob,
                   "Could not unpack artifact '%s': Not a gzipped file (b'ra')" % NAME)

    def test_mismatch_named(self):
        self.check(self.lz, V1META, cas_h.FormatMismatch,
                   "Could not unpack artifact '%s': metadata says cas_version 1 (gzip) but the bytes are an "
                   "LZ4 frame" % NAME)

    def test_wrong_key(self):
        with self.assertRaises(cas_h.HashMismatch) as cm:
            cas_h.unpack(self.gz, V1META, name=NAME, key="0" * 40)
        self.assertEqual(str(cm.exception), "Could not unpack artifact '%s': content hashes to "
                         "a9993e364706816aba3e25717850c26c9cd0d89d, not to its key "
                         "0000000000000000000000000000000000000000" % NAME)
        with self.assertRaises(cas_h.InvalidKey):
            cas_h.unpack(self.gz, V1META, key="nothex")

    def test_limit_and_expected_size(self):
        d = b"y" * 5000
        blob = cas_h.pack(d)[1]
        with cas_h.Unpacker(limit=1000) as u:
            with self.assertRaises(cas_h.LimitExceeded) as cm:
                u.unpack(blob, V1META, name=NAME)
        self.assertEqual(str(cm.exception),
                         "Could not unpack artifact '%s': decoded size exceeds the limit of 1000 bytes" % NAME)
        with self.assertRaises(cas_h.SizeMismatch):
            cas_h.unpack(blob, V1META, expect_size=4999)
        self.assertEqual(cas_h.unpack(blob, V1META, expect_size=5000), d)

    def test_exception_classes(self):
        self.assertTrue(issubclass(cas_h.NotFound, KeyError))
        self.assertTrue(issubclass(cas_h.CasIOError, OSError))
        self.assertTrue(issubclass(cas_h.InvalidKey, ValueError))
        e = cas_h.NotFound("No blob 'x'", -16)
        self.assertEqual(str(e), "No blob 'x'")  # not KeyError's repr
        self.assertEqual(cas_h.status_name(-6), "CAS_E_TRUNCATED")
        self.assertEqual(cas_h.errors.error_class(-999), cas_h.CasError)


class TestFileReader(unittest.TestCase):
    def test_reads_in_pieces(self):
        d = samples()[3] + samples()[4]
        for v in (1, 2):
            blob = cas_h.pack(d, version=v)[1]
            meta = cas_h.sidecar(v)

            class Trickle(io.RawIOBase):  # hands out 777 bytes at a time, read() only
                def __init__(self, b):
                    self.b, self.at = b, 0

                def read(self, n=-1):
                    piece = self.b[self.at:self.at + 777]
                    self.at += len(piece)
                    return piece

            trickle = Trickle(blob)
            trickle.readinto = None  # force the read() path
            for src in (io.BytesIO(blob), trickle):
                with cas_h.open_blob(src, meta=meta, key=sha1(d), expected_size=len(d)) as f:
                    got = []
                    while True:
                        part = f.read(12345)
                        if not part:
                            break
                        got.append(part)
                    self.assertEqual(b"".join(got), d)
            with cas_h.open_blob(io.BytesIO(blob), meta=meta) as f:
                buf = bytearray(1000)
                self.assertEqual(f.readinto(buf), 1000)
                self.assertEqual(bytes(buf), d[:1000])
                self.assertEqual(f.read(), d[1000:])
                self.assertEqual(f.read(5), b"")
            self.assertTrue(f.closed)
            with self.assertRaises(ValueError):
                f.read(1)

    def test_path_with_sidecar(self):
        d = b"hello file " * 999
        with tempfile.TemporaryDirectory() as tmp:
            p = os.path.join(tmp, "blob")
            with open(p, "wb") as f:
                f.write(cas_h.pack(d, version=2)[1])
            with open(p + "_meta", "wb") as f:
                f.write(cas_h.sidecar_json(2))
            self.assertEqual(cas_h.head(p, 11), b"hello file ")
            with cas_h.open_blob(p, key=sha1(d)) as f:
                self.assertEqual(f.format, cas_h.V2)
                self.assertEqual(f.read(), d)
            with cas_h.open_blob(p, meta=V2META) as f:  # a path plus an explicit sidecar
                self.assertEqual(f.read(), d)
            with self.assertRaises(cas_h.NotFound):
                cas_h.open_blob(os.path.join(tmp, "nope"))


if __name__ == "__main__":
    unittest.main()
