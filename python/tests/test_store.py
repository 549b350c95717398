"""cas_h.Store: put/get/exists/verify, batch calls, files, messages from the
store, 4 Python threads through one store, and no C memory left behind."""

import gc
import gzip
import hashlib
import os
import shutil
import tempfile
import threading
import unittest

import lz4.frame
import numpy as np

import cas_h
from tests._util import CountingAllocator, rss_bytes


def sha1(b):
    return hashlib.sha1(b).hexdigest()


class StoreCase(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="cas_h_test_")
        self.addCleanup(shutil.rmtree, self.root, True)

    def blob_path(self, flow, key):
        return os.path.join(self.root, flow, "data", key[:2], key)


class TestStore(StoreCase):
    def test_put_get_formats(self):
        rng = np.random.default_rng(11)
        datas = [b"", b"abc", rng.bytes(1 << 20), b"z" * (3 << 20)]
        with cas_h.Store(self.root) as st:
            for version, raw, meta, decode in ((1, False, b'{"cas_raw": false, "cas_version": 1}', gzip.decompress),
                                               (2, False, b'{"cas_raw": false, "cas_version": 2}',
                                                lz4.frame.decompress),
                                               (None, True, b'{"cas_raw": true, "cas_version": 1}', bytes)):
                flow = "F%s%s" % (version, raw)
                for d in datas:
                    key = st.put(flow, d, version=version, raw=raw)
                    self.assertEqual(key, sha1(d))
                    self.assertTrue(st.exists(flow, key))
                    self.assertEqual(st.get(flow, key), d)
                    path = self.blob_path(flow, key)
                    with open(path + "_meta", "rb") as f:
                        self.assertEqual(f.read(), meta)  # Metaflow's sidecar, byte for byte
                    with open(path, "rb") as f:
                        self.assertEqual(decode(f.read()), d)  # and Python reads the blob
                    self.assertEqual(st.verify(flow, key), len(d))
                    stat = st.stat(flow, key)
                    self.assertEqual(stat.stored_size, os.path.getsize(path))
                    self.assertEqual(cas_h.format_name(stat.format), "raw" if raw else "v%d" % version)
                self.assertEqual(sorted(st.keys(flow)), sorted({sha1(d) for d in datas}))
            self.assertEqual(sorted(st.flows()), ["F1False", "F2False", "FNoneTrue"])
            self.assertEqual(st.blob_name("F", "ab" * 20), "F/data/ab/" + "ab" * 20)

    def test_default_version_and_python_written_blobs(self):
        d = b"written by Python " * 1000
        with cas_h.Store(self.root, version=2) as st:
            key = st.put("F", d)
            self.assertEqual(st.stat("F", key).format, cas_h.V2)
        # a blob as stock Metaflow writes it (GzipFile level 3) reads here
        d2 = b"stock metaflow " * 777
        k2 = sha1(d2)
        os.makedirs(os.path.dirname(self.blob_path("F", k2)))
        with open(self.blob_path("F", k2), "wb") as f:
            with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=3) as g:
                g.write(d2)
        with open(self.blob_path("F", k2) + "_meta", "w") as f:
            f.write('{"cas_raw": false, "cas_version": 1}')
        with cas_h.Store(self.root, verify=True) as st:
            self.assertEqual(st.get("F", k2), d2)
            self.assertEqual(st.get("F", key), d)

    def test_put_file(self):
        d = np.random.default_rng(2).bytes(3 << 20) + b"tail"
        p = os.path.join(self.root, "input.bin")
        with open(p, "wb") as f:
            f.write(d)
        with cas_h.Store(self.root) as st:
            self.assertEqual(st.put_file("F", p), sha1(d))
            with open(p, "rb") as f:
                self.assertEqual(st.put_file("G", f, version=2), sha1(d))
            self.assertEqual(st.get("F", sha1(d)), d)
            self.assertEqual(st.stat("G", sha1(d)).format, cas_h.V2)

    def test_batch(self):
        datas = [os.urandom(n) for n in (0, 1, 1000, 300000, 2 << 20)] + [b"dup"] * 3
        with cas_h.Store(self.root) as st:
            keys = st.put_many("F", datas)
            self.assertEqual(keys, [sha1(d) for d in datas])
            self.assertEqual(st.get_many("F", keys), datas)
            self.assertEqual(st.get_many("F", keys[::-1], threads=4), datas[::-1])
            keys2 = st.put_many("F2", [bytearray(d) for d in datas], version=2, threads=3)
            self.assertEqual(keys2, keys)
            self.assertEqual(st.put_many("F", []), [])
            with self.assertRaises(cas_h.NotFound) as cm:
                st.get_many("F", keys[:2] + ["f" * 40])
            self.assertEqual(str(cm.exception), "No blob 'F/data/ff/%s' in '%s'" % ("f" * 40, self.root))

    def test_messages_from_the_store(self):
        gz = cas_h.pack(b"abc")[1]
        key = sha1(b"abc")
        name = "F/data/%s/%s" % (key[:2], key)
        os.makedirs(os.path.dirname(self.blob_path("F", key)))
        cases = [
            (b"{}", gz, cas_h.VersionMissing, "Could not extract encoding version for '%s'" % name),
            (b'{"cas_raw": false, "cas_version": 999}', gz, cas_h.UnknownVersion,
             "Unknown encoding version 999 for '%s' -- the artifact is either corrupt or you need to update "
             "Metaflow to the latest version" % name),
            (b'{"cas_raw": false, "cas_version": 1}', gz[:-3], cas_h.TruncatedBlob,
             "Could not unpack artifact '%s': Compressed file ended before the end-of-stream marker was reached"
             % name),
        ]
        with cas_h.Store(self.root) as st:
            for meta, blob, cls, msg in cases:
                with open(self.blob_path("F", key), "wb") as f:
                    f.write(blob)
                with open(self.blob_path("F", key) + "_meta", "wb") as f:
                    f.write(meta)
                for call in (lambda: st.get("F", key), lambda: st.open("F", key).read(),
                             lambda: st.verify("F", key), lambda: st.get_many("F", [key])):
                    with self.assertRaises(cls) as cm:
                        call()
                    self.assertEqual(str(cm.exception), msg)
            # a wrong byte in the data: verify names both hashes
            with open(self.blob_path("F", key), "wb") as f:
                f.write(cas_h.pack(b"abd")[1])
            with open(self.blob_path("F", key) + "_meta", "wb") as f:
                f.write(cas_h.sidecar_json(1))
            self.assertEqual(st.get("F", key), b"abd")  # Metaflow never rehashes on read...
            with self.assertRaises(cas_h.HashMismatch) as cm:
                st.verify("F", key)  # ...verify does
            self.assertIn("content hashes to %s, not to its key %s" % (sha1(b"abd"), key), str(cm.exception))
        with cas_h.Store(self.root, verify=True) as st:
            with self.assertRaises(cas_h.HashMismatch):
                st.get("F", key)

    def test_open_errors_and_close(self):
        fresh = os.path.join(self.root, "new", ".metaflow")  # created, as Metaflow creates .metaflow
        with cas_h.Store(fresh) as st:
            self.assertEqual(st.get("F", st.put("F", b"first")), b"first")
        self.assertTrue(os.path.isdir(fresh))
        with open(os.path.join(self.root, "a_file"), "w"):
            pass
        with self.assertRaises(cas_h.CasIOError) as cm:
            cas_h.Store(os.path.join(self.root, "a_file", "root"))
        self.assertIn("Cannot create the datastore root", str(cm.exception))
        st = cas_h.Store(self.root)
        key = st.put("F", b"x" * 100)
        r = st.open("F", key)
        st.close()
        self.assertTrue(st.closed)
        with self.assertRaises(ValueError):
            st.get("F", key)
        self.assertEqual(r.read(), b"x" * 100)  # a reader outlives its store
        r.close()
        with self.assertRaises(cas_h.InvalidName):
            cas_h.Store(self.root).put("bad/flow", b"x")
        with self.assertRaises(cas_h.InvalidArgument):
            cas_h.Store(self.root, level=99)


class TestThreads(StoreCase):
    def test_four_threads_one_store(self):
        """4 Python threads put and get through one store at once (the GIL is
        released in C, so they really overlap); every result is checked."""
        rng = np.random.default_rng(99)
        shared = [rng.bytes(200000) for _ in range(4)]  # every thread writes these: dedup races
        store = cas_h.Store(self.root)
        errors = []
        checked = [0] * 4
        start = threading.Barrier(4)

        def work(t):
            try:
                local = np.random.default_rng(t)
                start.wait()
                for i in range(30):
                    n = int(local.integers(0, 400000))
                    d = local.bytes(n) if i % 3 else (b"thread %d item %d " % (t, i)) * (n // 20 + 1)
                    version = 1 + (i + t) % 2
                    key = store.put("Flow%d" % (t % 2), d, version=version)
                    assert key == sha1(d), "put key"
                    assert store.get("Flow%d" % (t % 2), key) == d, "get"
                    assert store.exists("Flow%d" % (t % 2), key)
                    with store.open("Flow%d" % (t % 2), key) as f:
                        assert f.read(1000) == d[:1000], "stream"
                    checked[t] += 1
                    if i % 10 == 0:
                        keys = store.put_many("Shared", shared, version=version)
                        assert keys == [sha1(x) for x in shared], "put_many"
                        assert store.get_many("Shared", keys) == shared, "get_many"
                        k, blob = cas_h.pack(d, version=version)
                        assert cas_h.unpack(blob, cas_h.sidecar(version), key=k) == d, "unpack"
                        checked[t] += 1
            except Exception as e:  # reported below with the thread's number
                errors.append((t, repr(e)))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        store.close()
        self.assertEqual(errors, [])
        self.assertEqual(checked, [33] * 4)
        with cas_h.Store(self.root) as st:
            for flow in st.flows():
                for key in st.keys(flow):
                    st.verify(flow, key)

    def test_close_waits_for_calls_in_flight(self):
        store = cas_h.Store(self.root)
        key = store.put("F", os.urandom(4 << 20))
        results = []

        def reader():
            for _ in range(20):
                try:
                    results.append(len(store.get("F", key)))
                except ValueError:  # closed: refused cleanly, never a crash
                    results.append("closed")

        th = [threading.Thread(target=reader) for _ in range(3)]
        for t in th:
            t.start()
        store.close()
        for t in th:
            t.join()
        self.assertTrue(all(r in (4 << 20, "closed") for r in results))


class TestNoLeaks(StoreCase):
    def test_every_c_allocation_is_freed(self):
        """With a counting cas_allocator under every C object: after a tour of
        the API (errors included), nothing allocated by C is still live."""
        counter = CountingAllocator()
        old = cas_h._ALLOC
        cas_h._ALLOC = counter.pointer
        cas_h._tls.__dict__.clear()  # per-thread packers/unpackers get the counting allocator
        try:
            self._tour()
            gc.collect()
        finally:
            cas_h._tls.__dict__.clear()
            gc.collect()
            cas_h._ALLOC = old
        self.assertGreater(counter.total, 100)
        self.assertEqual(counter.live, {})
        self.assertEqual(counter.bad_frees, 0)

    def _tour(self):
        d = os.urandom(300000) + b"a" * 300000
        with cas_h.Store(self.root, verify=True) as st:
            keys = []
            for v in (1, 2):
                keys.append(st.put("F", d + bytes([v]), version=v))
                st.get("F", keys[-1])
                st.verify("F", keys[-1])
                with st.open("F", keys[-1]) as f:
                    f.read(10)  # closed half-way
                st.keys("F"), st.flows(), st.stat("F", keys[-1])
            st.put_many("G", [d, b"x", b""])
            st.get_many("G", [sha1(d), sha1(b"x"), sha1(b"")])
            for bad in ("0" * 40,):
                with self.assertRaises(cas_h.NotFound):
                    st.get("F", bad)
                with self.assertRaises(cas_h.NotFound):
                    st.get_many("F", [keys[0], bad])
                with self.assertRaises(cas_h.NotFound):
                    st.open("F", bad)
            p = os.path.join(self.root, "F", "data", keys[0][:2], keys[0])
            p2 = os.path.join(self.root, "F", "data", keys[1][:2], keys[1])
            with open(p + "_meta", "w") as f:
                f.write("{}")
            with self.assertRaises(cas_h.VersionMissing):
                st.get("F", keys[0])
            with self.assertRaises(cas_h.VersionMissing):
                st.open("F", keys[0])
        for v in (1, 2):
            k, blob = cas_h.pack(d, version=v)
            cas_h.unpack(blob, cas_h.sidecar(v))
            with self.assertRaises(cas_h.TruncatedBlob):
                cas_h.unpack(blob[:-5], cas_h.sidecar(v))
            with cas_h.Packer(version=v) as pk, cas_h.Unpacker() as up:
                up.unpack(pk.pack(d)[1], pk.meta)
            with cas_h.open_blob(p2) as f:
                f.read(5)

    def test_rss_stays_flat(self):
        """Many round trips through every path: resident memory levels off
        (a leak of the 256 KiB payload per call would add > 100 MiB)."""
        d = os.urandom(128 << 10) + b"b" * (128 << 10)
        with cas_h.Store(self.root) as st:
            def round_trip(i):
                k = st.put("F", d, version=1 + i % 2)
                st.get("F", k)
                st.get_many("F", [k, k])
                with st.open("F", k) as f:
                    f.read()
                for v in (1, 2):
                    cas_h.unpack(cas_h.pack(d, version=v)[1], cas_h.sidecar(v))
                try:
                    st.get("F", "1" * 40)
                except cas_h.NotFound:
                    pass

            for i in range(100):
                round_trip(i)
            gc.collect()
            before = rss_bytes()
            for i in range(400):
                round_trip(i)
            gc.collect()
            grown = rss_bytes() - before
        self.assertLess(grown, 16 << 20, "RSS grew by %d bytes over 400 round trips" % grown)


if __name__ == "__main__":
    unittest.main()
