"""The values the pickle-preview tests pickle, made by this interpreter (Debian's
python3, python3-numpy, python3-pandas), so that the pickles are never opaque
blobs: each test pickles them afresh with protocols 0 to 5.

  python3 python/tests/pickle_cases.py DIR   writes DIR/<case>.p<protocol> (fuzz seeds)

BUILTINS: values whose preview, with limits wide open, is exactly repr(value).
NUMPY, PANDAS: values checked against their shape, dtype, columns and first values.
"""

import collections
import datetime
import decimal
import os
import pickle
import sys


# A class of the flow's own, as Metaflow's _foreach_stack holds (a namedtuple)
ForeachFrame = collections.namedtuple("ForeachFrame", "step var num_splits index value")


def builtins():
    class_free = {
        "none": None, "true": True, "false": False,
        "ints": [0, 1, -1, 255, 256, 65535, 65536, -2**31, 2**31 - 1, 2**31, 2**63 - 1, -2**63, 2**64, -2**100],
        "floats": [0.0, -0.0, 1.0, 1.5, 0.1, 1e-5, 1e16, 1.7976931348623157e308, 5e-324, 123456.789, -2.5e-300],
        "special_floats": [float("inf"), float("-inf")],
        "complex": [1 + 2j, -1.5 - 0.5j, 2j],
        "str": ["", "a", "quote'", 'dq"', "both'\"", "tab\t nl\n cr\r bs\\", "\x00\x1f\x7f\x80\x9f",
                "naïve café — 日本語 🚀", "\u2028\ue000\uffff\u202e\xa0\U000f0000", "x" * 200],
        "bytes": [b"", b"abc", b"\x00\xff'\"\\\n\t", bytes(range(256))[:64]],
        "bytearray": bytearray(b"ab\x00c"),
        "tuple": (), "tuple1": (1,), "tuple3": (1, "a", None), "tuple_big": tuple(range(20)),
        "list": [], "nested": [[1, [2, [3, [4, []]]]], {"k": ({"x"},)}],
        "dict": {"a": 1, "b": [1, 2], 3: "three", (1, 2): None, None: True, 1.5: b"x"},
        "set": {1, 2, 3}, "set_str": {"only"}, "empty_set": set(),
        "frozenset": frozenset({4, 5}), "empty_frozenset": frozenset(),
        "slice": slice(1, 10, 2), "slice_none": slice(None, 5, None),
        "ordered": collections.OrderedDict([("z", 1), ("a", 2)]),
        "defaultdict": collections.defaultdict(list, {"a": [1]}),
        "datetime": datetime.datetime(2024, 2, 29, 13, 45, 7, 123456),
        "datetime_plain": datetime.datetime(1999, 12, 31, 23, 59, 59),
        "date": datetime.date(2026, 11, 30), "time": datetime.time(8, 30, 0, 5),
        "timedelta": datetime.timedelta(days=-3, seconds=7, microseconds=9),
        "decimal": decimal.Decimal("3.14159265358979323846"), "decimal_neg": decimal.Decimal("-1E+5"),
        "many_types": [None, True, 1, 1.5, "s", b"b", (), [], {}, set(), frozenset()],
    }
    return class_free


def numpy_cases():
    import numpy as np

    return {
        "f64_2d": np.arange(24, dtype=np.float64).reshape(4, 6) / 8,
        "i32": np.arange(-5, 100, dtype=np.int32),
        "u8_3d": np.arange(60, dtype=np.uint8).reshape(3, 4, 5),
        "bool": np.array([True, False, True]),
        "f32": np.array([0.1, 2.5, -3.25], dtype=np.float32),
        "big_endian": np.arange(5, dtype=">i8"),
        "fortran": np.asfortranarray(np.arange(12, dtype=np.int64).reshape(3, 4)),
        "dt64": np.array(["2024-01-01", "2024-06-30T12:00"], dtype="datetime64[ns]"),
        "dt64_days": np.array(["2024-01-01", "1969-12-31"], dtype="datetime64[D]"),
        "complex128": np.array([1 + 2j, -0.5j]),
        "object": np.array(["a", None, 3], dtype=object),
        "empty": np.zeros((0, 3)),
        "scalar_f64": np.float64(2.5), "scalar_i64": np.int64(-7),
        "dtype": np.dtype("<f4"),
    }


def pandas_cases():
    import numpy as np
    import pandas as pd

    return {
        "frame": pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5], "s": ["x", "y", "z"]}),
        "frame_wide": pd.DataFrame(np.arange(60, dtype=np.int64).reshape(5, 12),
                                   columns=["c%d" % i for i in range(12)]),
        "frame_dates": pd.DataFrame({"t": pd.date_range("2024-01-01", periods=4, freq="D"), "v": [1.0, 2.0, 3.0, 4.0]}),
        "frame_multi": pd.DataFrame({"v": [1, 2, 3]}, index=pd.MultiIndex.from_tuples([("x", 1), ("x", 2), ("y", 1)])),
        "frame_long": pd.DataFrame({"n": np.arange(1000, dtype=np.int64)}),
        "series": pd.Series([1.5, 2.5, 3.5], name="price"),
        "series_str_index": pd.Series([10, 20], index=["a", "b"]),
        "categorical": pd.Series(pd.Categorical(["lo", "hi", "lo", "mid"])),
    }


def write(folder):
    os.makedirs(folder, exist_ok=True)
    groups = [builtins()]
    for make in (numpy_cases, pandas_cases):
        try:
            groups.append(make())
        except ImportError:
            pass
    for group in groups:
        for name, value in group.items():
            for proto in range(pickle.HIGHEST_PROTOCOL + 1):
                with open(os.path.join(folder, "%s.p%d" % (name, proto)), "wb") as f:
                    f.write(pickle.dumps(value, protocol=proto))


if __name__ == "__main__":
    write(sys.argv[1])
