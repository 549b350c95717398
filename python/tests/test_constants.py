"""The binding's numbers come from the library: cas_h/_constants.py is generated
from the headers (gen_constants.py) and is current, its statuses are the built
library's own (cas_status_name), and every error status has its exception class."""

import importlib.util
import os
import unittest

import cas_h
from cas_h import _constants as C
from cas_h import errors
from tests._util import REPO


@unittest.skipUnless(os.path.exists(os.path.join(REPO, "gen_constants.py")), "not in a cas.h checkout")
class TestGenerated(unittest.TestCase):
    def test_current(self):
        spec = importlib.util.spec_from_file_location("gen_constants", os.path.join(REPO, "gen_constants.py"))
        gen = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(gen)
        with open(C.__file__, encoding="utf-8") as f:
            self.assertEqual(f.read(), gen.generate(), "python/cas_h/_constants.py is stale: run gen_constants.py")


class TestConstants(unittest.TestCase):
    def test_statuses_are_the_librarys(self):
        known = {code: name for name, code in C.STATUSES.items()}
        for code in range(-64, 65):  # the library names exactly these, with these numbers
            self.assertEqual(cas_h.status_name(code), known.get(code, "CAS_UNKNOWN"), code)
        for code, name in known.items():
            self.assertNotEqual(cas_h.strerror(code), "unknown status", name)
            if code < 0:  # every error has its class, which carries the code
                self.assertIsNot(errors.error_class(code), errors.CasError, name)
                self.assertEqual(errors.error_class(code).code, code, name)

    def test_public_numbers(self):
        for name in ("V1", "V2", "RAW", "LEGACY"):
            self.assertEqual(getattr(cas_h, name), getattr(C, "CAS_FORMAT_" + name), name)
        self.assertEqual((cas_h.SHA1, cas_h.XXH3), (C.CAS_HASH_SHA1, C.CAS_HASH_XXH3))
        self.assertEqual(cas_h._core._c.cas_format_codec(C.CAS_FORMAT_V1), C.CAS_CODEC_GZIP)
        self.assertEqual(cas_h._core._c.cas_format_codec(C.CAS_FORMAT_V2), C.CAS_CODEC_LZ4)


if __name__ == "__main__":
    unittest.main()
