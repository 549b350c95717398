"""Finding libcas.so: $CAS_H_LIBRARY, next to the package, the checkout's
build/, the system path; a clear message naming what was tried."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import cas_h
from tests._util import REPO

PYDIR = os.path.join(REPO, "python")


def run(code, env_extra, cwd=None, pythonpath=PYDIR):
    env = {k: v for k, v in os.environ.items() if k != "CAS_H_LIBRARY"}
    env.update(env_extra)
    env["PYTHONPATH"] = pythonpath
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd or tempfile.gettempdir(),
                          capture_output=True, text=True, timeout=60)


class TestLoading(unittest.TestCase):
    def test_env_variable(self):
        r = run("import cas_h; print(cas_h.library_path)", {"CAS_H_LIBRARY": cas_h.library_path})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), cas_h.library_path)

    def test_env_variable_wrong(self):
        r = run("import cas_h", {"CAS_H_LIBRARY": "/nonexistent/libcas.so"})
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ImportError: cas_h cannot find libcas.so. Tried:", r.stderr)
        self.assertIn("$CAS_H_LIBRARY: /nonexistent/libcas.so does not exist", r.stderr)
        self.assertIn("CAS_H_LIBRARY=/path/to/libcas.so", r.stderr)
        with tempfile.NamedTemporaryFile(suffix=".so") as bogus:
            bogus.write(b"not an ELF file" * 100)
            bogus.flush()
            r = run("import cas_h", {"CAS_H_LIBRARY": bogus.name})
            self.assertIn("$CAS_H_LIBRARY: %s: %s: invalid ELF header" % (bogus.name, bogus.name), r.stderr)

    @unittest.skipUnless(os.path.exists(os.path.join(REPO, "build", "libcas.so")),
                         "this build is not in the checkout's build/ (make B=...)")
    def test_checkout_build_dir(self):
        r = run("import cas_h; print(cas_h.library_path)", {})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), os.path.join(REPO, "build", "libcas.so"))

    def test_next_to_package_and_nothing_found(self):
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(os.path.join(PYDIR, "cas_h"), os.path.join(tmp, "cas_h"),
                            ignore=shutil.ignore_patterns("__pycache__", "*.so"))
            # a copy outside any checkout, without the library: the message lists every place tried
            r = run("import cas_h", {}, pythonpath=tmp)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("next to the package: %s does not exist" % os.path.join(tmp, "cas_h", "libcas.so"),
                          r.stderr)
            self.assertIn("the system library path (ctypes.util.find_library('cas')): ", r.stderr)
            self.assertNotIn("build directory", r.stderr)
            shutil.copy(cas_h.library_path, os.path.join(tmp, "cas_h", "libcas.so"))
            r = run("import cas_h; print(cas_h.library_path, cas_h.hash_key(b'abc'))", {}, pythonpath=tmp)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.split(), [os.path.join(tmp, "cas_h", "libcas.so"),
                                                "a9993e364706816aba3e25717850c26c9cd0d89d"])


if __name__ == "__main__":
    unittest.main()
