"""Hostile pickles for the previewer, assembled opcode by opcode (tests only).

Each builds a value the previewer's numpy and pandas recognisers take apart,
with a lie in it: a shape the data does not hold, an object that holds itself,
a memo keyed to collide, a stack of references, integers at their limits.
Nothing here needs numpy or pandas.

  python3 python/tests/hostile.py DIR    writes DIR/<case> as fuzz_pickle inputs
                                         (4 parameter bytes, then the pickle)
"""

import os
import struct
import sys

# ---- an assembler: each function returns the opcodes that push one value ----

MARK, STOP, NONE, TRUE, FALSE, EMPTY_TUPLE = b"(", b".", b"N", b"\x88", b"\x89", b")"


def i(n):
    if -(2 ** 31) <= n < 2 ** 31:
        return b"J" + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() >> 3) + 1, "little", signed=True)  # as pickle's encode_long
    if n < 0 and len(raw) > 1 and raw[-1] == 0xff and raw[-2] & 0x80:
        raw = raw[:-1]
    return b"\x8a" + bytes([len(raw)]) + raw


def s(text):
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def by(raw):
    return b"B" + struct.pack("<I", len(raw)) + raw


def g(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def tup(*items):
    return MARK + b"".join(items) + b"t"


def lst(*items):
    return b"]" + (MARK + b"".join(items) + b"e" if items else b"")


def dct(*pairs):
    return b"}" + (MARK + b"".join(k + v for k, v in pairs) + b"u" if pairs else b"")


def put(n):
    return b"r" + struct.pack("<I", n)


def get(n):
    return b"j" + struct.pack("<I", n)


def call(func, *args):
    return func + tup(*args) + b"R"


def pickle(*body, proto=4):
    return b"\x80" + bytes([proto]) + b"".join(body) + STOP


# ---- numpy and pandas, as their pickles build them ----

def dtype(descr):
    return call(g("numpy", "dtype"), s(descr), FALSE, TRUE) + tup(
        i(3), s("<"), NONE, NONE, NONE, i(-1), i(-1), i(0)) + b"b"


def ndarray(shape, descr, data, shape_ops=None):
    """An ndarray whose BUILD state says `shape` (or the opcodes shape_ops) over `data`."""
    head = call(g("numpy.core.multiarray", "_reconstruct"), g("numpy", "ndarray"), tup(i(0)), by(b"b"))
    return head + tup(i(1), shape_ops or tup(*map(i, shape)), dtype(descr), FALSE, by(data)) + b"b"


def index(arr):
    return call(g("pandas.core.indexes.base", "_new_Index"), g("pandas.core.indexes.base", "Index"),
                dct((s("data"), arr), (s("name"), NONE)))


def range_index(start, stop, step=1):
    return call(g("pandas.core.indexes.base", "_new_Index"), g("pandas.core.indexes.range", "RangeIndex"),
                dct((s("name"), NONE), (s("start"), i(start)), (s("stop"), i(stop)), (s("step"), i(step))))


def block(values, placement):
    return call(g("pandas._libs.internals", "_unpickle_block"), values, placement, i(2))


def pslice(a, b, c=1):
    return call(g("builtins", "slice"), i(a), i(b), i(c))


def frame(blocks, columns, rows):
    mgr = call(g("pandas.core.internals.managers", "BlockManager"), tup(*blocks), lst(columns, rows))
    return g("pandas.core.frame", "DataFrame") + EMPTY_TUPLE + b"\x81" + dct((s("_mgr"), mgr)) + b"b"


def floats(n):
    return struct.pack("<%dd" % n, *[float(k) for k in range(n)])


def ints(*v):
    return struct.pack("<%dq" % len(v), *v)


# ---- the cases: each a whole pickle ----

def lying_placement():
    """A block placed by an int64 array that says (2**62,) and holds one value."""
    return pickle(frame([block(ndarray((1, 1), "<f8", floats(1)), ndarray((2 ** 62,), "<i8", ints(5)))],
                        range_index(0, 2), range_index(0, 1)))


def lying_codes():
    """A MultiIndex whose codes say (2**62,) over 8 bytes, its levels fine."""
    mi = call(g("pandas.core.indexes.base", "_new_Index"), g("pandas.core.indexes.multi", "MultiIndex"),
              dct((s("levels"), lst(index(ndarray((1,), "<i8", ints(7))))),
                  (s("codes"), lst(ndarray((2 ** 62,), "<i8", ints(0)))), (s("names"), lst(NONE))))
    return pickle(frame([block(ndarray((1, 1), "<f8", floats(1)), pslice(0, 1))], range_index(0, 1), mi))


def multiindex_holds_itself():
    """A MultiIndex whose levels hold the index itself: its dict is memoised, the
    index made from it, then the dict filled in (SETITEMS) with a reference back."""
    mi = (dct() + put(0) + b"0"
          + call(g("pandas.core.indexes.base", "_new_Index"), g("pandas.core.indexes.multi", "MultiIndex"), get(0))
          + put(1) + get(0) + MARK + s("levels") + lst(get(1)) + s("codes") + lst(ndarray((1,), "<i8", ints(0)))
          + b"u" + b"0")  # the dict, filled, popped: the index stays on the stack
    return pickle(frame([block(ndarray((1, 1), "<f8", floats(1)), pslice(0, 1))], range_index(0, 1), mi))


def backed_holds_itself():
    """A pandas NDArrayBacked whose BUILD state (dtype, ndarray, attrs) holds itself."""
    arr = (call(g("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"), g("pandas.core.arrays", "DatetimeArray"),
                i(0), NONE) + put(0) + tup(dtype("<M8[ns]"), get(0), dct()) + b"b")
    return pickle(frame([block(arr, pslice(0, 1))], range_index(0, 1), range_index(0, 1)))


def categorical_holds_itself():
    """A categorical whose dtype's categories index is the column itself."""
    cat = (call(g("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"), g("pandas.core.arrays", "Categorical"),
                i(0), NONE) + put(0)
           + tup(g("pandas.core.dtypes.dtypes", "CategoricalDtype") + EMPTY_TUPLE + b"\x81"
                 + dct((s("categories"), call(g("pandas.core.indexes.base", "_new_Index"),
                                              g("pandas.core.indexes.base", "Index"),
                                              dct((s("data"), get(0)))))) + b"b",
                 get(0), dct()) + b"b")
    return pickle(frame([block(cat, pslice(0, 1))], range_index(0, 1), range_index(0, 1)))


def datetime_tz_is_itself():
    """A datetime whose BUILD state is the datetime itself: its tzinfo, shown inside it."""
    dt = call(g("datetime", "datetime"), by(bytes([7, 234, 1, 2, 3, 4, 5, 0, 0, 0]))) + put(0)
    return pickle(dt + get(0) + b"b")


def range_index_extremes():
    """RangeIndex(-2**63, 2**63 - 1), and one of step -2**63: lengths that overflow int64."""
    return pickle(lst(frame([block(ndarray((1, 1), "<f8", floats(1)), pslice(-2 ** 63, 2 ** 63 - 1))],
                            range_index(-2 ** 63, 2 ** 63 - 1), range_index(2 ** 63 - 1, -2 ** 63, -2 ** 63)),
                      frame([block(ndarray((1, 1), "<f8", floats(1)), pslice(0, 1, 2 ** 63 - 1))],
                            range_index(0, 1), range_index(2 ** 63 - 1, -2 ** 63, -1))))


def memo_collisions(n=199000, spread=32):
    """n memo keys whose hashes under the old multiplicative hash (key * 2654435761)
    share their low 19 bits but for `spread` values: one probe run at every table
    size; then n GETs of the last of them."""
    inv = pow(2654435761, -1, 2 ** 32)
    keys = [((h >> 5 << 19 | h & (spread - 1)) * inv) & 0xffffffff for h in range(n)]
    body = b"".join(NONE + put(k) + b"0" for k in keys)
    gets = b"".join(get(keys[-1 - k % 64]) + b"0" for k in range(n))
    return pickle(body + gets + NONE)


def dup_bomb(n=10_000_000):
    """PROTO, NONE, then n DUPs: references, not values; the stack holds them all."""
    return b"\x80\x04N" + b"2" * n + b"."


def get_bomb(n=5_000_000):
    """One memoised value pushed again n times by BINGET, then MEMOIZE'd each time."""
    return b"\x80\x04N\x94" + b"h\x00\x94" * n + b"."


def wide_shape():
    """A 32-axis array of 2 per axis over 8 bytes: the renderer's nesting, not its data."""
    return pickle(ndarray([2] * 32, "<f8", floats(1)))


CASES = {
    "lying-placement": lying_placement,
    "lying-codes": lying_codes,
    "multiindex-holds-itself": multiindex_holds_itself,
    "backed-holds-itself": backed_holds_itself,
    "categorical-holds-itself": categorical_holds_itself,
    "datetime-tz-is-itself": datetime_tz_is_itself,
    "rangeindex-extremes": range_index_extremes,
    "wide-shape": wide_shape,
}
# big ones: built on demand (seconds of the old code's time each)
BIG = {
    "memo-collisions": memo_collisions,
    "dup-bomb": dup_bomb,
    "get-bomb": get_bomb,
}


def main(out):
    os.makedirs(out, exist_ok=True)
    small = {"memo-collisions": lambda: memo_collisions(3000), "dup-bomb": lambda: dup_bomb(60000),
             "get-bomb": lambda: get_bomb(20000)}
    for name, fn in list(CASES.items()) + list(small.items()):
        for mode, tag in ((0x00, "text"), (0x01, "json")):
            with open(os.path.join(out, "%s-%s" % (name, tag)), "wb") as f:
                f.write(bytes([mode | 0x94, 7, 0, 0]) + fn())  # items 10, depth 8, output 1024


if __name__ == "__main__":
    main(sys.argv[1])
