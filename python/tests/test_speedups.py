"""cas_h's speedups (python/cas_h/_speedups.c): the one-blob calls as a CPython
extension. Where this build made it, cas_h uses it (no silent fallback); what it
returns, and every error it leads to, is what the ctypes path gives; and with it
switched off (CAS_H_SPEEDUPS=0) the binding's and the extension's suites pass on
ctypes alone."""

import gzip
import os
import subprocess
import sys
import sysconfig
import threading
import time
import unittest

import cas_h
from cas_h import _lib, codec
from tests._util import REPO

PYDIR = os.path.join(REPO, "python")
BESIDE = os.path.join(os.path.dirname(_lib.path), "_speedups" + sysconfig.get_config_var("EXT_SUFFIX"))


def slow_pack(data, version):
    return cas_h.Packer(version).pack(data)


def slow_unpack(blob, meta, **kw):
    return cas_h.Unpacker().unpack(blob, meta, **kw)


class TestSpeedups(unittest.TestCase):
    def test_used_where_built(self):
        if not os.path.exists(BESIDE):
            self.skipTest("this build has no speedups (no Python.h): %s" % _lib.speedups_missing)
        if os.environ.get("CAS_H_SPEEDUPS") == "0":
            self.assertIsNone(_lib.speedups)
            return
        self.assertEqual(_lib.speedups_path, BESIDE, _lib.speedups_missing)
        self.assertIs(codec._fast, _lib.speedups)
        # bound to the library ctypes loaded: the shim's functions are that library's
        self.assertEqual(_lib.speedups.FUNCTIONS.split()[0], "cas_pack")

    def test_same_answers_as_ctypes(self):
        cases = [b"", b"x", os.urandom(233), b"metaflow " * 30, bytes(range(256)) * 300, os.urandom(70000),
                 b"a" * (1 << 20)]
        for data in cases:
            for version in (1, 2):
                key, blob = cas_h.pack(data, version)
                self.assertEqual((key, blob), slow_pack(data, version), (len(data), version))
                meta = cas_h.sidecar(version)
                self.assertEqual(cas_h.unpack(blob, meta), data)
                self.assertEqual(cas_h.unpack(blob, meta, key=key), data)
                self.assertEqual(cas_h.compress(data, version), blob if version == 2 else cas_h.compress(data, 1))
                self.assertEqual(cas_h.unpack(cas_h.compress(data, version), meta), data)
            self.assertEqual(cas_h.hash_key(data), cas_h.pack(data, raw=True)[0])
            self.assertEqual(cas_h.hash_key(bytearray(data)), cas_h.hash_key(data))
            if cas_h.hash_available(cas_h.XXH3):
                self.assertEqual(len(cas_h.hash_key(data, cas_h.XXH3)), 32)
        # compress at a level: as a Packer at that level makes the blob; a level no codec has is refused
        text = b"metaflow artifact " * 4000
        for version, level in ((1, 1), (1, 9), (2, 9)):
            with cas_h.Packer(version=version, level=level) as p:
                self.assertEqual(cas_h.compress(text, version, level), p.pack(text)[1])
        self.assertNotEqual(cas_h.compress(text, 1, 1), cas_h.compress(text, 1, 9))
        with self.assertRaises(cas_h.CasError) as cm:
            cas_h.compress(text, 1, 99)
        self.assertIn("Could not pack artifact", str(cm.exception))
        # legacy (no sidecar): gzip by Python's own module
        self.assertEqual(cas_h.unpack(gzip.compress(b"legacy" * 100)), b"legacy" * 100)

    def test_same_errors_as_ctypes(self):
        data = b"some artifact " * 40
        key, gz = cas_h.pack(data, 1)
        _, lz = cas_h.pack(data, 2)
        bad = [
            (gz[:-5], cas_h.sidecar(1), {}),  # cut short
            (lz, cas_h.sidecar(1), {}),  # the sidecar says gzip
            (b"garbage!" * 4, cas_h.sidecar(2), {}),
            (gz, {"cas_raw": False}, {}),  # no version
            (gz, {"cas_raw": False, "cas_version": 9}, {}),
            (gz, cas_h.sidecar(1), {"key": "0" * 40}),  # not its key
            (gz, cas_h.sidecar(1), {"name": "F/data/ab/abc", "key": "0" * 40}),
            (lz[:7] + b"\xff" + lz[8:], cas_h.sidecar(2), {}),  # header checksum
        ]
        for blob, meta, kw in bad:
            with self.assertRaises(cas_h.CasError) as fast:
                cas_h.unpack(blob, meta, **kw)
            with self.assertRaises(cas_h.CasError) as slow:
                slow_unpack(blob, meta, **kw)
            self.assertIs(type(fast.exception), type(slow.exception), (blob[:8], meta, kw))
            self.assertEqual(str(fast.exception), str(slow.exception))
        # and the reader is fine for the next blob after each failure
        self.assertEqual(cas_h.unpack(gz, cas_h.sidecar(1), key=key), data)
        for f in (lambda: cas_h.pack("text"), lambda: cas_h.hash_key("text"), lambda: cas_h.compress("text", 2),
                  lambda: cas_h.unpack("text", cas_h.sidecar(2))):
            self.assertRaises(TypeError, f)
        self.assertRaises(cas_h.CasError, cas_h.hash_key, b"x", 99)

    def test_lying_size_fields(self):
        """A stated size is a size to allocate, never a promise: too small, too large or
        impossible, the bytes decoded are right or the error is the blob's."""
        data = os.urandom(1000) * 70  # 70,000 bytes
        gz = gzip.compress(data)
        for stated in (1, 100, 69999, 70001, 1 << 31, 0xFFFFFFFF):
            liar = gz[:-4] + stated.to_bytes(4, "little")
            with self.assertRaises(cas_h.CasError) as fast:
                cas_h.unpack(liar, cas_h.sidecar(1))
            with self.assertRaises(cas_h.CasError) as slow:
                slow_unpack(liar, cas_h.sidecar(1))
            self.assertEqual(str(fast.exception), str(slow.exception))
        # an LZ4 frame without a content size decodes through the scratch or the growing path
        import lz4.frame
        for n in (10, 60000, 300000):
            blob = lz4.frame.compress(b"z" * n, store_size=False)
            self.assertEqual(cas_h.unpack(blob, cas_h.sidecar(2)), b"z" * n)
        # a frame left unfinished (cut) leaves this thread's reader fit for the next
        # frame, one that states no size included (lz4 1.9.4 kept the cut frame's
        # remaining size and refused it)
        _, empty = cas_h.pack(b"", 2)
        cut = lz4.frame.compress(data)[:-100]
        for nosize in (empty, lz4.frame.compress(b"y" * 5000, store_size=False)):
            self.assertRaises(cas_h.CasError, cas_h.unpack, cut, cas_h.sidecar(2))
            self.assertEqual(cas_h.unpack(nosize, cas_h.sidecar(2)), lz4.frame.decompress(nosize))

    def test_threads(self):
        """Each thread has its own writer and reader; large calls run without the GIL."""
        datas = [os.urandom(1 << 10) * (64 * (i + 1)) for i in range(4)]  # 64 KiB .. 256 KiB
        want = [slow_pack(d, 2) for d in datas]
        errors = []

        def work(i):
            try:
                for _ in range(20):
                    for d, (k, b) in zip(datas, want):
                        if cas_h.pack(d, 2) != (k, b) or cas_h.unpack(b, cas_h.sidecar(2)) != d:
                            errors.append(i)
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])

    @unittest.skipUnless(hasattr(os, "fork"), "no fork here")
    def test_fork(self):
        """A forked child (Metaflow's parallel_map forks) packs with its copy of this
        thread's writer, whose kept helper thread is not in the child."""
        data = os.urandom(52000)
        want = slow_pack(data, 2)
        for _ in range(2):  # a writer used again: its helper thread runs in this process
            self.assertEqual(cas_h.pack(data, 2), want)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child's answer is its exit code
            ok = all(cas_h.pack(data, 2) == want for _ in range(3))
            os._exit(0 if ok else 1)
        for _ in range(2000):  # a child that hangs fails the test, not the suite
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.01)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            self.fail("the forked child hung packing")
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        self.assertEqual(cas_h.pack(data, 2), want)

    @unittest.skipIf(os.environ.get("CAS_H_SPEEDUPS") == "0", "already switched off")
    def test_suites_without_speedups(self):
        env = dict(os.environ, CAS_H_SPEEDUPS="0", PYTHONPATH=PYDIR)
        r = subprocess.run([sys.executable, "-m", "unittest", "tests.test_binding", "tests.test_extension",
                            "tests.test_speedups"], env=env, cwd=PYDIR, capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertIn("OK", r.stderr[-200:])


if __name__ == "__main__":
    unittest.main()
