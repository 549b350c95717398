"""What every part of cas_h shares: the formats' and statuses' constants, errors
as exceptions, argument conversions, and the base of objects that own a C handle."""

from typing import Any, Dict

import ctypes
import json
import os
import sys

from ._lib import fail as _lib_fail, lib as _c
from . import _constants as C
from . import errors
from .errors import error_class


V1, V2, RAW, LEGACY = C.CAS_FORMAT_V1, C.CAS_FORMAT_V2, C.CAS_FORMAT_RAW, C.CAS_FORMAT_LEGACY
SHA1, XXH3 = C.CAS_HASH_SHA1, C.CAS_HASH_XXH3

_OK, _NEED_INPUT, _NEED_OUTPUT = C.CAS_OK, C.CAS_NEED_INPUT, C.CAS_NEED_OUTPUT
_E_NOTFOUND = C.CAS_E_NOTFOUND
_PARAM_LEVEL, _PARAM_GZIP_BACKEND = C.CAS_PARAM_LEVEL, C.CAS_PARAM_GZIP_BACKEND
_PARAM_LZ4_BLOCK, _PARAM_STRICT = C.CAS_PARAM_LZ4_BLOCK, C.CAS_PARAM_STRICT
_PARAM_HASH, _PARAM_THREADS, _PARAM_LIMIT = C.CAS_PARAM_HASH, C.CAS_PARAM_THREADS, C.CAS_PARAM_LIMIT
_PARAM_EXPECT_SIZE, _PARAM_FORMAT = C.CAS_PARAM_EXPECT_SIZE, C.CAS_PARAM_FORMAT
_PARAM_FSYNC, _PARAM_VERIFY = C.CAS_PARAM_FSYNC, C.CAS_PARAM_VERIFY
_KEY_BUF = C.CAS_KEY_BUF
_ERR_CAP = 1024
_CHUNK = 1 << 20

_c_void_p, _c_size_t, _c_int, _c_int64, _c_uint64 = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                                                     ctypes.c_int64, ctypes.c_uint64)
_byref = ctypes.byref


def _alloc():
    """The cas_allocator every C object is created with: the package's _ALLOC (a
    ctypes pointer to one; None for malloc/free), read at each creation so that
    setting cas_h._ALLOC (the tests' counting allocator) takes effect everywhere."""
    return getattr(sys.modules.get(__package__), "_ALLOC", None)


def strerror(code: int) -> str:
    """The C library's short text for a status code."""
    return _c.cas_strerror(code).decode()


def status_name(code: int) -> str:
    """The C enumerator's name for a status code, e.g. "CAS_E_TRUNCATED"."""
    return _c.cas_status_name(code).decode()


def format_name(fmt: int) -> str:
    """"v1", "v2", "raw", "legacy" for V1, V2, RAW, LEGACY."""
    return _c.cas_format_name(fmt).decode()


def _text(p):
    return p.decode("utf-8", "replace") if p else ""


_raise = _lib_fail  # raises a status's CasError (one rule, in _lib, shared with the errchecks)


def _err_buf():
    return ctypes.create_string_buffer(_ERR_CAP)


def _check_store(rc, err):
    if rc < 0:
        _raise(rc, _text(err.value))
    return rc


def _name(s, what="name"):
    if isinstance(s, str):
        return s.encode("utf-8")
    if isinstance(s, bytes):
        return s
    if isinstance(s, os.PathLike) and what == "path":
        return os.fsencode(s)
    raise TypeError("%s must be str, not %s" % (what, type(s).__name__))


def _format(version=None, raw=False, default=V1):
    if raw:
        return RAW
    if version is None:
        return default
    if version in (1, 2) and not isinstance(version, bool):
        return int(version)
    raise ValueError("version must be 1 (gzip) or 2 (LZ4 frame), not %r" % (version,))


def _meta_bytes(meta):
    """A sidecar as JSON bytes; None stays None (no sidecar: legacy rules)."""
    if meta is None:
        return None
    if isinstance(meta, dict):
        return json.dumps(meta).encode("utf-8")  # what Metaflow writes: json.dumps
    if isinstance(meta, str):
        return meta.encode("utf-8")
    return bytes(meta)


def _meta_json_of(fmt):
    buf = ctypes.create_string_buffer(64)
    n = _c_size_t()
    _c.cas_meta_json(fmt, buf, 64, _byref(n))
    return buf.raw[:n.value]


# Each writable format's sidecar, as the C library's format table has it (the one
# place they are written): bytes as Metaflow's json.dumps writes them, and as dicts.
SIDECAR_JSON = {fmt: _meta_json_of(fmt) for fmt in (V1, V2, RAW)}
SIDECARS = {fmt: json.loads(b) for fmt, b in SIDECAR_JSON.items()}


def sidecar(version: int = 1, raw: bool = False) -> Dict[str, Any]:
    """The sidecar (object metadata) Metaflow stores beside a blob, as a dict:
    {"cas_raw": False, "cas_version": 1}; raw blobs keep cas_version 1."""
    return dict(SIDECARS[_format(version, raw)])


def sidecar_json(version: int = 1, raw: bool = False) -> bytes:
    """The sidecar as Metaflow writes it, byte for byte (json.dumps), as bytes."""
    return SIDECAR_JSON[_format(version, raw)]


def meta_format(meta: Any) -> int:
    """Metaflow's read rules applied to a sidecar (dict, str or bytes): V1, V2,
    RAW, or LEGACY for None. Raises VersionMissing, UnknownVersion or
    MetadataError as Metaflow would refuse it (the message names no blob)."""
    mb = _meta_bytes(meta)
    if mb is None:
        return LEGACY
    fmt, ver = _c_int(), _c_int64()
    _c.cas_meta_parse(mb, len(mb), _byref(fmt), _byref(ver))
    return fmt.value


# ---- previews: the one way every part runs a cas_preview -----------------------

_E_LIMIT, _E_IO = C.CAS_E_LIMIT, C.CAS_E_IO
_PREVIEW_LIMITS = {"max_bytes": C.CAS_PREVIEW_MAX_OUTPUT, "items": C.CAS_PREVIEW_MAX_ITEMS,
                   "depth": C.CAS_PREVIEW_MAX_DEPTH, "max_memo": C.CAS_PREVIEW_MAX_MEMO,
                   "max_read": C.CAS_PREVIEW_MAX_READ, "max_ops": C.CAS_PREVIEW_MAX_OPS,
                   "max_values": C.CAS_PREVIEW_MAX_VALUES, "max_memory": C.CAS_PREVIEW_MAX_MEMORY}
_PREVIEW_JSON = C.CAS_PREVIEW_JSON


def _preview(run, as_json, limits, what):
    """Runs run(p) on a fresh cas_preview with the limits set; the text or the JSON tree."""
    p = _c_void_p()
    if _c.cas_preview_create(_byref(p), _alloc()) < 0:
        raise MemoryError("out of memory")
    try:
        for k, v in limits.items():
            if k not in _PREVIEW_LIMITS:
                raise TypeError("preview() got an unexpected keyword argument %r" % k)
            if v is not None and _c.cas_preview_set_param(p, _PREVIEW_LIMITS[k], int(v)) < 0:
                raise errors.InvalidArgument("%s=%r is out of range" % (k, v), C.CAS_E_ARG)
        if as_json:
            _c.cas_preview_set_param(p, _PREVIEW_JSON, 1)
        rc = run(p)
        n = _c_size_t()
        addr = _c.cas_preview_text(p, _byref(n))
        text = ctypes.string_at(addr, n.value).decode("utf-8", "replace")
        if rc < 0 and rc != _E_LIMIT:
            msg = _text(_c.cas_preview_message(p))
            e = error_class(rc)("%s: %s" % (what, msg) if what and not msg.startswith("blob ") else msg, rc)
            e.partial = json.loads(text) if as_json and text else text  # what came before the fault
            raise e
        return json.loads(text) if as_json else text
    finally:
        _c.cas_preview_free(p)
