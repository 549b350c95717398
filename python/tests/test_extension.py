"""The Metaflow extension against the stand-in ContentAddressedStore
(tests/mf_standin.py), switched on and off, with the fixture stores."""

import contextlib
import gzip
import hashlib
import importlib
import io
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import unittest
import unittest.mock

import lz4.frame
import numpy as np

import cas_h
from metaflow_extensions.cas_h import cas_store, preview
from tests import mf_standin
from tests._util import edge_cases, fixture_stores

CAS = mf_standin.ContentAddressedStore
CAS2 = mf_standin.StandInStoreV2
DataException = mf_standin.DataException


def sha1(b):
    return hashlib.sha1(b).hexdigest()


def on(cls=CAS, version=1, verify=False):
    cas_store.install(version, verify, cls=cls, data_exception=DataException)


def pristine(cls):
    return {k: v for k, v in vars(cls).items()}


SNAPSHOT = {c: pristine(c) for c in (CAS, CAS2)}


class ExtCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cas_h_ext_")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.addCleanup(self.off)

    def off(self):
        for c in (CAS, CAS2):
            cas_store.uninstall(c)
            self.assertEqual(pristine(c), SNAPSHOT[c])

    def store(self, cls=CAS, root=None, flow="TestFlow"):
        backend = mf_standin.LocalBackend(root or self.tmp)
        return cls(backend.path_join(flow, "data"), backend)

    @staticmethod
    def load(store, keys, **kw):
        return dict(store.load_blobs(keys, **kw))


class TestSwitch(ExtCase):
    def cfg(self, **env):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            used = cas_store.install_from_config(cls=CAS, data_exception=DataException, env=env)
        return used, err.getvalue()

    def test_off_by_default(self):
        self.assertEqual(self.cfg(), (False, ""))
        self.assertEqual(self.cfg(METAFLOW_CAS_H="0"), (False, ""))
        self.assertEqual(self.cfg(METAFLOW_CAS_H="false"), (False, ""))
        self.assertEqual(pristine(CAS), SNAPSHOT[CAS])  # exactly as without the extension
        self.assertIsNone(cas_store.installed(CAS))

    def test_on(self):
        self.assertEqual(self.cfg(METAFLOW_CAS_H="1"), (True, ""))
        self.assertEqual(cas_store.installed(CAS), (1, False))
        self.assertTrue(CAS._unpack_v2._cas_h)  # v2 reads on a Metaflow without PR #3090
        self.assertEqual(self.cfg(METAFLOW_CAS_H="true", METAFLOW_CAS_H_VERSION="2", METAFLOW_CAS_H_VERIFY="1"),
                         (True, ""))
        self.assertEqual(cas_store.installed(CAS), (2, True))
        used, err = self.cfg(METAFLOW_CAS_H="1", METAFLOW_CAS_H_VERSION="7")
        self.assertTrue(used)
        self.assertIn("METAFLOW_CAS_H_VERSION must be 1 or 2", err)
        self.assertEqual(cas_store.installed(CAS), (1, False))
        cas_store.uninstall(CAS)
        self.assertEqual(pristine(CAS), SNAPSHOT[CAS])
        self.assertFalse(hasattr(CAS, "_unpack_v2"))

    def test_missing_library_falls_back(self):
        saved = os.environ.get("CAS_H_LIBRARY")
        os.environ["CAS_H_LIBRARY"] = "/nonexistent/libcas.so"
        mods = {k: sys.modules.pop(k) for k in list(sys.modules) if k == "cas_h" or k.startswith("cas_h.")}
        try:
            used, err = self.cfg(METAFLOW_CAS_H="1")
        finally:
            sys.modules.update(mods)
            if saved is None:
                os.environ.pop("CAS_H_LIBRARY")
            else:
                os.environ["CAS_H_LIBRARY"] = saved
        self.assertFalse(used)
        self.assertIn("METAFLOW_CAS_H is on but cas.h is not used: cas_h cannot find libcas.so", err)
        self.assertIn("$CAS_H_LIBRARY: /nonexistent/libcas.so does not exist", err)
        self.assertEqual(pristine(CAS), SNAPSHOT[CAS])

    def test_toplevel_module_exports_nothing(self):
        # Metaflow copies a toplevel module's public names into `metaflow`
        saved = os.environ.pop("METAFLOW_CAS_H", None)
        try:
            mod = importlib.import_module("metaflow_extensions.cas_h.toplevel.cas_h_toplevel")
        finally:
            if saved is not None:
                os.environ["METAFLOW_CAS_H"] = saved
        self.assertEqual([n for n in vars(mod) if not n.startswith("__")], [])
        init = importlib.import_module("metaflow_extensions.cas_h.toplevel.mfextinit_cas_h")
        self.assertEqual(init.toplevel, "cas_h_toplevel")

    def test_unknown_save_blobs_signature_is_left_alone(self):
        class Future(CAS):
            def save_blobs(self, blob_iter, raw=False, len_hint=0, is_transfer=False, compression=None):
                return CAS.save_blobs(self, blob_iter, raw, len_hint, is_transfer)

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            cas_store.install(2, cls=Future, data_exception=DataException)
        try:
            self.assertIn("unknown signature", err.getvalue())
            self.assertIn("Future.save_blobs", err.getvalue())
            self.assertFalse(hasattr(Future.save_blobs, "_cas_h"))
            self.assertTrue(Future._pack_v1._cas_h)
            st = self.store(Future)
            key = st.save_blobs([b"future"])[0].key
            self.assertEqual(self.load(st, [key]), {key: b"future"})
        finally:
            cas_store.uninstall(Future)


class TestFixtures(ExtCase):
    def test_reads_every_fixture(self):
        on()
        n = 0
        for name, root, manifest in fixture_stores():
            st = self.store(root=root, flow="FixtureFlow")
            keys = sorted({a["key"] for a in manifest})
            got = self.load(st, keys)
            self.assertEqual(sorted(got), keys)
            for k, v in got.items():
                self.assertEqual(sha1(v), k, name)
                n += 1
        root, cases = edge_cases()
        st = self.store(root=root, flow="EdgeFlow")
        got = self.load(st, [c["key"] for c in cases.values()])
        for case, c in cases.items():
            self.assertEqual((sha1(got[c["key"]]), len(got[c["key"]])), (c["key"], c["size"]), case)
        self.assertGreater(n, 90)

    def test_stock_reads_v1_not_v2(self):
        stores = {name: (root, manifest) for name, root, manifest in fixture_stores()}
        root, manifest = stores["v1"]
        st = self.store(root=root, flow="FixtureFlow")
        for k, v in self.load(st, {a["key"] for a in manifest}).items():
            self.assertEqual(sha1(v), k)
        root, manifest = stores["v2"]
        key = manifest[0]["key"]
        with self.assertRaises(DataException) as cm:
            self.load(self.store(root=root, flow="FixtureFlow"), [key])
        self.assertEqual(str(cm.exception), "Unknown encoding version 2 for 'FixtureFlow/data/%s/%s' -- the "
                         "artifact is either corrupt or you need to update Metaflow to the latest version"
                         % (key[:2], key))
        on()  # the extension reads it on the same (pre-#3090) class
        self.assertEqual(sha1(self.load(self.store(root=root, flow="FixtureFlow"), [key])[key]), key)

    def test_preview(self):
        on()  # to load the whole blobs for comparison; previews do not need it
        for name, root, manifest in fixture_stores():
            st = self.store(root=root, flow="FixtureFlow")
            big = max(manifest, key=lambda a: a["size"])
            full = self.load(st, [big["key"]])[big["key"]]
            for n in (0, 1, 100, 70000):
                self.assertEqual(preview.preview_blob(st, big["key"], n), full[:n])
            self.assertEqual(preview.preview_local(root, big["pathspec"], big["name"], 333), full[:333])
        root, cases = edge_cases()
        st = self.store(root=root, flow="EdgeFlow")
        for case, c in cases.items():
            full = self.load(st, [c["key"]])[c["key"]]
            self.assertEqual(preview.preview_blob(st, c["key"], 10), full[:10], case)
        with self.assertRaises(cas_h.CasError):  # without Metaflow, the binding's errors
            preview.preview_blob(st, "0" * 40, 10)


class TestWrites(ExtCase):
    def datas(self):
        rng = np.random.default_rng(4)
        return [b"", b"small", b"text " * 10000, rng.bytes(300000),  # small and large
                (b"pickle-ish " * 200000) + rng.bytes(5000)]

    def files(self, root):
        out = {}
        for d, _, fs in os.walk(root):
            for f in fs:
                with open(os.path.join(d, f), "rb") as fh:
                    out[os.path.relpath(os.path.join(d, f), root)] = fh.read()
        return out

    def test_v1_same_keys_sidecars_and_readers(self):
        datas = self.datas()
        stock_root = os.path.join(self.tmp, "stock")
        stock = self.store(root=stock_root)
        stock_res = stock.save_blobs(iter(datas))
        on()
        ext_root = os.path.join(self.tmp, "ext")
        ext = self.store(root=ext_root)
        res = ext.save_blobs(iter(datas), len_hint=len(datas))
        self.assertEqual(res, stock_res)  # same keys, uri None
        self.assertEqual([r.key for r in res], [sha1(d) for d in datas])
        self.assertEqual(ext._storage_impl.saved, stock._storage_impl.saved)  # same paths, same metadata
        a, b = self.files(stock_root), self.files(ext_root)
        self.assertEqual(sorted(a), sorted(b))
        for path, content in b.items():
            if path.endswith("_meta"):
                self.assertEqual(content, a[path])
                self.assertEqual(content, b'{"cas_raw": false, "cas_version": 1}')
            else:
                self.assertEqual(gzip.decompress(content), gzip.decompress(a[path]))
        # the extension reads stock's blobs, and stock (switched off) reads the extension's
        keys = [r.key for r in res]
        self.assertEqual(self.load(self.store(root=stock_root), keys), dict(zip(keys, datas)))
        cas_store.uninstall(CAS)
        self.assertEqual(self.load(self.store(root=ext_root), keys), dict(zip(keys, datas)))

    def test_v2(self):
        datas = self.datas()
        on(version=2)
        st = self.store()
        keys = [r.key for r in st.save_blobs(datas)]
        self.assertEqual(keys, [sha1(d) for d in datas])
        for (path, meta), d in zip(st._storage_impl.saved, datas):
            self.assertEqual(meta, {"cas_raw": False, "cas_version": 2})
            with open(os.path.join(self.tmp, path), "rb") as f:
                self.assertEqual(lz4.frame.decompress(f.read()), d)
        self.assertEqual(self.load(st, keys), dict(zip(keys, datas)))
        cas_store.uninstall(CAS)
        # Metaflow with PR #3090 reads them; a Metaflow without it says so
        self.assertEqual(self.load(self.store(CAS2), keys), dict(zip(keys, datas)))
        with self.assertRaises(DataException) as cm:
            self.load(self.store(CAS), keys[:1])
        self.assertIn("Unknown encoding version 2 for 'TestFlow/data/", str(cm.exception))
        # and the extension on PR #3090's class writes v1 unless asked for v2
        on(CAS2)
        self.store(CAS2, root=os.path.join(self.tmp, "b")).save_blobs([b"on a PR #3090 Metaflow"])
        with open(os.path.join(self.tmp, "b", "TestFlow", "data", sha1(b"on a PR #3090 Metaflow")[:2],
                               sha1(b"on a PR #3090 Metaflow") + "_meta")) as f:
            self.assertEqual(json.load(f), {"cas_raw": False, "cas_version": 1})

    def test_raw_dedup_transfer_cache(self):
        on()
        st = self.store()
        datas = self.datas()
        res = st.save_blobs(datas, raw=True)
        for r, d in zip(res, datas):
            self.assertEqual(r.key, sha1(d))
            self.assertEqual(r.uri, os.path.join(self.tmp, "TestFlow/data/%s/%s" % (r.key[:2], r.key)))
            with open(r.uri, "rb") as f:
                self.assertEqual(f.read(), d)  # raw: readable at its URI as is
            with open(r.uri + "_meta") as f:
                self.assertEqual(json.load(f), {"cas_raw": True, "cas_version": 1})
        n_saved = len(st._storage_impl.saved)
        again = st.save_blobs(datas)  # existing keys: nothing written, keys returned
        self.assertEqual([r.key for r in again], [r.key for r in res])
        self.assertEqual(len(st._storage_impl.saved), n_saved)
        self.assertEqual(self.load(st, [r.key for r in res], force_raw=True), {sha1(d): d for d in datas})
        # transfer into another store: stored raw, metadata kept on the way out
        other = self.store(root=os.path.join(self.tmp, "other"))
        moved = list(st.load_blobs([r.key for r in res], is_transfer=True))
        self.assertTrue(all(len(t) == 3 for t in moved))
        out = other.save_blobs(moved, is_transfer=True)
        self.assertEqual(sorted(r.key for r in out), sorted(sha1(d) for d in datas))
        self.assertTrue(all(m == {"cas_raw": True, "cas_version": 1} for _, m in other._storage_impl.saved))
        # the blob cache is consulted and fed as before
        cache = mf_standin.DictBlobCache()
        st.set_blob_cache(cache)
        keys = [r.key for r in res]
        self.load(st, keys)
        self.assertEqual(set(cache.d), set(keys))
        shutil.rmtree(os.path.join(self.tmp, "TestFlow"))
        self.assertEqual(self.load(st, keys), {sha1(d): d for d in datas})  # served from the cache

    def test_buffers(self):
        on()
        st = self.store()
        arr = np.arange(100000, dtype=np.int64)
        res = st.save_blobs([bytearray(b"ba"), memoryview(b"mv"), arr])
        self.assertEqual([r.key for r in res], [sha1(b"ba"), sha1(b"mv"), sha1(arr.tobytes())])
        self.assertEqual(self.load(st, [res[2].key])[res[2].key], arr.tobytes())


class TestBatches(ExtCase):
    """save_blobs and load_blobs hand cas.h a batch at a time: what Metaflow's
    own code stores, returns and raises, whatever the batch edges."""

    def blobs(self):
        rng = np.random.default_rng(11)
        out = [b"", b"x", b"dup" * 40, b"dup" * 40, rng.integers(0, 4, 300000, dtype=np.uint8).tobytes()]
        out += [("artifact %d" % i).encode() * (i + 1) for i in range(40)]
        return out + [b"x"]  # again, in another batch

    def small_batches(self):
        """Batches of 7 blobs: the edges between batches are crossed."""
        self.addCleanup(setattr, cas_store, "_BATCH_ITEMS", cas_store._BATCH_ITEMS)
        cas_store._BATCH_ITEMS = 7

    def check_save_load(self, cls, version):
        blobs = self.blobs()
        stock = self.store(cls, root=os.path.join(self.tmp, "stock"))
        want = stock.save_blobs(blobs)  # Metaflow's own code (the stand-in)
        on(cls, version)
        st = self.store(cls)
        st.save_blobs([blobs[1]])  # already there: not written again
        before = len(st._storage_impl.saved)
        got = st.save_blobs(iter(blobs), len_hint=len(blobs))
        self.assertEqual(got, want)  # keys, in order, uris None
        written = [p for p, _ in st._storage_impl.saved[before:]]
        self.assertEqual(len(written), len(set(written)))  # a blob twice is written once
        self.assertEqual(len(written), len(set(blobs)) - 1)
        meta = {"cas_raw": False, "cas_version": version}
        self.assertTrue(all(m == meta for _, m in st._storage_impl.saved))
        keys = [r.key for r in got]
        # read back by cas.h's batches and by the stand-in's own code: the same bytes
        self.assertEqual(list(st.load_blobs(keys)), [(sha1(b), b) for b in blobs])
        cas_store.uninstall(cls)
        self.assertEqual(self.load(st if version == 1 or cls is CAS2 else self.store(CAS2), keys),
                         {sha1(b): b for b in blobs})

    def test_v1_and_v2(self):
        for cls, version in ((CAS, 1), (CAS2, 2), (CAS, 2)):
            with self.subTest(version=version, cls=cls.__name__):
                self.check_save_load(cls, version)
                shutil.rmtree(self.tmp)
                os.makedirs(self.tmp)

    def test_many_batches(self):
        self.small_batches()
        self.check_save_load(CAS2, 2)

    def test_largest_packed_beside_the_writes(self):
        """v2: a batch's largest blob (from _LATE_MIN on) is packed on a thread while
        the storage writes the others: the same results, files and reads as Metaflow's
        code, and no thread outlives the save, also when that pack fails or the
        storage stops early."""
        self.addCleanup(setattr, cas_store, "_LATE_MIN", cas_store._LATE_MIN)
        cas_store._LATE_MIN = 1000
        self.check_save_load(CAS2, 2)
        on(CAS2, 2)
        st = self.store(CAS2, root=os.path.join(self.tmp, "late"))
        big = os.urandom(5000)
        st.save_blobs([big])
        before = len(st._storage_impl.saved)
        batch = [b"a", big, b"b", big]  # the largest already stored, and twice in the batch
        self.assertEqual([r.key for r in st.save_blobs(batch)], [sha1(b) for b in batch])
        self.assertEqual(len(st._storage_impl.saved), before + 2)
        other = os.urandom(6000)
        got = st.save_blobs([other, b"c", other])  # the largest first, and twice
        self.assertEqual([r.key for r in got], [sha1(other), sha1(b"c"), sha1(other)])
        self.assertEqual(self.load(st, [sha1(other), sha1(b"c")]), {sha1(other): other, sha1(b"c"): b"c"})
        threads = threading.active_count()
        with unittest.mock.patch.object(cas_h, "pack", side_effect=MemoryError("late pack failed")):
            with self.assertRaisesRegex(MemoryError, "late pack failed"):
                st.save_blobs([b"d", os.urandom(3000)])
        self.assertEqual(threading.active_count(), threads)

        class StopsEarly(mf_standin.LocalBackend):
            def save_bytes(self, items, overwrite=False, len_hint=0):
                for _ in items:
                    raise OSError("disk full")

        with unittest.mock.patch.object(threading.Thread, "start", side_effect=RuntimeError("can't start new thread")):
            batch = [b"f", os.urandom(4000), b"g"]  # no thread to be had: packed on the caller's
            self.assertEqual([r.key for r in st.save_blobs(batch)], [sha1(b) for b in batch])
        self.assertEqual(self.load(st, [sha1(batch[1])]), {sha1(batch[1]): batch[1]})
        stops = CAS2("TestFlow/data", StopsEarly(os.path.join(self.tmp, "full")))
        with self.assertRaisesRegex(OSError, "disk full"):
            stops.save_blobs([b"e", os.urandom(3000)])
        self.assertEqual(threading.active_count(), threads)

    def test_large_blobs_decoded_from_mmaps(self):
        """Blob files from _MMAP_MIN on are decoded in place from a read-only mmap
        (in a batch and alone); raw blobs are read (their bytes are the artifact)."""
        on(CAS2, 2)
        st = self.store(CAS2)
        self.addCleanup(setattr, cas_store, "_MMAP_MIN", cas_store._MMAP_MIN)
        cas_store._MMAP_MIN = 1024
        blobs = [bytes(range(256)) * 64, os.urandom(20000), b"small"]  # the second is over _FIRST_READ stored
        keys = [r.key for r in st.save_blobs(blobs)]
        raw = st.save_blobs([os.urandom(4000)], raw=True)[0].key
        seen = []
        real = cas_h.unpack_many

        def spy(datas, metas, **kw):
            seen.extend(type(d).__name__ for d in datas)
            return real(datas, metas, **kw)

        with unittest.mock.patch.object(cas_h, "unpack_many", spy):
            self.assertEqual(list(st.load_blobs(keys)), [(sha1(b), b) for b in blobs])
        self.assertIn("mmap", seen)
        self.assertEqual(list(st.load_blobs(keys[:1])), [(keys[0], blobs[0])])
        got = dict(st.load_blobs([raw, keys[1]]))
        self.assertIs(type(got[raw]), bytes)
        self.assertEqual(got[keys[1]], blobs[1])

    def test_large_v2_decoded_straight_from_files(self):
        """A v2 blob file from _DIRECT_MIN on, loaded alone, is decoded straight into
        its bytes (cas_unpack_v2_fd: no mapping); frames that path does not take
        (checksums, no content size, bytes after the end) and bad ones come out
        exactly as the general path gives them. In a batch, such files are decoded
        the same way by one call (cas_unpack_v2_fd_many), and none is left open,
        also when the caller stops early."""
        on(CAS2, 2)
        st = self.store(CAS2)
        rnd = random.Random(7)
        stored = bytes(rnd.getrandbits(8) for _ in range(300000))  # incompressible: stored blocks
        linked = b"".join(b"row %d: %s\n" % (i, b"x" * (i % 50)) for i in range(20000))  # compressed, linked
        blobs = [stored, linked, b"small"]
        keys = [r.key for r in st.save_blobs(blobs)]
        sources = {"checksums": stored[:150000], "no size": stored[:200000],
                   "4 MB independent": stored[:100000] + linked[:150000]}
        odd = {  # frames written by python-lz4 with what cas.h's writer never sets
            "checksums": lz4.frame.compress(sources["checksums"], content_checksum=True, block_checksum=True),
            "no size": lz4.frame.compress(sources["no size"], store_size=False),
            "4 MB independent": lz4.frame.compress(sources["4 MB independent"], block_size=lz4.frame.BLOCKSIZE_MAX4MB,
                                                   block_linked=False),
        }
        for name, frame in odd.items():
            key = sha1(sources[name])
            path = os.path.join(self.tmp, "TestFlow", "data", key[:2], key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(frame)
            with open(path + "_meta", "w") as f:
                f.write('{"cas_raw": false, "cas_version": 2}')
            keys.append(key)
            blobs.append(sources[name])
        used, many = [], []
        real, real_many = cas_h.unpack_v2_fd, cas_h.unpack_v2_fd_many

        def spy(fd, head=None, most=1 << 30):
            out = real(fd, head, most)
            used.append(out is not None)
            return out

        def spy_many(fds, heads=None, most=1 << 30, threads=0):
            outs = real_many(fds, heads, most, threads)
            many.append([out is not None for out in outs])
            return outs

        fds = set(os.listdir("/proc/self/fd"))
        with unittest.mock.patch.object(cas_h, "unpack_v2_fd", spy), \
                unittest.mock.patch.object(cas_h, "unpack_v2_fd_many", spy_many):
            self.assertEqual(list(st.load_blobs(keys)), [(sha1(b), b) for b in blobs])  # a batch
            # one call for the large ones that state their size (not "no size"); checksums: the general path
            self.assertEqual((used, many), ([], [[True, True, False, True]]))
            for key, blob in zip(keys, blobs):  # alone
                self.assertEqual(list(st.load_blobs([key])), [(key, blob)])
            gen = st.load_blobs(keys)
            self.assertEqual(next(gen), (keys[0], blobs[0]))
            gen.close()  # stopped early: the batch's files are closed
            self.assertEqual(set(os.listdir("/proc/self/fd")), fds)
        # the small one never asks; checksums and no size take the general path
        self.assertEqual(used, [True, True, False, False, True], used)
        # bad files: the same outcome as the general path's, word for word
        cases = {"truncated": lambda b: b[:-5], "flipped": lambda b: b[:5000] + bytes([b[5000] ^ 0xff]) + b[5001:],
                 "trailing": lambda b: b + b"junk", "bad block size": lambda b: b[:7] + b"\xff\xff\xff\x7f" + b[11:]}
        self.addCleanup(setattr, cas_store, "_DIRECT_MIN", cas_store._DIRECT_MIN)
        for name, spoil in cases.items():
            key = keys[1]
            path = os.path.join(self.tmp, "TestFlow", "data", key[:2], key)
            good = cas_h.compress(linked, 2)
            with open(path, "wb") as f:
                f.write(spoil(good))
            outcomes = []
            for direct_min in (cas_store._DIRECT_MIN, 1 << 62):
                cas_store._DIRECT_MIN = direct_min
                for ks in (keys[:2], keys[1:2]):
                    try:
                        outcomes.append(("ok", [b for _, b in st.load_blobs(ks)] == [blobs[k] for k in range(2)][
                            -len(ks):]))
                    except Exception as e:
                        outcomes.append((type(e).__name__, str(e)))
            cas_store._DIRECT_MIN = 1 << 16
            self.assertEqual(outcomes[:2], outcomes[2:], name)
            with open(path, "wb") as f:
                f.write(good)

    def test_decoded_bytes_bound_a_group(self):
        """A batch is decoded in groups whose stated decoded sizes fit the budget: a load
        holds no more decoded bytes than that, whatever the blobs compress to."""
        on(CAS2, 2)
        st = self.store(CAS2)
        blobs = [bytes([i]) * 3000 for i in range(12)]  # ~30 bytes each compressed, 3000 decoded
        keys = [r.key for r in st.save_blobs(blobs)]
        self.addCleanup(setattr, cas_store, "_BATCH_BYTES", cas_store._BATCH_BYTES)
        cas_store._BATCH_BYTES = 7000
        groups = []
        real = cas_h.unpack_many

        def spy(datas, metas, **kw):
            groups.append(sum(kw["sizes"]))
            return real(datas, metas, **kw)

        with unittest.mock.patch.object(cas_h, "unpack_many", spy):
            self.assertEqual(list(st.load_blobs(keys)), [(sha1(b), b) for b in blobs])
        self.assertTrue(groups and max(groups) <= 7000, groups)

    def test_bad_blob_mid_batch(self):
        """The blobs before a bad one come out, then Metaflow's DataException for it."""
        self.small_batches()
        on()
        st = self.store()
        blobs = [("blob %d" % i).encode() * 30 for i in range(10)]
        keys = [r.key for r in st.save_blobs(blobs)]
        bad = os.path.join(self.tmp, "TestFlow", "data", keys[4][:2], keys[4])
        with open(bad, "r+b") as f:
            f.truncate(os.path.getsize(bad) - 3)
        got = []
        with self.assertRaises(DataException) as cm:
            for item in st.load_blobs(keys):
                got.append(item)
        self.assertEqual([k for k, _ in got], keys[:4])
        self.assertEqual(str(cm.exception), "Could not unpack artifact 'TestFlow/data/%s/%s': Compressed file ended "
                         "before the end-of-stream marker was reached" % (keys[4][:2], keys[4]))

    def test_mixed_formats_and_foreign_unpacker(self):
        """Raw, legacy, v1 and v2 blobs in one load; a subclass's own _unpack_v1 is still called."""
        on(CAS2, 2)
        st = self.store(CAS2)
        v2 = st.save_blobs([b"two" * 50])[0].key
        raw = st.save_blobs([b"raw bytes"], raw=True)[0].key
        legacy = sha1(b"legacy" * 20)
        path = os.path.join(self.tmp, "TestFlow", "data", legacy[:2], legacy)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(gzip.compress(b"legacy" * 20))
        self.assertEqual(self.load(st, [v2, raw, legacy]),
                         {v2: b"two" * 50, raw: b"raw bytes", legacy: b"legacy" * 20})
        calls = []

        class Mine(CAS2):
            def _unpack_v2(self, blob):
                calls.append(1)
                return lz4.frame.decompress(blob.read())

        mine = self.store(Mine)
        self.assertEqual(self.load(mine, [v2, legacy]), {v2: b"two" * 50, legacy: b"legacy" * 20})
        self.assertEqual(calls, [1])


class TestMessages(ExtCase):
    """DataException messages with the extension equal stock's word for word."""

    CASES = [
        ("empty sidecar", "{}", None, "Could not extract encoding version for '%s'"),
        ("version 999", '{"cas_raw": false, "cas_version": 999}', None,
         "Unknown encoding version 999 for '%s' -- the artifact is either corrupt or you need to update "
         "Metaflow to the latest version"),
        ("truncated gzip", '{"cas_raw": false, "cas_version": 1}', lambda gz: gz[:-3],
         "Could not unpack artifact '%s': Compressed file ended before the end-of-stream marker was reached"),
        ("trailing garbage", '{"cas_raw": false, "cas_version": 1}', lambda gz: gz + b"xy",
         "Could not unpack artifact '%s': Not a gzipped file (b'xy')"),
        ("bad crc", '{"cas_raw": false, "cas_version": 1}', lambda gz: gz[:-8] + bytes([gz[-8] ^ 1]) + gz[-7:],
         None),
        ("not gzip", '{"cas_raw": false, "cas_version": 1}', lambda gz: b"raw bytes here",
         "Could not unpack artifact '%s': Not a gzipped file (b'ra')"),
    ]

    def write(self, meta, blob):
        data = b"the artifact's pickle" * 50
        key = sha1(data)
        gz = gzip.compress(data, compresslevel=3)
        path = os.path.join(self.tmp, "TestFlow", "data", key[:2], key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(blob(gz) if blob else gz)
        with open(path + "_meta", "w") as f:
            f.write(meta)
        return key, "TestFlow/data/%s/%s" % (key[:2], key)

    def message(self, key):
        with self.assertRaises(DataException) as cm:
            self.load(self.store(), [key])
        return str(cm.exception)

    def test_same_words(self):
        for what, meta, blob, expected in self.CASES:
            key, name = self.write(meta, blob)
            stock = self.message(key)
            on()
            ext = self.message(key)
            cas_store.uninstall(CAS)
            self.assertEqual(ext, stock, what)
            if expected:
                self.assertEqual(ext, expected % name, what)

    def test_lz4_messages(self):
        data = b"lz4 artifact" * 100
        key = sha1(data)
        path = os.path.join(self.tmp, "TestFlow", "data", key[:2], key)
        os.makedirs(os.path.dirname(path))
        with open(path, "wb") as f:
            f.write(lz4.frame.compress(data)[:-2])
        with open(path + "_meta", "w") as f:
            f.write('{"cas_raw": false, "cas_version": 2}')
        on()
        self.assertEqual(self.message(key), "Could not unpack artifact 'TestFlow/data/%s/%s': LZ4 frame ended "
                         "before the end-of-stream marker was reached" % (key[:2], key))

    def test_verify(self):
        key, name = self.write('{"cas_raw": false, "cas_version": 1}', lambda gz: gzip.compress(b"other bytes"))
        on(verify=False)
        self.assertEqual(self.load(self.store(), [key])[key], b"other bytes")  # as Metaflow: never rehashed
        on(verify=True)
        self.assertEqual(self.message(key), "Could not unpack artifact '%s': content hashes to %s, not to its "
                         "key %s" % (name, sha1(b"other bytes"), key))


if __name__ == "__main__":
    unittest.main()
