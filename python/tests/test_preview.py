"""Pickle previews (cas_pickle.h through cas_h.preview*): values read without unpickling.

Golden tests: the values of pickle_cases.py, pickled here with protocols 0-5 by
Debian's python3 (numpy and pandas cases with 2, 4 and 5), previewed and checked
against Python's own repr (built-ins) or against the shape, dtype, column names and
first values of the array or frame. Then limits, hostile pickles and the stores.
"""

import ast
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import tempfile
import unittest

import cas_h

sys.path.insert(0, os.path.dirname(__file__))
import pickle_cases  # noqa: E402

try:
    import numpy as np
except ImportError:  # pragma: no cover - Debian's python3-numpy is a test dependency
    np = None
try:
    import pandas as pd
except ImportError:  # pragma: no cover
    pd = None

WIDE = dict(items=1000, depth=60, max_bytes=1 << 20)
from tests._util import fixtures_root  # noqa: E402

FIXTURES = fixtures_root()
NUM = re.compile(r"-?(?:\d+\.?\d*(?:e[-+]?\d+)?|inf|nan)")


def first_values(arr, items):
    """What the preview shows of an array: the first `items` along each axis, C order."""
    idx = tuple(slice(0, items) for _ in range(arr.ndim))
    return arr[idx].ravel(order="C")


class TestBuiltins(unittest.TestCase):
    def test_repr_of_every_builtin_in_every_protocol(self):
        for name, value in pickle_cases.builtins().items():
            for proto in range(pickle.HIGHEST_PROTOCOL + 1):
                with self.subTest(case=name, protocol=proto):
                    self.assertEqual(cas_h.preview_pickle(pickle.dumps(value, protocol=proto), **WIDE), repr(value))

    def test_json_tree_is_json_and_carries_the_values(self):
        value = {"a": [1, 2.5, None, True], "b": "text", "c": b"\x00"}
        tree = cas_h.preview_pickle(pickle.dumps(value, protocol=4), json=True)
        self.assertEqual(tree["type"], "dict")
        self.assertEqual(tree["length"], 3)
        k, v = tree["items"][0]
        self.assertEqual((k["type"], k["value"]), ("str", "a"))
        self.assertEqual([x.get("value") for x in v["items"]], [1, 2.5, None, True])

    def test_shared_and_cyclic_values_are_back_references(self):
        inner = [1, 2]
        self.assertEqual(cas_h.preview_pickle(pickle.dumps([inner, inner], protocol=4)), "[#1=[1, 2], #1#]")
        loop = []
        loop.append(loop)
        self.assertEqual(cas_h.preview_pickle(pickle.dumps(loop, protocol=2)), "#1=[#1#]")
        d = {}
        d["me"] = d
        self.assertEqual(cas_h.preview_pickle(pickle.dumps(d, protocol=4)), "#1={'me': #1#}")

    def test_other_objects_are_shown_symbolically(self):
        import collections
        import fractions

        self.assertEqual(cas_h.preview_pickle(pickle.dumps(collections.Counter("abca"), protocol=4)),
                         "collections.Counter({'a': 2, 'b': 1, 'c': 1})")
        self.assertEqual(cas_h.preview_pickle(pickle.dumps(fractions.Fraction(3, 4), protocol=2)),
                         "fractions.Fraction(3, 4)")
        frame = pickle_cases.ForeachFrame("fan", "items", 3, 1, "1")
        self.assertEqual(cas_h.preview_pickle(pickle.dumps(frame, protocol=4)),
                         "pickle_cases.ForeachFrame('fan', 'items', 3, 1, '1')")


@unittest.skipIf(np is None, "python3-numpy missing")
class TestNumpy(unittest.TestCase):
    def check(self, name, arr, text, items=10):
        dtype = arr.dtype.name if arr.dtype.byteorder != ">" else arr.dtype.str
        self.assertTrue(text.startswith("array("), text)
        self.assertIn("dtype=%s" % dtype, text)
        self.assertIn("shape=%s)" % (tuple(arr.shape),), text)
        if arr.dtype.kind in "iuf" and arr.size:
            body = text[len("array("):text.rindex(", dtype=")]
            got = [float(x) for x in NUM.findall(body)]
            want = first_values(arr, items).astype(np.float64)
            self.assertEqual(len(got), len(want), text)
            for g, w in zip(got, want):
                self.assertAlmostEqual(g, float(w), delta=abs(float(w)) * 1e-7 + 1e-12, msg=text)
        if arr.dtype.kind == "M":
            for v in first_values(arr, items):
                self.assertIn(str(v)[:10], text)

    def test_arrays(self):
        for name, value in pickle_cases.numpy_cases().items():
            if not isinstance(value, np.ndarray):
                continue
            for proto in (2, 4, 5):
                with self.subTest(case=name, protocol=proto):
                    self.check(name, value, cas_h.preview_pickle(pickle.dumps(value, protocol=proto)))

    def test_items_limit_windows_every_axis(self):
        arr = np.arange(1000 * 125, dtype=np.float64).reshape(1000, 125) / 10
        for proto in (2, 4, 5):
            text = cas_h.preview_pickle(pickle.dumps(arr, protocol=proto), items=3)
            self.check("2d", arr, text.replace(", ...", ""), items=3)
            self.assertTrue(text.startswith("array([[0., 0.1, 0.2, ...], [12.5, 12.6, 12.7, ...], "), text)

    def test_scalars_and_dtypes(self):
        for proto in (2, 4, 5):
            self.assertEqual(cas_h.preview_pickle(pickle.dumps(np.float64(2.5), protocol=proto)), "numpy.float64(2.5)")
            self.assertEqual(cas_h.preview_pickle(pickle.dumps(np.int64(-7), protocol=proto)), "numpy.int64(-7)")
            self.assertEqual(cas_h.preview_pickle(pickle.dumps(np.dtype("<f4"), protocol=proto)), "dtype('float32')")

    def test_data_shorter_than_its_shape_is_reported_not_read_past(self):
        data = np.arange(4, dtype=np.int64).tobytes()
        good = pickle.dumps(np.arange(4, dtype=np.int64), protocol=4)
        self.assertIn(b"C\x20" + data, good)
        short = good.replace(b"C\x20" + data, b"C\x18" + data[:24])  # 3 values for a shape of 4
        text = cas_h.preview_pickle(short)
        self.assertIn("shape=(4,)", text)
        self.assertIn("<24 bytes of data; shape x itemsize says 32>", text)

    def test_a_large_top_level_array_stops_after_its_first_values(self):
        arr = np.arange(4 << 20, dtype=np.float64)  # 32 MiB
        for proto in (2, 4):
            blob = pickle.dumps(arr, protocol=proto)
            with tempfile.TemporaryDirectory() as d, cas_h.Store(d) as st:
                key = st.put("F", blob, version=2)
                text = st.preview("F", key)
                self.assertTrue(text.startswith("array([0., 1., 2., 3."), text)
                self.assertIn("shape=(4194304,)", text)
                with st.open("F", key) as r:
                    p = cas_h.Reader.preview(r)
                    self.assertEqual(p, text)


@unittest.skipIf(pd is None, "python3-pandas missing")
class TestPandas(unittest.TestCase):
    def table(self, text):
        return [line.split() for line in text.split("\n")[1:] if not line.startswith("...")]

    def test_frames(self):
        for name, value in pickle_cases.pandas_cases().items():
            if not isinstance(value, pd.DataFrame):
                continue
            for proto in (2, 4, 5):
                with self.subTest(case=name, protocol=proto):
                    text = cas_h.preview_pickle(pickle.dumps(value, protocol=proto))
                    head = text.split("\n")[0]
                    self.assertTrue(head.startswith("DataFrame(shape=(%d, %d), columns=[" % value.shape), text)
                    for col in list(value.columns)[:10]:
                        self.assertIn("%s: %s" % (col, value[col].dtype), head)
                    rows = self.table(text)
                    shown = list(value.columns)[:10]
                    self.assertEqual(rows[0][:len(shown)], [str(c) for c in shown])
                    for r, row in enumerate(rows[1:]):
                        cells = row[-len(shown) - (1 if len(value.columns) > 10 else 0):]
                        for c, col in enumerate(shown):
                            want = value[col].iloc[r]
                            if isinstance(want, pd.Timestamp):
                                want = str(want.date())
                            self.assertEqual(cells[c], str(want), text)
                    self.assertEqual(len(rows) - 1, min(10, len(value)))
                    if len(value) > 10:
                        self.assertIn("...<%d more rows>" % (len(value) - 10), text)

    def test_series_and_categoricals(self):
        for name in ("series", "series_str_index", "categorical"):
            value = pickle_cases.pandas_cases()[name]
            for proto in (2, 4, 5):
                with self.subTest(case=name, protocol=proto):
                    text = cas_h.preview_pickle(pickle.dumps(value, protocol=proto))
                    dtype = "category" if name == "categorical" else str(value.dtype)
                    self.assertEqual(text.split("\n")[0], "Series(name=%r, length=%d, dtype=%s)"
                                     % (value.name, len(value), dtype))
                    rows = [line.split() for line in text.split("\n")[1:]]
                    self.assertEqual([r[0] for r in rows], [str(i) for i in value.index[:10]])
                    self.assertEqual([r[1] for r in rows], [str(v) for v in value.iloc[:10]])

    def test_multiindex_rows(self):
        value = pickle_cases.pandas_cases()["frame_multi"]
        text = cas_h.preview_pickle(pickle.dumps(value, protocol=4))
        self.assertIn("(x, 1)  1", text)
        self.assertIn("(y, 1)  3", text)


class TestLimits(unittest.TestCase):
    def test_output_limit_marks_the_cut_and_keeps_utf8_whole(self):
        value = ["naïve café 日本語 🚀" * 3] * 50
        for n in range(64, 400, 7):
            text = cas_h.preview_pickle(pickle.dumps(value), max_bytes=n)
            self.assertTrue(text.endswith("<truncated: output limit>"), text)
            self.assertLessEqual(len(text.encode()), n + len(" <truncated: output limit>"))
            text.encode("utf-8")  # whole characters only (decode used 'replace': check no U+FFFD)
            self.assertNotIn("\ufffd", text)

    def test_json_stays_json_whatever_cuts_it(self):
        value = {"k%d" % i: [i, "v" * i, {"x": (i, None)}] for i in range(60)}
        for n in range(64, 3000, 37):
            tree = cas_h.preview_pickle(pickle.dumps(value), json=True, max_bytes=n)
            self.assertEqual(tree["type"], "dict")
            self.assertTrue(tree.get("output_truncated"), n)
        tree = cas_h.preview_pickle(pickle.dumps(list(range(100))), json=True, max_read=40)
        self.assertIn("limit", tree)

    def test_items_and_depth(self):
        self.assertEqual(cas_h.preview_pickle(pickle.dumps(list(range(20))), items=3), "[0, 1, 2, ...<17 more>]")
        self.assertEqual(cas_h.preview_pickle(pickle.dumps([[[[1]]]]), depth=2), "[[<list, 1 item>]]")

    def test_read_ops_memo_values_limits_give_partial_previews(self):
        data = pickle.dumps([[i] for i in range(50000)], protocol=4)
        for kw in ({"max_read": 1000}, {"max_ops": 500}, {"max_memo": 100}, {"max_values": 1000}):
            with self.subTest(**kw):
                text = cas_h.preview_pickle(data, **kw)
                self.assertTrue(text.startswith("[[0], [1], [2]"), text)
                self.assertIn("more>", text)
                self.assertTrue(text.endswith("<truncated: a limit was reached>"), text)

    def test_out_of_range_limits_are_refused(self):
        for kw in ({"items": 0}, {"depth": -1}, {"max_bytes": 1}, {"max_read": -5}):
            with self.subTest(**kw), self.assertRaises(cas_h.InvalidArgument):
                cas_h.preview_pickle(b"N.", **kw)


class TestHostile(unittest.TestCase):
    def fails(self, data, cls, words, **kw):
        with self.assertRaises(cls) as cm:
            cas_h.preview_pickle(data, **kw)
        self.assertRegex(str(cm.exception), words)
        return cm.exception.partial

    def test_deep_nesting_is_iterative(self):
        n = 200000
        text = cas_h.preview_pickle(b"\x80\x04" + b"]" * n + b"a" * (n - 1) + b".")
        self.assertEqual(text, "[" * 8 + "<list, 1 item>" + "]" * 8)
        text = cas_h.preview_pickle(b"\x80\x04" + b"(" * 100000 + b"t" * 100000 + b".")
        self.assertTrue(text.startswith("(((((((("), text)

    def test_declared_lengths_are_never_allocated(self):
        for op in (b"\x8e", b"\x8d", b"\x96", b"\x95"):  # BINBYTES8, BINUNICODE8, BYTEARRAY8, FRAME
            data = b"\x80\x05" + op + struct.pack("<Q", 1 << 62) + b"abc"
            with self.assertRaises((cas_h.TruncatedBlob, cas_h.CorruptBlob)):
                cas_h.preview_pickle(data)
        self.fails(b"\x80\x04\x8b" + struct.pack("<i", 2 ** 31 - 1) + b"abc", cas_h.TruncatedBlob, "2147483647 bytes")

    def test_memo_confusion(self):
        self.fails(b"\x80\x04h\x05.", cas_h.CorruptBlob, r"memo entry 5 is not there \(byte 4\)")
        self.fails(b"\x80\x04r\xff\xff\xff\xff.", cas_h.CorruptBlob, "stack underflow at byte 6")
        self.assertEqual(cas_h.preview_pickle(b"\x80\x04]\x94h\x00a."), "#1=[#1#]")  # a list that holds itself

    def test_malformed_pickles_name_the_offset(self):
        self.assertEqual(self.fails(b"N.xyz", cas_h.TrailingBytes, "at byte 2"),
                         "None <incomplete: bytes after the pickle's STOP, at byte 2 (0x78)>")
        self.fails(b"\x80\x04a.", cas_h.CorruptBlob, r"stack underflow at byte 2 \(opcode 0x61\)")
        self.fails(b"\x80\x04\xff.", cas_h.CorruptBlob, "unknown opcode 0xff at byte 2")
        self.assertIn("None", self.fails(b"\x80\x04N", cas_h.TruncatedBlob, "ends at byte 3, before its STOP"))
        self.fails(b".", cas_h.CorruptBlob, "empty stack")
        self.assertEqual(self.fails(b"", cas_h.TruncatedBlob, "byte 0"), "<nothing: the pickle ends at byte 0, "
                                                                         "before its STOP>")

    def test_placeholders_for_what_is_not_in_the_stream(self):
        self.assertEqual(cas_h.preview_pickle(b"\x80\x04\x82\x05."), "<extension code 5>")
        self.assertEqual(cas_h.preview_pickle(b"\x80\x04P42\n."), "<persistent id>")
        self.assertEqual(cas_h.preview_pickle(b"\x80\x05\x97."), "<out-of-band buffer>")

    def test_invalid_utf8_and_controls_are_escaped(self):
        self.assertEqual(cas_h.preview_pickle(b"\x80\x04\x8c\x03\xff\xfeA."), "'\\xff\\xfeA'")
        self.assertEqual(cas_h.preview_pickle(pickle.dumps("a\u202eb\x1b")), "'a\\u202eb\\x1b'")

    def test_mark_bomb_hits_a_limit(self):
        text = cas_h.preview_pickle(b"\x80\x04" + b"(" * 1000000 + b".")
        self.assertTrue(text.startswith("<nothing: "), text)


HERE = os.path.dirname(os.path.abspath(__file__))


def in_child(code, timeout=120):
    """Runs `code` in a fresh interpreter with cas_h and hostile.py importable: a
    preview that crashed or hung would fail the test, not take the test runner
    with it. Returns what the child printed as JSON (its last line)."""
    prelude = ("import json, os, resource, sys, time\n"
               "sys.path[:0] = [%r, %r]\n"
               "import cas_h, hostile\n" % (os.path.dirname(os.path.dirname(cas_h.__file__)), HERE))
    r = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, timeout=timeout, check=False)
    if r.returncode:
        raise AssertionError("the child exited %d: %s" % (r.returncode, r.stderr.decode(errors="replace")[-2000:]))
    return json.loads(r.stdout.decode().strip().splitlines()[-1])


class TestHostileStructures(unittest.TestCase):
    """Pickles that lie (shapes, lengths), hold themselves (an index, a backed
    array, a categorical, a datetime), aim at the memo's slots or fill the stack
    with references: each previews, as text and as JSON, in seconds and in
    bounded memory (issue 23). Built by hostile.py, opcode by opcode."""

    def test_structures_that_lie_or_hold_themselves(self):
        got = in_child(
            "out = {}\n"
            "for name, fn in hostile.CASES.items():\n"
            "    data = fn()\n"
            "    for js in (False, True):\n"
            "        t = time.monotonic()\n"
            "        kw = dict(max_bytes=1 << 30, depth=200, items=1000) if name.startswith('datetime') else {}\n"
            "        v = cas_h.preview_pickle(data, json=js, **kw)\n"
            "        out['%s/%d' % (name, js)] = [v, time.monotonic() - t]\n"
            "print(json.dumps(out))\n")
        for key, (value, took) in got.items():
            self.assertLess(took, 5.0, key)
        text = {k.split("/")[0]: v for k, (v, _) in got.items() if k.endswith("/0")}
        tree = {k.split("/")[0]: v for k, (v, _) in got.items() if k.endswith("/1")}
        # a placement array that says (2**62,) over 8 bytes: searched through what it holds
        self.assertTrue(text["lying-placement"].startswith("DataFrame(shape=(1, 2), columns=[0: ?, 1: ?])"),
                        text["lying-placement"])
        self.assertTrue(text["lying-codes"].startswith("DataFrame(shape=(4611686018427387904, 1)"))
        # what holds itself is walked one level down, not forever
        for name in ("multiindex-holds-itself", "backed-holds-itself", "categorical-holds-itself"):
            self.assertTrue(text[name].startswith("DataFrame(shape=(1, 1), columns=[0: "), (name, text[name]))
            self.assertEqual(tree[name]["type"], "DataFrame")
        # a datetime whose tzinfo is itself: levels 0 to 200 (the depth limit), then "..."
        self.assertEqual(text["datetime-tz-is-itself"].count("tzinfo="), 201)
        self.assertIn("tzinfo=...)", text["datetime-tz-is-itself"])
        # RangeIndex(-2**63, 2**63 - 1): its length in unsigned arithmetic, its labels exact
        self.assertIn("DataFrame(shape=(2, 18446744073709551615), columns=[-9223372036854775808: float64, "
                      "-9223372036854775807: float64", text["rangeindex-extremes"])
        self.assertIn("9223372036854775807", text["rangeindex-extremes"])
        self.assertTrue(text["wide-shape"].startswith("array(<8 bytes of data; shape x itemsize says 34359738368>"))

    def test_memo_keys_aimed_at_one_slot(self):
        """199,000 keys that shared one probe run under the old fixed hash (53 s on
        b60c343), then as many GETs: the seeded hash keeps the probes short."""
        took = in_child("data = hostile.memo_collisions()\nt = time.monotonic()\n"
                        "assert cas_h.preview_pickle(data) == 'None'\n"
                        "print(json.dumps(time.monotonic() - t))\n")
        self.assertLess(took, 10.0)

    def test_reference_bombs_stop_at_the_values_limit(self):
        """DUP and BINGET push references, not values: 40 million of them used to
        take 320 MB of stack; now the stack counts against CAS_PREVIEW_MAX_VALUES."""
        got = in_child(
            "out = {}\n"
            "for name, data in (('dup', hostile.dup_bomb(40_000_000)), ('get', hostile.get_bomb(8_000_000))):\n"
            "    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "    tree = cas_h.preview_pickle(data, json=True, max_memo=10 ** 7)\n"
            "    out[name] = [tree, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024]\n"
            "    del data\n"
            "print(json.dumps(out))\n")
        for name, (tree, grew_mb) in got.items():
            self.assertEqual(tree["type"], "None", name)
            self.assertIn("the pickle's stack holds more than 400000 values (CAS_PREVIEW_MAX_VALUES)",
                          tree["limit"], name)
            self.assertLess(grew_mb, 64, name)

    def test_memory_limit_holds_whatever_the_pickle_keeps(self):
        """Distinct memoised strings are all held (the memo keeps them): past
        max_memory the preview stops with a partial result naming the limit."""
        data = pickle.dumps(["%06d" % k + "x" * 200 for k in range(20000)], protocol=4)
        tree = cas_h.preview_pickle(data, json=True, max_memory=1 << 20)
        self.assertEqual(tree["type"], "list")
        self.assertIn("CAS_PREVIEW_MAX_MEMORY", tree["limit"])
        self.assertEqual(cas_h.preview_pickle(data, items=2), "['000000%s', '000001%s', ...<19998 more>]"
                         % ("x" * 200, "x" * 200))
        with self.assertRaises(cas_h.InvalidArgument):
            cas_h.preview_pickle(data, max_memory=1000)


class TestStores(unittest.TestCase):
    def test_every_fixture_artifact_previews(self):
        count = 0
        self.assertTrue(os.path.isdir(FIXTURES), "fixture stores missing: %s" % FIXTURES)
        for kind in sorted(os.listdir(FIXTURES)):
            root = os.path.join(FIXTURES, kind, ".metaflow")
            with cas_h.Store(root) as st:
                for dirpath, _, files in os.walk(root):
                    for f in files:
                        if not f.endswith(".data.json"):
                            continue
                        pathspec = os.path.relpath(dirpath, root)
                        for art in st.task(pathspec):
                            text = cas_h.preview(st, "%s/%s" % (pathspec, art.name))
                            tree = st.preview_artifact(pathspec, art.name, json=True)
                            self.assertTrue(text and "<incomplete" not in text and "<?>" not in text, text)
                            self.assertIn("type", tree)
                            count += 1
        self.assertGreater(count, 50)

    def test_blob_file_and_file_object(self):
        with tempfile.TemporaryDirectory() as d, cas_h.Store(d, version=2) as st:
            key = st.put("F", pickle.dumps({"x": [1, 2]}, protocol=4))
            path = os.path.join(d, st.blob_name("F", key))
            self.assertEqual(cas_h.preview(path), "{'x': [1, 2]}")
            self.assertEqual(cas_h.preview(st, "F", key=key), "{'x': [1, 2]}")
            with open(path + "_meta") as f:
                meta = json.load(f)
            with open(path, "rb") as f:
                self.assertEqual(cas_h.preview(f, meta=meta, json=True)["type"], "dict")
            with self.assertRaises(cas_h.NotFound):
                cas_h.preview(st, "F", key="0" * 40)
            with self.assertRaises(cas_h.InvalidName):
                cas_h.preview(st, "F/1/start")

    def test_the_010_bytes_call_still_works(self):
        with tempfile.TemporaryDirectory() as d, cas_h.Store(d) as st:
            key = st.put("F", b"hello file bytes")
            path = os.path.join(d, st.blob_name("F", key))
            self.assertEqual(cas_h.head(path, 5), b"hello")
            with self.assertWarns(DeprecationWarning):
                self.assertEqual(cas_h.preview(path, 5), b"hello")
            with self.assertWarns(DeprecationWarning):
                self.assertEqual(cas_h.preview(path, n=4), b"hell")


if __name__ == "__main__":
    unittest.main()


class TestEncodings(unittest.TestCase):
    """Metaflow 2.20+ (PR #3117) records each artifact's serializer in data.json's
    encoding ("pickle-v4", or another serializer's: "json", an extension's, with
    serializer_info). Only a pickle's bytes are parsed as a pickle; any other
    artifact is named by its encoding and shown as bytes, by cas show, the binding
    and cas_h.preview alike."""

    CAS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "build", "cas")

    def task(self, d):
        with cas_h.Store(d) as st:
            arts = {"model": (pickle.dumps({"w": [1, 2]}, protocol=4), "pickle-v4"),
                    "old": (pickle.dumps([3], protocol=2), None),  # before PR #3117: no encoding at all
                    "cfg": (b'{"lr": 0.1, "note": "\\u00e9"}', "json"),
                    # a pickle's bytes under another serializer's name: still never parsed
                    "odd": (pickle.dumps(("x",) * 40, protocol=4), "my-ext/v1")}
            objects, info = {}, {}
            for name, (data, enc) in arts.items():
                objects[name] = st.put("EncFlow", data)
                info[name] = {"size": len(data), "type": "<class 'object'>"}
                if enc:
                    info[name]["encoding"] = enc
            info["cfg"]["serializer_info"] = {"source": "metaflow-json-ext"}
        folder = os.path.join(d, "EncFlow", "1", "start", "1")
        os.makedirs(folder)
        with open(os.path.join(folder, "0.data.json"), "w") as f:
            json.dump({"datastore": "local", "version": "1.0", "attributes": {}, "objects": objects, "info": info}, f)
        for name in ("0.attempt.json", "0.DONE.lock"):
            with open(os.path.join(folder, name), "w") as f:
                f.write("{}")
        return arts

    def test_pickle_encodings_only(self):
        for enc in (None, "pickle-v2", "pickle-v4", "gzip+pickle-v2", "gzip+pickle-v4", "pickle-v5"):
            self.assertTrue(cas_h._lib.lib.cas_encoding_is_pickle(None if enc is None else enc.encode()), enc)
        for enc in ("json", "", "pickle", "pickle-v", "pickle-v4x", "gzip+json", "my-ext/pickle-v4", "gzip+pickle"):
            self.assertFalse(cas_h._lib.lib.cas_encoding_is_pickle(enc.encode()), enc)

    def test_binding_and_cli(self):
        with tempfile.TemporaryDirectory() as d:
            arts = self.task(d)
            with cas_h.Store(d) as st:
                self.assertEqual(st.preview_artifact("EncFlow/1/start/1", "model"), "{'w': [1, 2]}")
                self.assertEqual(st.preview_artifact("EncFlow/1/start/1", "old"), "[3]")
                self.assertEqual(st.preview_artifact("EncFlow/1/start/1", "cfg"),
                                 "<'json' artifact, not a pickle, %d bytes: b'{\"lr\": 0.1, \"note\": \"\\\\u00e9\"}'>"
                                 % len(arts["cfg"][0]))
                odd = st.preview_artifact("EncFlow/1/start/1", "odd", items=2)
                self.assertTrue(odd.startswith("<'my-ext/v1' artifact, not a pickle, %d bytes: b'\\x80\\x04"
                                               % len(arts["odd"][0])), odd)
                self.assertTrue(odd.endswith("'...>") and len(odd) < 120, odd)
                tree = cas_h.preview(st, "EncFlow/1/start/1/cfg", json=True)
                self.assertEqual((tree["type"], tree["encoding"], tree["size"]),
                                 ("encoded", "json", len(arts["cfg"][0])))
                self.assertIn("lr", tree["repr"])
                key = st.task("EncFlow/1/start/1")["odd"].key
                text = cas_h.preview(os.path.join(d, st.blob_name("EncFlow", key)), encoding="my-ext/v1", items=1)
                prefix = "<'my-ext/v1' artifact, not a pickle: "
                self.assertTrue(text.startswith(prefix) and text.endswith("...>"), text)
                head = ast.literal_eval(text[len(prefix):-4])  # the first 8 bytes (items=1), as Python's repr
                self.assertEqual(head, arts["odd"][0][:8])
            if not os.path.exists(self.CAS):
                self.skipTest("no build/cas")
            out = subprocess.run([self.CAS, "show", "EncFlow/1/start/1/cfg", "--root", d], capture_output=True,
                                 text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertTrue(out.stdout.startswith("<'json' artifact, not a pickle"), out.stdout)
            out = subprocess.run([self.CAS, "show", "EncFlow/1/start/1/odd", "--json", "--root", d],
                                 capture_output=True, text=True)
            self.assertEqual(json.loads(out.stdout)["encoding"], "my-ext/v1")
            out = subprocess.run([self.CAS, "show", "EncFlow/1/start/1/model", "--root", d], capture_output=True,
                                 text=True)
            self.assertEqual(out.stdout.strip(), "{'w': [1, 2]}")
            raw = subprocess.run([self.CAS, "artifact", "EncFlow/1/start/1/cfg", "--verify", "--root", d],
                                 capture_output=True)
            self.assertEqual(raw.stdout, arts["cfg"][0])
