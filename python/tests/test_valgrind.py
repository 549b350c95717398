"""The binding under valgrind: no invalid access, nothing from libcas.so lost."""

import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


@unittest.skipUnless(shutil.which("valgrind"), "valgrind is not installed")
class TestValgrind(unittest.TestCase):
    def test_tour(self):
        env = dict(os.environ, PYTHONMALLOC="malloc")
        r = subprocess.run(["valgrind", "--leak-check=full", "--show-leak-kinds=definite,possible",
                            "--errors-for-leak-kinds=definite",
                            "--num-callers=30", sys.executable, os.path.join(HERE, "valgrind_tour.py")],
                           env=env, capture_output=True, text=True, timeout=600)
        log = r.stderr
        tail = log[-1500:]
        self.assertEqual(r.returncode, 0, tail)
        self.assertIn("tour done", r.stdout)
        self.assertIn("ERROR SUMMARY: 0 errors", log, tail)  # no invalid read/write, no definite leak
        self.assertIn("definitely lost: 0 bytes in 0 blocks", log, tail)
        # Python itself leaves "possibly lost" blocks at exit; none may come from
        # libcas or cas_h's speedups (frames name cas.h / cas_codecs.h / _speedups.c with debug info,
        # libcas.so without)
        for mark in ("(cas.h:", "(cas_codecs.h:", "libcas.so)", "(_speedups.c:"):
            at = log.find(mark)
            self.assertEqual(at, -1, log[max(0, at - 1500):at + 500])


if __name__ == "__main__":
    unittest.main()
