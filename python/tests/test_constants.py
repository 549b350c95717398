"""The numbers the binding hard-codes (ctypes cannot see #defines) still
match the headers: formats, hashes, parameters, status codes."""

import os
import re
import unittest

import cas_h
from cas_h import errors
from tests._util import REPO


def defines():
    out = {}
    for name in ("cas.h", "cas_codecs.h"):
        path = os.path.join(REPO, name)
        if not os.path.exists(path):
            continue
        with open(path) as f:
            text = f.read()
        for m in re.finditer(r"^#define (CAS_[A-Z0-9_]+) +\(?(-?\d+)\)?\b", text, re.M):
            out[m.group(1)] = int(m.group(2))
        for m in re.finditer(r"X\((CAS_[A-Z_]+), (-?\d+),", text):
            out[m.group(1)] = int(m.group(2))
    return out


@unittest.skipUnless(os.path.exists(os.path.join(REPO, "cas.h")), "not in a cas.h checkout")
class TestConstants(unittest.TestCase):
    def test_match_headers(self):
        d = defines()
        c = cas_h._core  # the private numbers live there; the public ones are re-exported by cas_h
        for name in ("V1", "V2", "RAW", "LEGACY", "SHA1", "XXH3"):
            self.assertEqual(getattr(cas_h, name), getattr(c, name), name)
        expect = {
            "CAS_FORMAT_V1": c.V1, "CAS_FORMAT_V2": c.V2, "CAS_FORMAT_RAW": c.RAW, "CAS_FORMAT_LEGACY": c.LEGACY,
            "CAS_HASH_SHA1": c.SHA1, "CAS_HASH_XXH3": c.XXH3, "CAS_KEY_BUF": c._KEY_BUF,
            "CAS_PARAM_LEVEL": c._PARAM_LEVEL, "CAS_PARAM_GZIP_BACKEND": c._PARAM_GZIP_BACKEND,
            "CAS_PARAM_LZ4_BLOCK": c._PARAM_LZ4_BLOCK, "CAS_PARAM_STRICT": c._PARAM_STRICT,
            "CAS_PARAM_HASH": c._PARAM_HASH, "CAS_PARAM_THREADS": c._PARAM_THREADS,
            "CAS_PARAM_LIMIT": c._PARAM_LIMIT, "CAS_PARAM_EXPECT_SIZE": c._PARAM_EXPECT_SIZE,
            "CAS_PARAM_FORMAT": c._PARAM_FORMAT, "CAS_PARAM_FSYNC": c._PARAM_FSYNC,
            "CAS_PARAM_VERIFY": c._PARAM_VERIFY, "CAS_CODEC_GZIP": c._c.cas_format_codec(c.V1), "CAS_CODEC_LZ4": c._c.cas_format_codec(c.V2),
            "CAS_OK": c._OK, "CAS_NEED_INPUT": c._NEED_INPUT, "CAS_NEED_OUTPUT": c._NEED_OUTPUT,
        }
        for name, value in expect.items():
            self.assertEqual(d.get(name), value, name)
        # every error code has its class, named after the same enumerator
        codes = {v: k for k, v in d.items() if k.startswith("CAS_E_")}
        self.assertEqual(len(codes), 19)
        for code, name in codes.items():
            self.assertIsNot(errors.error_class(code), errors.CasError, name)
            self.assertEqual(errors.error_class(code).code, code)
            self.assertEqual(cas_h.status_name(code), name)


if __name__ == "__main__":
    unittest.main()
