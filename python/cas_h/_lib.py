"""Loading libcas.so and declaring the C prototypes (internal).

Every function the package calls is declared here with its argtypes and
restype: fixed-width integers, c_size_t, pointers as c_void_p / c_char_p, no
struct passed by value. The library is a plain ctypes.CDLL, so every call
releases the GIL while C runs.
"""

import ctypes
import ctypes.util
import importlib.util
import os
import sysconfig
from typing import TYPE_CHECKING, Any, NoReturn, Optional, TypeVar, cast

from .errors import error_class

__all__ = ["lib", "path", "speedups", "acquire", "Buffer"]

_HERE = os.path.dirname(os.path.abspath(__file__))

c_int, c_int64, c_uint64, c_size_t = ctypes.c_int, ctypes.c_int64, ctypes.c_uint64, ctypes.c_size_t
c_void_p, c_char_p = ctypes.c_void_p, ctypes.c_char_p
P = ctypes.POINTER


def _candidates():
    """(description, path-or-name) in the order they are tried."""
    env = os.environ.get("CAS_H_LIBRARY")
    if env:
        # An explicit choice is the only one tried: silently using another
        # library than the one asked for would hide a mistake.
        return [("$CAS_H_LIBRARY", env)]
    out = [("next to the package", os.path.join(_HERE, "libcas.so"))]
    repo = os.path.dirname(os.path.dirname(_HERE))  # python/cas_h -> repo root
    if os.path.isfile(os.path.join(repo, "cas.h")):
        out.append(("the checkout's build directory", os.path.join(repo, "build", "libcas.so")))
    found = ctypes.util.find_library("cas")
    out.append(("the system library path (ctypes.util.find_library('cas'))", found))
    return out


def _load():
    tried = []
    for what, where in _candidates():
        if where is None:
            tried.append("  %s: not found" % what)
            continue
        if os.sep in where and not os.path.exists(where):
            tried.append("  %s: %s does not exist" % (what, where))
            continue
        try:
            return ctypes.CDLL(where), where
        except OSError as e:
            tried.append("  %s: %s: %s" % (what, where, e))
    raise ImportError(
        "cas_h cannot find libcas.so. Tried:\n%s\n"
        "Build it with `make` in the cas.h checkout, copy it next to the package "
        "(cas_h/libcas.so), or set CAS_H_LIBRARY=/path/to/libcas.so." % "\n".join(tried)
    )


lib, path = _load()


def _load_speedups():
    """(cas_h._speedups bound to lib's functions, its path, why not): the one-blob
    calls without ctypes (python/cas_h/_speedups.c). It is looked for beside the
    library loaded, then in the package; without it, or with CAS_H_SPEEDUPS=0,
    cas_h makes the same calls through ctypes."""
    if os.environ.get("CAS_H_SPEEDUPS", "1").strip().lower() in ("0", "no", "off", "false"):
        return None, None, "switched off by CAS_H_SPEEDUPS"
    name = "_speedups" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so")
    dirs = [os.path.dirname(path)] if os.sep in path else []
    for where in [os.path.join(d, name) for d in dirs + [_HERE]]:
        if not os.path.isfile(where):
            continue
        try:
            spec = importlib.util.spec_from_file_location(__package__ + "._speedups", where)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            # each function's address in the library ctypes loaded: the shim calls that library
            mod.bind(*[ctypes.cast(lib[f], c_void_p).value for f in mod.FUNCTIONS.split()])
        except (ImportError, OSError, AttributeError, TypeError, ValueError) as e:
            return None, None, "%s: %s" % (where, e)
        return mod, where, None
    return None, None, "no %s beside %s or in %s" % (name, path, _HERE)


speedups, speedups_path, speedups_missing = _load_speedups()


def raw_function(name, restype):
    """A second handle on a C function, with no argtypes: for hot calls whose
    arguments are already C-ready (the prototyped handle stays as it is)."""
    f = lib[name]  # item access: a new function object, not the cached attribute
    f.restype = restype
    return f


def _proto(name, restype, *argtypes, errcheck=None):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    if errcheck is not None:
        f.errcheck = errcheck


# ctypes errcheck functions: a call whose status is negative raises its CasError at
# once, in the C library's words; non-negative statuses (CAS_OK, CAS_NEED_OUTPUT,
# ...) come back to the caller. Calls whose failure a caller words its own way
# (a bad parameter value) or cleans up after (a batch's partial outputs) have none.
def fail(rc: int, message: Optional[str] = None) -> NoReturn:
    """Raises status rc's CasError: message, or the status's own words."""
    raise error_class(rc)(message or lib.cas_strerror(rc).decode(), rc)


def status(rc, func, args):
    """The status alone says it."""
    if rc < 0:
        fail(rc, "")
    return rc


def status_err(rc, func, args):
    """The call wrote its message into the caller's (err, errcap), its last two arguments."""
    if rc < 0:
        err = args[-2]
        fail(rc, err.value.decode("utf-8", "replace") if err is not None else "")
    return rc


def status_of(message):
    """The object the call was made on (its first argument) keeps the message."""
    def check(rc, func, args):
        if rc < 0:
            fail(rc, (message(args[0]) or b"").decode("utf-8", "replace"))
        return rc
    return check


_reader_status = status_of(lambda r: lib.cas_reader_message(r))
_stream_status = status_of(lambda st: lib.cas_stream_message(st))

# status codes, versions, codecs
_proto("cas_strerror", c_char_p, c_int)
_proto("cas_status_name", c_char_p, c_int)
_proto("cas_version_string", c_char_p)
_proto("cas_codec_available", c_int, c_int)
_proto("cas_encode_bound", c_size_t, c_int, c_size_t)
_proto("cas_encode", c_int, c_int, c_int, c_void_p, c_size_t, c_void_p, c_size_t, P(c_size_t))
_proto("cas_encoder_create", c_int, P(c_void_p), c_int, c_void_p)
_proto("cas_codec_set_param", c_int, c_void_p, c_int, c_int64)
_proto("cas_codec_free", None, c_void_p)
_proto("cas_codec_encode_all", c_int, c_void_p, c_void_p, c_size_t, c_void_p, c_size_t, P(c_size_t))
# keys
_proto("cas_hash_available", c_int, c_int)
_proto("cas_key_length", c_size_t, c_int)
_proto("cas_key_check", c_int, c_char_p, c_size_t, P(c_int))
_proto("cas_hash", c_int, c_int, c_void_p, c_size_t, c_char_p, errcheck=status)
# formats and sidecars
_proto("cas_format_name", c_char_p, c_int)
_proto("cas_format_codec", c_int, c_int)
_proto("cas_meta_json", c_int, c_int, c_char_p, c_size_t, P(c_size_t), errcheck=status)
_proto("cas_meta_parse", c_int, c_char_p, c_size_t, P(c_int), P(c_int64), errcheck=status)
# writer
_proto("cas_writer_create", c_int, P(c_void_p), c_int, c_void_p, errcheck=status)
_proto("cas_writer_set_param", c_int, c_void_p, c_int, c_int64)
_proto("cas_writer_update", c_int, c_void_p, c_void_p, c_size_t, P(c_size_t), c_void_p, c_size_t, P(c_size_t))
_proto("cas_writer_finish", c_int, c_void_p, c_void_p, c_size_t, P(c_size_t))
_proto("cas_writer_key", c_int, c_void_p, c_char_p)
_proto("cas_writer_meta", c_int, c_void_p, c_char_p, c_size_t, P(c_size_t))
_proto("cas_writer_reset", c_int, c_void_p, c_int)
_proto("cas_writer_free", None, c_void_p)
_proto("cas_pack_bound", c_size_t, c_int, c_size_t)
_proto("cas_pack", c_int, c_void_p, c_void_p, c_size_t, c_void_p, c_size_t, P(c_size_t), c_char_p)
# reader
_proto("cas_reader_create", c_int, P(c_void_p), c_void_p, errcheck=status)
_proto("cas_reader_set_param", c_int, c_void_p, c_int, c_int64)
_proto("cas_reader_begin", c_int, c_void_p, c_char_p, c_size_t, c_char_p, c_char_p, errcheck=_reader_status)
_proto("cas_reader_update", c_int, c_void_p, c_void_p, c_size_t, P(c_size_t), c_void_p, c_size_t,
       P(c_size_t), c_int, errcheck=_reader_status)
_proto("cas_reader_unpack_into", c_int, c_void_p, c_void_p, c_size_t, c_void_p, c_size_t, P(c_size_t),
       errcheck=_reader_status)
_proto("cas_reader_unpack", c_int, c_void_p, c_void_p, c_size_t, P(c_void_p), P(c_size_t), errcheck=_reader_status)
_proto("cas_reader_decode", c_int, c_void_p, c_char_p, c_size_t, c_char_p, c_char_p, c_void_p, c_size_t, c_void_p,
       c_size_t, P(c_size_t))
_proto("cas_reader_free_buffer", None, c_void_p, c_void_p)
_proto("cas_reader_size_hint", c_int, c_void_p, c_void_p, c_size_t, P(c_uint64))
_proto("cas_reader_message", c_char_p, c_void_p)
_proto("cas_reader_format", c_int, c_void_p)
_proto("cas_reader_total_out", c_uint64, c_void_p)
_proto("cas_reader_free", None, c_void_p)
# many blobs in one call (arrays passed as c_void_p)
_proto("cas_pack_many", c_int, c_int, c_int, c_size_t, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p,
       c_void_p, c_int)
_proto("cas_unpack_many", c_int, c_size_t, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p,
       c_void_p, c_int)
# store
_proto("cas_store_open", c_int, P(c_void_p), c_char_p, c_void_p, c_char_p, c_size_t, errcheck=status_err)
_proto("cas_store_close", None, c_void_p)
_proto("cas_store_root", c_char_p, c_void_p)
_proto("cas_store_set_param", c_int, c_void_p, c_int, c_int64)
_proto("cas_name_check", c_int, c_char_p)
_proto("cas_part_check", c_int, c_char_p)
_proto("cas_pathspec_check", c_int, c_char_p)
_proto("cas_store_blob_name", c_int, c_char_p, c_char_p, c_char_p, c_size_t, errcheck=status)
_proto("cas_store_put", c_int, c_void_p, c_char_p, c_void_p, c_size_t, c_int, c_char_p, P(c_int), c_char_p,
       c_size_t, errcheck=status_err)
_proto("cas_store_put_fd", c_int, c_void_p, c_char_p, c_int, c_int, c_char_p, P(c_int), c_char_p, c_size_t,
       errcheck=status_err)
_proto("cas_store_exists", c_int, c_void_p, c_char_p, c_char_p)
_proto("cas_store_get", c_int, c_void_p, c_char_p, c_char_p, P(c_void_p), P(c_size_t), c_char_p, c_size_t)
_proto("cas_store_free_buffer", None, c_void_p, c_void_p)
_proto("cas_store_file_exists", c_int, c_void_p, c_char_p, c_char_p, c_size_t, errcheck=status_err)
_proto("cas_store_file_get", c_int, c_void_p, c_char_p, c_size_t, P(c_void_p), P(c_size_t), P(c_void_p), c_char_p,
       c_size_t, errcheck=status_err)
_proto("cas_store_file_put", c_int, c_void_p, c_char_p, c_void_p, c_size_t, c_char_p, c_int, P(c_int), c_char_p,
       c_size_t, errcheck=status_err)
_proto("cas_store_stat", c_int, c_void_p, c_char_p, c_char_p, P(c_int), P(c_uint64), c_char_p, c_size_t,
       errcheck=status_err)
_proto("cas_store_verify", c_int, c_void_p, c_char_p, c_char_p, P(c_uint64), c_char_p, c_size_t, errcheck=status_err)
_proto("cas_store_keys", c_int, c_void_p, c_char_p, P(c_void_p), P(c_size_t), c_char_p, c_size_t)
_proto("cas_store_flows", c_int, c_void_p, P(c_void_p), P(c_size_t), c_char_p, c_size_t)
_proto("cas_store_put_batch", c_int, c_void_p, c_char_p, c_size_t, P(c_void_p), P(c_size_t), c_int, c_char_p,
       P(c_int), c_int, c_char_p, c_size_t, errcheck=status_err)
_proto("cas_store_get_batch", c_int, c_void_p, c_char_p, c_size_t, P(c_char_p), P(c_void_p), P(c_size_t),
       P(c_int), c_int, c_char_p, c_size_t)
# streams
_proto("cas_stream_open", c_int, c_void_p, c_char_p, c_char_p, P(c_void_p), c_char_p, c_size_t,
       errcheck=status_err)
_proto("cas_stream_open_file", c_int, P(c_void_p), c_char_p, c_char_p, c_uint64, c_void_p, c_char_p, c_size_t,
       errcheck=status_err)
_proto("cas_stream_read", c_int, c_void_p, c_void_p, c_size_t, P(c_size_t), errcheck=_stream_status)
_proto("cas_unpack_v2_fd", c_int, c_int, c_void_p, c_size_t, P(c_size_t))
_proto("cas_unpack_v2_fd_many", c_int, c_size_t, P(c_int), P(c_void_p), P(c_size_t), P(c_size_t), P(c_int), c_int)
_proto("cas_stream_set_param", c_int, c_void_p, c_int, c_int64)
_proto("cas_stream_message", c_char_p, c_void_p)
_proto("cas_stream_format", c_int, c_void_p)
_proto("cas_stream_stored_size", c_uint64, c_void_p)
_proto("cas_stream_close", None, c_void_p)
# pickle previews (cas_pickle.h)
_preview_read_fn = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p, c_size_t, P(c_size_t))
_proto("cas_preview_create", c_int, P(c_void_p), c_void_p)
_proto("cas_preview_set_param", c_int, c_void_p, c_int, c_int64)
_proto("cas_preview_run", c_int, c_void_p, _preview_read_fn, c_void_p)
_proto("cas_preview_bytes", c_int, c_void_p, c_void_p, c_size_t)
_proto("cas_preview_text", c_void_p, c_void_p, P(c_size_t))
_proto("cas_preview_message", c_char_p, c_void_p)
_proto("cas_preview_bytes_read", c_uint64, c_void_p)
_proto("cas_preview_free", None, c_void_p)
_proto("cas_stream_preview", c_int, c_void_p, c_void_p)
_proto("cas_store_preview", c_int, c_void_p, c_char_p, c_char_p, c_void_p, c_char_p, c_size_t)
_proto("cas_preview_encoded", c_int, c_void_p, c_char_p, c_int64, _preview_read_fn, c_void_p)
_proto("cas_store_preview_encoded", c_int, c_void_p, c_char_p, c_char_p, c_char_p, c_int64, c_void_p, c_char_p,
       c_size_t)
_proto("cas_encoding_is_pickle", c_int, c_char_p)


# browsing: folders, runs
class FileEntry(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("is_dir", c_int), ("size", c_uint64), ("mtime", c_int64), ("other", c_int)]


class RunInfo(ctypes.Structure):
    _fields_ = [("id", c_char_p), ("user", c_char_p), ("tags", c_char_p), ("system_tags", c_char_p),
                ("started", c_int64), ("finished", c_int)]


_proto("cas_store_file_list", c_int, c_void_p, c_char_p, P(P(FileEntry)), P(c_size_t), c_char_p, c_size_t,
       errcheck=status_err)
_proto("cas_store_file_walk", c_int, c_void_p, c_char_p, P(P(FileEntry)), P(c_size_t), c_char_p, c_size_t,
       errcheck=status_err)
_proto("cas_store_file_remove", c_int, c_void_p, c_char_p, c_char_p, c_size_t, errcheck=status_err)
_proto("cas_store_runs", c_int, c_void_p, c_char_p, P(P(RunInfo)), P(c_size_t), c_char_p, c_size_t,
       errcheck=status_err)
_proto("cas_task_pick_attempt", c_int, c_char_p, c_size_t)
# tasks
_proto("cas_task_open", c_int, c_void_p, c_char_p, P(c_void_p), c_char_p, c_size_t, errcheck=status_err)
_proto("cas_task_attempt", c_int, c_void_p)
_proto("cas_task_count", c_size_t, c_void_p)
_proto("cas_task_artifact", c_int, c_void_p, c_size_t, P(c_char_p), P(c_char_p), P(c_int64), P(c_char_p),
       P(c_char_p))
_proto("cas_task_find", c_int, c_void_p, c_char_p, P(c_size_t))
_proto("cas_task_flow", c_char_p, c_void_p)
_proto("cas_task_close", None, c_void_p)


# ---- buffers without copies ----------------------------------------------------

class _Py_buffer(ctypes.Structure):
    # Py_buffer, part of the stable ABI since Python 3.11 (and unchanged before)
    _fields_ = [
        ("buf", c_void_p),
        ("obj", ctypes.py_object),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", c_int),
        ("ndim", c_int),
        ("format", c_char_p),
        ("shape", c_void_p),
        ("strides", c_void_p),
        ("suboffsets", c_void_p),
        ("internal", c_void_p),
    ]


_api = ctypes.pythonapi  # PyDLL: these calls keep the GIL, as the C API requires
_api.PyObject_GetBuffer.argtypes = [ctypes.py_object, P(_Py_buffer), c_int]
_api.PyObject_GetBuffer.restype = c_int
_api.PyBuffer_Release.argtypes = [P(_Py_buffer)]
_api.PyBuffer_Release.restype = None
_api.PyBytes_FromStringAndSize.argtypes = [c_void_p, ctypes.c_ssize_t]
_api.PyBytes_FromStringAndSize.restype = ctypes.py_object
_PyBUF_SIMPLE, _PyBUF_WRITABLE = 0, 1


_Self = TypeVar("_Self", bound="Closing")


class Closing(object):
    """Context manager and finalizer for objects that own a C handle or a buffer
    export: close() runs on exit from a with block and, failing that, when
    collected."""

    __slots__ = ()

    def __enter__(self: _Self) -> _Self:  # `with Store(...) as s`: s is a Store to a type checker
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    if TYPE_CHECKING:  # every subclass has its own; declared for type checkers only (no MRO change)
        def close(self) -> None: ...

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Buffer(Closing):
    """A contiguous buffer's address and length, held without copying.

    bytes: the object's own storage (ctypes passes bytes as a pointer to it).
    Anything else exporting the buffer protocol (bytearray, memoryview, mmap,
    array.array, a C-contiguous numpy array): PyObject_GetBuffer, the same
    call memoryview() makes; the export is held until release(), so a
    bytearray cannot be resized under C while the GIL is dropped.
    """

    __slots__ = ("addr", "size", "_view", "_obj")

    def __init__(self, obj, writable=False):
        self._view = None
        self._obj = obj
        if type(obj) is bytes and not writable:
            self.size = len(obj)
            self.addr = ctypes.cast(c_char_p(obj), c_void_p).value or 0
            return
        view = _Py_buffer()
        flags = _PyBUF_WRITABLE if writable else _PyBUF_SIMPLE
        try:
            # raises BufferError (non-contiguous, read-only) or TypeError itself
            _api.PyObject_GetBuffer(obj, ctypes.byref(view), flags)
        except (BufferError, TypeError, ValueError) as e:
            raise TypeError(
                "expected a contiguous%s buffer (bytes, bytearray, memoryview, numpy array), got %s: %s"
                % (" writable" if writable else "", type(obj).__name__, e)
            ) from None
        self._view = view
        self.addr = view.buf or 0
        self.size = view.len

    def release(self):
        if self._view is not None:
            _api.PyBuffer_Release(ctypes.byref(self._view))
            self._view = None
        self._obj = None

    close = release


def acquire(obj, writable=False):
    return Buffer(obj, writable)


def new_bytes(n):
    """A fresh, not yet shared bytes object of n bytes and its address, for C
    to fill before anyone else sees it (what C extensions do with
    PyBytes_FromStringAndSize(NULL, n))."""
    b = _api.PyBytes_FromStringAndSize(None, n)
    return b, (ctypes.cast(c_char_p(b), c_void_p).value or 0)


# A bytes object C fills to a length known only after (a blob written into its
# bound), held by its only reference, a raw pointer, until it is cut to that
# length in place: _PyBytes_Resize, which the C API documents for building a new
# bytes object, needs the object unseen by anyone else (a reference count of 1).
# These functions keep the GIL and raise the error the C API sets.
_raw_new = ctypes.PYFUNCTYPE(c_void_p, c_void_p, ctypes.c_ssize_t)(("PyBytes_FromStringAndSize", _api))
_raw_resize = ctypes.PYFUNCTYPE(c_int, P(c_void_p), ctypes.c_ssize_t)(("_PyBytes_Resize", _api))
_raw_decref = ctypes.PYFUNCTYPE(None, c_void_p)(("Py_DecRef", _api))
_probe = b"probe"
# where a bytes object's bytes start, from a probe
_BYTES_DATA = cast(int, ctypes.cast(c_char_p(_probe), c_void_p).value) - id(_probe)


class OwnedBytes(Closing):
    """n bytes for C to fill at addr; take(length) hands out the bytes object cut
    to length without a copy. Never taken, it is freed on close()."""

    __slots__ = ("_p", "addr", "size")

    def __init__(self, n):
        self._p = None
        self._p = _raw_new(None, n)  # MemoryError when it cannot be had
        self.addr, self.size = self._p + _BYTES_DATA, n

    def take(self, length):
        p, self._p = self._p, None
        cell = c_void_p(p)
        if length != self.size:
            _raw_resize(ctypes.byref(cell), length)  # on failure the object is gone and this raises
        obj = ctypes.cast(cell.value, ctypes.py_object).value  # a second reference...
        _raw_decref(cell.value)  # ...and the raw one let go: obj is the only one
        return obj

    def close(self):
        p, self._p = self._p, None
        if p:
            _raw_decref(p)


# libc's allocator, for scratch buffers C fills and Python copies out of:
# pages a blob never reaches are never touched (bytearray(n) would zero them).
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
malloc = _libc.malloc
malloc.restype = c_void_p
malloc.argtypes = [c_size_t]
free = _libc.free
free.restype = None
free.argtypes = [c_void_p]


class CtypesCalls(object):
    """The speedups' four calls (same arguments, same answers: a result, a status,
    or None for cas_h's general path) made through ctypes, for a cas_h without
    _speedups. Each is one C call, on bytes of up to SMALL, into this thread's
    scratch buffer, then one copy out; anything else answers None. The calls use
    handles without argtypes, so every argument is made C-ready here (a bare
    Python int would go as a C int, not the size_t or pointer C reads)."""

    SMALL = 64 << 10

    def __init__(self, formats, key_buf):
        import threading

        self._tls = threading.local()
        self._cap = max(lib.cas_pack_bound(f, self.SMALL) for f in formats)
        self._key_buf = key_buf
        self._pack, self._decode, self._hash, self._encode = (
            raw_function(f, c_int) for f in ("cas_pack", "cas_reader_decode", "cas_hash", "cas_codec_encode_all"))

    def _scratch(self):
        sc = self._tls.__dict__.get("sc")
        if sc is None:
            sc = self._tls.sc = _Scratch(self._cap, self._key_buf)
        return sc

    def pack(self, w, fmt, data):
        if type(data) is not bytes or len(data) > self.SMALL:
            return None
        sc = self._scratch()
        rc = self._pack(c_void_p(w), data, c_size_t(len(data)), sc.addr, sc.cap, sc.n_ref, sc.key)
        return (sc.key.value.decode(), sc.view[:sc.n.value].tobytes()) if rc == 0 else rc

    def unpack(self, r, meta, blob, name, key):
        if type(blob) is not bytes:
            return None
        sc = self._scratch()
        rc = self._decode(c_void_p(r), meta, c_size_t(len(meta) if meta is not None else 0), name, key, blob,
                          c_size_t(len(blob)), sc.addr, sc.cap, sc.n_ref)
        return sc.view[:sc.n.value].tobytes() if rc == 0 else rc

    def hash(self, algo, data):
        if type(data) is not bytes:
            return None
        sc = self._scratch()
        rc = self._hash(c_int(algo), data, c_size_t(len(data)), sc.key)
        return sc.key.value.decode() if rc == 0 else rc

    def encode(self, c, codec, data):
        if type(data) is not bytes or len(data) > self.SMALL:
            return None
        sc = self._scratch()
        rc = self._encode(c_void_p(c), data, c_size_t(len(data)), sc.addr, sc.cap, sc.n_ref)
        return sc.view[:sc.n.value].tobytes() if rc == 0 else rc


class _Scratch(object):
    """One thread's buffer for CtypesCalls, with its C-ready arguments."""

    def __init__(self, cap, key_buf):
        self.buf = ctypes.create_string_buffer(cap)
        self.view = memoryview(self.buf).cast("B")
        self.addr, self.cap = c_void_p(ctypes.addressof(self.buf)), c_size_t(cap)
        self.n = c_size_t()
        self.n_ref = ctypes.byref(self.n)
        self.key = ctypes.create_string_buffer(key_buf)
