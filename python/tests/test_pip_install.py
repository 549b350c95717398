"""`pip install ./python` in a fresh venv, offline (Debian's python3-venv, pip and
setuptools, --no-build-isolation): the wheel builds libcas.so from this checkout
and carries it inside cas_h/, so that cas_h and the Metaflow extension work from
any directory with no PYTHONPATH or LD_LIBRARY_PATH. The venv sees Debian's
site-packages (--system-site-packages) for python3-lz4, which the Metaflow
stand-in uses; cas_h itself must come from the venv.
"""

import os
import shutil
import subprocess
import sysconfig
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PYDIR = os.path.dirname(HERE)

SCRIPT = textwrap.dedent(
    """
    import os, pickle, sys, tempfile
    import cas_h
    from metaflow_extensions.cas_h import cas_store
    venv = sys.prefix
    assert cas_h.__file__.startswith(venv), cas_h.__file__
    assert cas_h.library_path == os.path.join(os.path.dirname(cas_h.__file__), "libcas.so"), cas_h.library_path
    assert cas_store.__file__.startswith(venv), cas_store.__file__
    if sys.argv[2] == "1":  # this Python has Python.h: the wheel carries the speedups, and they are used
        import sysconfig
        assert cas_h._lib.speedups_path == os.path.join(
            os.path.dirname(cas_h.__file__), "_speedups" + sysconfig.get_config_var("EXT_SUFFIX")), \
            cas_h._lib.speedups_missing

    sys.path.insert(0, sys.argv[1])  # python/tests: the Metaflow stand-in only
    import mf_standin
    data = [pickle.dumps({"i": i, "x": list(range(i * 50))}, protocol=4) for i in range(20)]
    with tempfile.TemporaryDirectory() as d:
        backend = mf_standin.LocalBackend(d)
        for version in (1, 2):
            cas_store.install(version, True, cls=mf_standin.ContentAddressedStore,
                              data_exception=mf_standin.DataException)
            st = mf_standin.ContentAddressedStore(backend.path_join("PipFlow%d" % version, "data"), backend)
            keys = [r.key for r in st.save_blobs(iter(data))]
            got = dict(st.load_blobs(keys))
            assert [got[k] for k in keys] == data
            cas_store.uninstall(mf_standin.ContentAddressedStore)
            if version == 1:  # what the extension wrote, read by the stand-in's own (Metaflow's) code
                got = dict(st.load_blobs(keys))
                assert [got[k] for k in keys] == data
        with cas_h.Store(os.path.join(d, "new", ".metaflow")) as store:
            key = store.put("F", data[3])
            assert store.preview("F", key) == "{'i': 3, 'x': [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...<140 more>]}"
    print("ok", cas_h.__version__)
    """
)


@unittest.skipIf(shutil.which("make") is None, "make missing")
class TestPipInstall(unittest.TestCase):
    def test_fresh_venv(self):
        with tempfile.TemporaryDirectory(prefix="cas_h_pip_") as d:
            venv = os.path.join(d, "venv")
            subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv], check=True)
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CAS_H_LIBRARY", "LD_LIBRARY_PATH")}
            env["PIP_NO_INDEX"] = "1"
            out = subprocess.run([os.path.join(venv, "bin", "pip"), "install", "--no-build-isolation", PYDIR],
                                 capture_output=True, env=env, cwd=d, timeout=900)
            self.assertEqual(out.returncode, 0, out.stdout[-3000:] + out.stderr[-3000:])
            for junk in ("build", "cas_h.egg-info"):  # an in-tree build's leftovers are not the checkout's business
                shutil.rmtree(os.path.join(PYDIR, junk), ignore_errors=True)
            site = subprocess.run([os.path.join(venv, "bin", "python"), "-c",
                                   "import cas_h, os; print(os.path.dirname(cas_h.__file__))"],
                                  capture_output=True, env=env, cwd=d, text=True)
            self.assertEqual(site.returncode, 0, site.stderr)
            self.assertTrue(os.path.isfile(os.path.join(site.stdout.strip(), "libcas.so")))
            has_python_h = os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))
            run = subprocess.run([os.path.join(venv, "bin", "python"), "-c", SCRIPT, HERE, str(int(has_python_h))],
                                 capture_output=True, env=env, cwd=d, text=True, timeout=300)
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
            self.assertTrue(run.stdout.startswith("ok "), run.stdout)
            cas = os.path.join(venv, "bin", "cas")  # the command, on the venv's PATH
            out = subprocess.run([cas, "version"], capture_output=True, env=env, cwd=d, text=True)
            self.assertEqual((out.returncode, out.stdout), (0, "cas %s\n" % run.stdout.split()[1]), out.stderr)
            root = os.path.join(HERE, "..", "..", "tests", "fixtures", "metaflow", "v1", ".metaflow")
            out = subprocess.run([cas, "ls", "--root", root], capture_output=True, env=env, cwd=d, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("FixtureFlow", out.stdout.split())
            out = subprocess.run([cas, "ls", "NoSuchFlow", "--root", root], capture_output=True, env=env, cwd=d)
            self.assertEqual(out.returncode, 1)  # its exit status, through the entry point


if __name__ == "__main__":
    unittest.main()
