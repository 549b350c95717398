"""cas_h: Python binding of cas.h, Metaflow's content-addressed artifact store.

Loads libcas.so with ctypes (no compiler needed at import time) and offers:

  key, blob = cas_h.pack(data)                  # SHA-1 key + gzip blob (cas_version 1)
  key, blob = cas_h.pack(data, version=2)       # LZ4 frame blob (cas_version 2)
  key, blob = cas_h.pack(data, raw=True)        # stored as is
  data = cas_h.unpack(blob, meta={"cas_raw": False, "cas_version": 1})
  data = cas_h.unpack(blob)                     # no sidecar: legacy gzip, as Metaflow reads it

  with cas_h.Store(".metaflow") as store:       # a Metaflow datastore root (local)
      key = store.put("MyFlow", data)
      data = store.get("MyFlow", key)
      keys = store.put_many("MyFlow", [a, b, c])   # 2 C threads
      datas = store.get_many("MyFlow", keys)
      with store.open("MyFlow", key) as f:       # file-like, memory bounded
          head = f.read(4096)
      x = store.artifact("MyFlow/12/start/3", "x")  # pathspec + name -> bytes

  cas_h.preview(store, "MyFlow/12/start/3/x")   # its value as text, nothing unpickled

Inputs: any contiguous buffer (bytes, bytearray, memoryview, mmap, numpy
array), passed to C by address, never copied first.

Errors: CasError subclasses (cas_h.errors) whose str() is the C library's
message word for word, Metaflow's own wording where Metaflow has one.

Threads: libcas is loaded as a ctypes.CDLL, so every C call releases the GIL
and Python threads really run C at the same time. A Store is safe to share
between threads once constructed (its settings are fixed at construction);
closing it waits for calls in flight. Packer, Unpacker and readers are
one-thread-at-a-time objects: each holds a lock, so concurrent use is
serialized rather than unsafe. The module-level pack/unpack/hash_key use
per-thread objects and can be called from any number of threads.
"""

import collections
import ctypes
import io
import json
import os
import threading

from . import _lib
from ._lib import Buffer as _Buffer, lib as _c, new_bytes as _new_bytes
from .errors import *  # noqa: F401,F403
from .errors import NotFound, InvalidName, InvalidKey, error_class
from . import errors

__all__ = [
    "V1", "V2", "RAW", "LEGACY", "SHA1", "XXH3",
    "pack", "pack_into", "pack_bound", "compress", "unpack", "unpack_into", "size_hint", "hash_key", "sidecar", "sidecar_json",
    "meta_format", "format_name", "strerror", "status_name", "Packer", "Unpacker", "Store", "Reader",
    "Task", "Artifact", "BlobStat", "open_blob", "head", "preview", "preview_pickle", "library_path", "errors",
] + errors.__all__

V1, V2, RAW, LEGACY = 1, 2, 3, 4  # CAS_FORMAT_*
SHA1, XXH3 = 1, 2  # CAS_HASH_*

_OK, _NEED_INPUT, _NEED_OUTPUT = 0, 1, 2
_E_NOTFOUND = -16
_PARAM_LEVEL, _PARAM_GZIP_BACKEND, _PARAM_LZ4_BLOCK, _PARAM_STRICT = 1, 3, 4, 5
_PARAM_HASH, _PARAM_THREADS, _PARAM_LIMIT, _PARAM_EXPECT_SIZE = 32, 33, 34, 35
_PARAM_FORMAT, _PARAM_FSYNC, _PARAM_VERIFY = 40, 41, 42
_KEY_BUF = 41
# The cas_allocator every C object is created with (a ctypes pointer to one),
# None for malloc/free. Tests set a counting one to prove nothing leaks.
_ALLOC = None
_ERR_CAP = 1024
_CHUNK = 1 << 20

__version__ = _c.cas_version_string().decode()
library_path = _lib.path

_c_void_p, _c_size_t, _c_int, _c_int64, _c_uint64 = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                                                      ctypes.c_int64, ctypes.c_uint64)
_byref = ctypes.byref


def strerror(code):
    """The C library's short text for a status code."""
    return _c.cas_strerror(code).decode()


def status_name(code):
    """The C enumerator's name for a status code, e.g. "CAS_E_TRUNCATED"."""
    return _c.cas_status_name(code).decode()


def format_name(fmt):
    """"v1", "v2", "raw", "legacy" for V1, V2, RAW, LEGACY."""
    return _c.cas_format_name(fmt).decode()


def _text(p):
    return p.decode("utf-8", "replace") if p else ""


def _raise(code, message=None):
    raise error_class(code)(message or strerror(code), code)


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


def sidecar(version=1, raw=False):
    """The sidecar (object metadata) Metaflow stores beside a blob, as a dict:
    {"cas_raw": False, "cas_version": 1}; raw blobs keep cas_version 1."""
    fmt = _format(version, raw)
    return {"cas_raw": fmt == RAW, "cas_version": 2 if fmt == V2 else 1}


def sidecar_json(version=1, raw=False):
    """The sidecar as Metaflow writes it, byte for byte (json.dumps), as bytes."""
    buf = ctypes.create_string_buffer(64)
    n = _c_size_t()
    rc = _c.cas_meta_json(_format(version, raw), buf, 64, _byref(n))
    if rc < 0:
        _raise(rc)
    return buf.raw[:n.value]


def meta_format(meta):
    """Metaflow's read rules applied to a sidecar (dict, str or bytes): V1, V2,
    RAW, or LEGACY for None. Raises VersionMissing, UnknownVersion or
    MetadataError as Metaflow would refuse it (the message names no blob)."""
    mb = _meta_bytes(meta)
    if mb is None:
        return LEGACY
    fmt, ver = _c_int(), _c_int64()
    rc = _c.cas_meta_parse(mb, len(mb), _byref(fmt), _byref(ver))
    if rc < 0:
        _raise(rc)
    return fmt.value


def hash_key(data, algo=SHA1):
    """The key of some bytes: lowercase hex SHA-1 (Metaflow's) or XXH3-128."""
    if type(data) is bytes:  # one C call: ctypes passes the bytes' own buffer
        key = _scratch().key
        rc = _c.cas_hash(algo, data, len(data), key)
        if rc < 0:
            _raise(rc)
        return key.value.decode()
    key = ctypes.create_string_buffer(_KEY_BUF)
    with _Buffer(data) as b:
        rc = _c.cas_hash(algo, b.addr, b.size, key)
    if rc < 0:
        _raise(rc)
    return key.value.decode()


# ---- writing -------------------------------------------------------------------


class _Closing(object):
    """Context manager and finalizer for objects that own a C handle: close()
    runs on exit from a with block and, failing that, when collected."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Packer(_Closing):
    """Bytes to key + blob, reusing one C writer (its tables and buffers).

    version 1 (gzip, the default: every Metaflow reads it) or 2 (LZ4 frame,
    Metaflow PR #3090), or raw=True. level: gzip 1-9 (default 3, Metaflow's),
    LZ4 1-12 (default 1). threads=2 hashes on a second thread while the first
    compresses (inputs of 256 KiB and more). gzip_backend: "auto" (the fastest
    compiled in, the default), "zlib" (byte-identical to CPython's gzip at the
    same level, mtime 0) or "isal". One thread at a time (a lock serializes
    concurrent use)."""

    def __init__(self, version=1, raw=False, level=None, lz4_block=None, threads=2, algo=SHA1, gzip_backend=None):
        self._fmt = _format(version, raw)
        self._algo = algo
        self._lock = threading.Lock()
        self._w = None
        w = _c_void_p()
        rc = _c.cas_writer_create(_byref(w), self._fmt, _ALLOC)
        if rc < 0:
            _raise(rc)
        self._w = w
        backend = {None: None, "auto": 0, "zlib": 1, "isal": 2}[gzip_backend]
        for param, value in ((_PARAM_HASH, algo), (_PARAM_THREADS, threads), (_PARAM_LEVEL, level),
                             (_PARAM_LZ4_BLOCK, lz4_block), (_PARAM_GZIP_BACKEND, backend)):
            if value is not None:
                rc = _c.cas_writer_set_param(w, param, value)
                if rc < 0:
                    self.close()
                    _raise(rc, "Packer: bad value %r for %s: %s" % (value, _PARAM_NAMES[param], strerror(rc)))

    @property
    def format(self):
        return self._fmt

    @property
    def meta(self):
        """The sidecar dict for what this packer writes."""
        return sidecar(2 if self._fmt == V2 else 1, self._fmt == RAW)

    def close(self):
        with self._lock:
            if self._w is not None:
                _c.cas_writer_free(self._w)
                self._w = None

    def _pack(self, b, out, cap):
        blen = _c_size_t()
        key = ctypes.create_string_buffer(_KEY_BUF)
        with self._lock:
            if self._w is None:
                raise ValueError("Packer is closed")
            rc = _c.cas_pack(self._w, b.addr, b.size, out, cap, _byref(blen), key)
        if rc == _NEED_OUTPUT:
            raise ValueError("output buffer too small: %d bytes, the blob needs up to %d (cas_h.pack_bound)"
                             % (cap, _c.cas_pack_bound(self._fmt, b.size)))
        if rc < 0:
            _raise(rc, "Could not pack artifact: %s" % strerror(rc))
        return key.value.decode(), blen.value

    def pack(self, data):
        """(key, blob bytes). A raw packer returns data itself as the blob when
        it is bytes (raw blobs are the bytes as is)."""
        with _Buffer(data) as b:
            if self._fmt == RAW:
                key = ctypes.create_string_buffer(_KEY_BUF)
                rc = _c.cas_hash(self._algo, b.addr, b.size, key)
                if rc < 0:
                    _raise(rc)
                return key.value.decode(), data if type(data) is bytes else ctypes.string_at(b.addr, b.size)
            cap = _c.cas_pack_bound(self._fmt, b.size)
            # scratch from malloc: pages past the blob's end are never touched
            out = _lib.malloc(cap or 1)
            if not out:
                raise MemoryError("cannot allocate %d bytes for the blob" % cap)
            try:
                key, n = self._pack(b, out, cap)
                return key, ctypes.string_at(out, n)
            finally:
                _lib.free(out)

    def pack_into(self, data, out):
        """Packs into a writable buffer of at least pack_bound(len) bytes:
        (key, blob length)."""
        with _Buffer(data) as b, _Buffer(out, writable=True) as o:
            return self._pack(b, o.addr, o.size)

    def bound(self, n):
        """The largest blob n bytes can become in this format."""
        return _c.cas_pack_bound(self._fmt, n)


_PARAM_NAMES = {_PARAM_HASH: "algo", _PARAM_THREADS: "threads", _PARAM_LEVEL: "level",
                _PARAM_LZ4_BLOCK: "lz4_block", _PARAM_LIMIT: "limit", _PARAM_STRICT: "strict",
                _PARAM_FORMAT: "version", _PARAM_FSYNC: "fsync", _PARAM_VERIFY: "verify",
                _PARAM_GZIP_BACKEND: "gzip_backend", _PARAM_EXPECT_SIZE: "expect_size"}

_tls = threading.local()


def _packer(fmt):
    d = getattr(_tls, "packers", None)
    if d is None:
        d = _tls.packers = {}
    p = d.get(fmt)
    if p is None:
        p = d[fmt] = Packer(2 if fmt == V2 else 1, fmt == RAW)
    return p


# Small artifacts (config dicts, flags, counters) are most of what a step saves,
# and for them ctypes' per-call cost is the whole price: the module-level
# pack/unpack take one C call each through per-thread scratch buffers.
_SMALL = 64 << 10


class _Scratch(object):
    """Per-thread buffers and objects of the small fast path. Kept in _tls with
    the thread's Packers and Unpacker, so that clearing _tls drops all of them
    together and no C pointer outlives the object that owns it."""

    def __init__(self):
        cap = _c.cas_pack_bound(V1, _SMALL) + 1024
        self.buf = ctypes.create_string_buffer(cap)
        self.view = memoryview(self.buf).cast("B")
        self.addr = ctypes.addressof(self.buf)
        self.cap = cap
        self.n = _c_size_t()
        self.key = ctypes.create_string_buffer(_KEY_BUF)
        self.packers = {}  # version -> this thread's Packer
        self.unpacker = None


def _scratch():
    sc = _tls.__dict__.get("scratch")
    if sc is None:
        sc = _tls.scratch = _Scratch()
    return sc

# The sidecars Metaflow writes, pre-encoded (json.dumps costs more than the
# decode of a small blob); keyed by (cas_raw, cas_version): equal values give
# the same answer under Metaflow's rules, whatever their JSON spelling.
_META_JSON = {(r, v): json.dumps({"cas_raw": r, "cas_version": v}).encode()
              for r, v in ((False, 1), (False, 2), (True, 1))}


_cas_pack = _c.cas_pack
_LZ4_MAGIC = b"\x04\x22\x4d\x18"
_cas_reader_decode = _c.cas_reader_decode


def pack(data, version=1, raw=False):
    """(key, blob): the SHA-1 key of data and the blob Metaflow would store.
    version=1 gzip (default), version=2 LZ4 frame, raw=True as is."""
    if type(data) is bytes and len(data) <= _SMALL and not raw:
        sc = _scratch()
        p = sc.packers.get(version)
        if p is None and (version == 1 or version == 2):
            p = sc.packers[version] = _packer(version)
        if p is not None and p._w is not None and \
                _cas_pack(p._w, data, len(data), sc.addr, sc.cap, sc.n, sc.key) == _OK:
            return sc.key.value.decode(), sc.view[:sc.n.value].tobytes()
    return _packer(_format(version, raw)).pack(data)


def pack_into(data, out, version=1, raw=False):
    """Packs into a writable buffer: (key, blob length). pack_bound() sizes it."""
    return _packer(_format(version, raw)).pack_into(data, out)


def compress(data, version=1, level=0):
    """The blob alone, without hashing: gzip (version 1, level 3 unless
    given, mtime 0) or an LZ4 frame (version 2). For callers that already
    know the key; pack() computes both at once."""
    codec = _CODEC[_format(version)]
    if type(data) is bytes and len(data) <= _SMALL and not level:
        sc = _scratch()  # one C call into this thread's scratch buffer
        if _c.cas_encode(codec, 0, data, len(data), sc.addr, sc.cap, sc.n) == _OK:
            return sc.view[:sc.n.value].tobytes()
    with _Buffer(data) as b:
        cap = _c.cas_encode_bound(codec, b.size)
        out = _lib.malloc(cap or 1)
        if not out:
            raise MemoryError("cannot allocate %d bytes for the blob" % cap)
        try:
            n = _c_size_t()
            rc = _c.cas_encode(codec, level or 0, b.addr, b.size, out, cap, _byref(n))
            if rc != _OK:
                _raise(rc if rc < 0 else -3, "Could not pack artifact: %s" % strerror(rc))
            return ctypes.string_at(out, n.value)
        finally:
            _lib.free(out)


_CODEC = {V1: 2, V2: 3}  # CAS_CODEC_GZIP, CAS_CODEC_LZ4


def pack_bound(n, version=1, raw=False):
    """The largest blob n bytes can become."""
    return _c.cas_pack_bound(_format(version, raw), n)


# ---- reading -------------------------------------------------------------------

# Neither gzip (~1032:1) nor LZ4 (~255:1) expands more than this; a size hint
# beyond it is a lie and is not used to allocate.
_MAX_RATIO = 1100


class Unpacker(_Closing):
    """Blob (+ its sidecar) to bytes, reusing one C reader.

    meta: the sidecar as a dict, JSON str or bytes, or None when the blob has
    none (then Metaflow's legacy rule applies: gzip). name: what messages call
    the blob (Metaflow uses the store-relative path "Flow/data/ab/abcd..").
    key: verify that the bytes hash to it. limit: the most bytes a blob may
    decode to (0 = none). One thread at a time (a lock serializes)."""

    def __init__(self, limit=0, strict=False):
        self._lock = threading.Lock()
        self._r = None
        r = _c_void_p()
        rc = _c.cas_reader_create(_byref(r), _ALLOC)
        if rc < 0:
            _raise(rc)
        self._r = r
        self._expect = None  # the expect_size the C reader holds (a sticky parameter)
        self._limit = limit or 0
        for param, value in ((_PARAM_LIMIT, limit), (_PARAM_STRICT, strict)):
            if value:
                rc = _c.cas_reader_set_param(r, param, int(value))
                if rc < 0:
                    self.close()
                    _raise(rc, "Unpacker: bad value %r for %s" % (value, _PARAM_NAMES[param]))

    def close(self):
        with self._lock:
            if self._r is not None:
                _c.cas_reader_free(self._r)
                self._r = None

    def _begin(self, meta, name, key, expect_size):
        r = self._r
        if r is None:
            raise ValueError("Unpacker is closed")
        self._expect = expect_size
        _c.cas_reader_set_param(r, _PARAM_EXPECT_SIZE, -1 if expect_size is None else int(expect_size))
        mb = _meta_bytes(meta)
        rc = _c.cas_reader_begin(r, mb, len(mb) if mb is not None else 0,
                                 None if name is None else _name(name),
                                 None if key is None else _name(key, "key"))
        if rc < 0:
            self._fail(rc)
        return r

    def _fail(self, rc):
        _raise(rc, _text(_c.cas_reader_message(self._r)))

    def size_hint(self, blob, meta=None):
        """What the blob says it decodes to (LZ4 content size, gzip length
        field), or None. Never trusted by the decoder."""
        size = _c_uint64()
        with self._lock, _Buffer(blob) as b:
            r = self._begin(meta, None, None, None)
            if _c.cas_reader_format(r) == RAW:
                return b.size
            rc = _c.cas_reader_size_hint(r, b.addr, b.size, _byref(size))
        return size.value if rc == _OK else None

    def unpack(self, blob, meta=None, name=None, key=None, expect_size=None):
        """The decoded bytes, as a bytes object.

        When the blob states its decoded size (gzip's length field, LZ4's
        content size) C decodes straight into the bytes object returned: no
        second copy. Otherwise C decodes into its own buffer and the bytes are
        copied out once."""
        with self._lock, _Buffer(blob) as b:
            r = self._begin(meta, name, key, expect_size)
            fmt = _c.cas_reader_format(r)
            if fmt == RAW and type(blob) is bytes and key is None and expect_size is None and not self._limit:
                return blob  # the bytes as stored, already a bytes object
            size = _c_uint64()
            n = _c_size_t()
            if expect_size is not None:
                hint = int(expect_size)
            elif fmt == RAW:
                hint = b.size
            elif _c.cas_reader_size_hint(r, b.addr, b.size, _byref(size)) == _OK:
                hint = size.value
            else:
                hint = -1
            if 0 <= hint <= _MAX_RATIO * b.size + 65536 and not (self._limit and hint > self._limit):
                out, addr = _new_bytes(hint)
                rc = _c.cas_reader_unpack_into(r, b.addr, b.size, addr, hint, _byref(n))
                if rc == _OK:
                    return out if n.value == hint else out[:n.value]
                if rc != _NEED_OUTPUT:
                    self._fail(rc)
                del out
                self._begin(meta, name, key, expect_size)  # the hint lied: start over
            p = _c_void_p()
            rc = _c.cas_reader_unpack(r, b.addr, b.size, _byref(p), _byref(n))
            try:
                if rc < 0:
                    self._fail(rc)
                return ctypes.string_at(p, n.value) if n.value else b""
            finally:
                if p.value:
                    _c.cas_reader_free_buffer(r, p)

    def unpack_into(self, blob, out, meta=None, name=None, key=None, expect_size=None):
        """Decodes into a writable buffer; returns the decoded length. Raises
        ValueError when the buffer is too small (size_hint() tells the size
        most blobs decode to)."""
        n = _c_size_t()
        with self._lock, _Buffer(blob) as b, _Buffer(out, writable=True) as o:
            r = self._begin(meta, name, key, expect_size)
            rc = _c.cas_reader_unpack_into(r, b.addr, b.size, o.addr, o.size, _byref(n))
            if rc == _NEED_OUTPUT:
                raise ValueError("output buffer of %d bytes is too small for the decoded blob" % o.size)
            if rc < 0:
                self._fail(rc)
        return n.value


def _unpacker():
    u = getattr(_tls, "unpacker", None)
    if u is None:
        u = _tls.unpacker = Unpacker()
    return u


def unpack(blob, meta=None, name=None, key=None, expect_size=None):
    """Decoded bytes of a blob. meta: its sidecar (dict, JSON str/bytes) or None
    for a blob without one (Metaflow's legacy rule: gzip). key: verify."""
    # Into the scratch buffer at once when the output likely fits: a blob that
    # does not fit costs a partial decode, cheap for LZ4 (~3 us for the scratch
    # size), not for gzip, so larger gzip blobs take the size-hinted path.
    if type(blob) is bytes and expect_size is None and \
            (len(blob) <= 16384 or (len(blob) <= _SMALL and blob[:4] == _LZ4_MAGIC)):
        sc = _scratch()
        u = sc.unpacker
        if u is None:
            u = sc.unpacker = _unpacker()
        r = u._r
        if u._expect is not None:  # left by a slow-path call that checked a size
            _c.cas_reader_set_param(r, _PARAM_EXPECT_SIZE, -1)
            u._expect = None
        mb = None
        if type(meta) is dict and len(meta) == 2:
            mb = _META_JSON.get((meta.get("cas_raw"), meta.get("cas_version")))
        if mb is None:
            mb = _meta_bytes(meta)
        rc = _cas_reader_decode(r, mb, len(mb) if mb is not None else 0, None if name is None else _name(name),
                                None if key is None else _name(key, "key"), blob, len(blob), sc.addr, sc.cap, sc.n)
        if rc == _OK:
            return sc.view[:sc.n.value].tobytes()
        if rc != _NEED_OUTPUT:
            u._fail(rc)
    return _unpacker().unpack(blob, meta, name, key, expect_size)


def unpack_into(blob, out, meta=None, name=None, key=None, expect_size=None):
    """Decodes into a writable buffer; returns the length."""
    return _unpacker().unpack_into(blob, out, meta, name, key, expect_size)


def size_hint(blob, meta=None):
    """The decoded size the blob states, or None."""
    return _unpacker().size_hint(blob, meta)


# ---- streaming readers ---------------------------------------------------------


class Reader(io.RawIOBase):
    """A decoded blob as a read-only binary file: read(n), readinto(b),
    readall(), iteration by lines, context manager. Memory stays bounded (the
    codec's window) whatever the blob's size. read(n) returns n bytes unless
    the blob ends first. One thread at a time (a lock serializes)."""

    def __init__(self):
        io.RawIOBase.__init__(self)
        self._lock = threading.Lock()
        self._eof = False
        self.expected_size = None

    def readable(self):
        return True

    def _fill(self, addr, cap):
        """Fills [addr, addr+cap) unless the blob ends first; returns the count."""
        total = 0
        with self._lock:
            self._checkClosed()
            while total < cap and not self._eof:
                got = self._chunk(addr + total, cap - total)
                if got == 0:
                    self._eof = True
                total += got
        return total

    def readinto(self, b):
        with _Buffer(b, writable=True) as o:
            return self._fill(o.addr, o.size)

    def read(self, n=-1):
        if n is None or n < 0:
            return self.readall()
        if n == 0:
            self._checkClosed()
            return b""
        out, addr = _new_bytes(n)
        got = self._fill(addr, n)
        return out if got == n else out[:got]

    def readall(self):
        if self.expected_size is not None and not self._eof:
            # the size is known: one buffer, no joins; one more read proves the end
            out = self.read(self.expected_size)
            tail = self.read(65536)
            return out + tail + self.readall() if tail else out
        parts = []
        while True:
            part = self.read(_CHUNK)
            if not part:
                break
            parts.append(part)
        return b"".join(parts)

    def preview(self, json=False, **limits):
        """The value of the pickle this reader decodes, from where it stands:
        text, or a JSON tree (see cas_h.preview). Reads only what it needs."""
        return self._preview(json, limits, "blob")

    def _preview(self, as_json, limits, what):
        failure = []

        def pull(user, buf, cap, got):
            try:
                got[0] = self._fill(buf, cap)
                return 0
            except Exception as e:  # a Python error cannot cross C: it is re-raised below
                failure.append(e)
                return _E_IO

        fn = _lib._preview_read_fn(pull)
        try:
            return _preview(lambda p: _c.cas_preview_run(p, fn, None), as_json, limits, what)
        except CasError as e:
            if failure:  # the blob's own error (its codec's words), with the preview so far
                failure[0].partial = getattr(e, "partial", None)
                raise failure[0]
            raise

    def close(self):
        if not self.closed:
            with self._lock:
                self._release()
        io.RawIOBase.close(self)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class _StreamReader(Reader):
    """cas_stream: a blob read from a file by C, 64 KiB at a time."""

    def __init__(self, st, expected_size=None):
        Reader.__init__(self)
        self._st = st
        if expected_size is not None and expected_size >= 0:
            self.expected_size = expected_size
            _c.cas_stream_set_param(st, _PARAM_EXPECT_SIZE, expected_size)

    def _chunk(self, addr, cap):
        got = _c_size_t()
        rc = _c.cas_stream_read(self._st, addr, cap, _byref(got))
        if rc < 0:
            _raise(rc, _text(_c.cas_stream_message(self._st)))
        return got.value

    def _release(self):
        if self._st is not None:
            _c.cas_stream_close(self._st)
            self._st = None

    def _preview(self, as_json, limits, what):
        with self._lock:  # C reads the stream itself: no Python between the chunks
            self._checkClosed()
            return _preview(lambda p: _c.cas_stream_preview(self._st, p), as_json, limits, what)

    @property
    def format(self):
        """V1, V2, RAW or LEGACY: how the blob was framed."""
        return _c.cas_stream_format(self._st) if self._st is not None else None

    @property
    def stored_size(self):
        """Bytes on disk."""
        return _c.cas_stream_stored_size(self._st) if self._st is not None else None


class _FileReader(Reader):
    """A blob read from any Python binary file object (a local file, an S3
    body, a socket), decoded piece by piece by a C reader."""

    def __init__(self, f, meta, name=None, key=None, limit=0, expected_size=None, close_file=False):
        Reader.__init__(self)
        self._f = f
        self._close_file = close_file
        self._u = Unpacker(limit=limit)
        self._u._begin(meta, name, key, expected_size)
        if expected_size is not None:
            self.expected_size = expected_size
        self._inbuf = ctypes.create_string_buffer(_CHUNK)
        self._inaddr = ctypes.addressof(self._inbuf)
        self._hold = None  # a bytes chunk from f.read(), when f has no readinto
        self._cur = self._inaddr
        self._len = self._pos = 0
        self._in_eof = False

    def _refill(self):
        readinto = getattr(self._f, "readinto", None)
        if readinto is not None:
            n = readinto(memoryview(self._inbuf))
            self._cur = self._inaddr
        else:
            chunk = self._f.read(_CHUNK)
            n = len(chunk)
            self._hold = chunk
            self._cur = ctypes.cast(ctypes.c_char_p(chunk), _c_void_p).value if n else self._inaddr
        self._len, self._pos = n or 0, 0
        if not n:
            self._in_eof = True

    def _chunk(self, addr, cap):
        r = self._u._r
        used, made = _c_size_t(), _c_size_t()
        while True:
            if self._pos == self._len and not self._in_eof:
                self._refill()
            rc = _c.cas_reader_update(r, self._cur + self._pos, self._len - self._pos, _byref(used), addr, cap,
                                      _byref(made), 1 if self._in_eof else 0)
            self._pos += used.value
            if rc < 0:
                _raise(rc, _text(_c.cas_reader_message(r)))
            if made.value or rc == _OK:
                return made.value

    def _release(self):
        if self._u is not None:
            self._u.close()
            self._u = None
        if self._close_file and self._f is not None:
            self._f.close()
        self._f = None


_NO_META = object()


def open_blob(src, meta=_NO_META, name=None, key=None, limit=0, expected_size=None):
    """A Reader over one blob.

    src: a path (its sidecar is path + "_meta" when meta is not given, as in a
    local Metaflow datastore) or a binary file object (then pass meta: the
    sidecar dict/JSON, or None for a blob without one). key: verify on read
    (the check happens when the end is reached). limit: the most bytes it
    may decode to."""
    if isinstance(src, (str, bytes, os.PathLike)) and meta is _NO_META:
        st = _c_void_p()
        err = _err_buf()
        _check_store(_c.cas_stream_open_file(_byref(st), os.fsencode(src), None if key is None else _name(key, "key"),
                                             limit or 0, _ALLOC, err, _ERR_CAP), err)
        return _StreamReader(st, expected_size)
    if meta is _NO_META:
        raise TypeError("open_blob(fileobj) needs meta= (the sidecar dict, or None for a blob without one)")
    if isinstance(src, (str, bytes, os.PathLike)):
        return _FileReader(open(src, "rb"), meta, name, key, limit, expected_size, close_file=True)
    return _FileReader(src, meta, name, key, limit, expected_size)


def head(src, n=4096, meta=_NO_META, name=None):
    """The first n decoded bytes of a blob of any size (a path or a binary file
    object, as open_blob), decoding no further than needed."""
    with open_blob(src, meta, name) as f:
        return f.read(n)


# ---- previews: an artifact's value, read from its pickle without unpickling ------

_E_LIMIT, _E_IO = -8, -17
_PREVIEW_LIMITS = {"max_bytes": 1, "items": 2, "depth": 3, "max_memo": 4, "max_read": 5, "max_ops": 6,
                   "max_values": 7}
_PREVIEW_JSON = 8


def _preview(run, as_json, limits, what):
    """Runs run(p) on a fresh cas_preview with the limits set; the text or the JSON tree."""
    p = _c_void_p()
    if _c.cas_preview_create(_byref(p), _ALLOC) < 0:
        raise MemoryError("out of memory")
    try:
        for k, v in limits.items():
            if k not in _PREVIEW_LIMITS:
                raise TypeError("preview() got an unexpected keyword argument %r" % k)
            if v is not None and _c.cas_preview_set_param(p, _PREVIEW_LIMITS[k], int(v)) < 0:
                raise errors.InvalidArgument("%s=%r is out of range" % (k, v), -2)  # CAS_E_ARG
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


def preview_pickle(data, json=False, **limits):
    """The value of a pickle (bytes-like: the decoded artifact), as repr-like
    text or, with json=True, a JSON tree (dicts and lists). Nothing is
    unpickled or imported. Limits: max_bytes (of text, 4096), items (per
    container, 10), depth (8), max_read (decoded bytes), max_ops, max_memo,
    max_values; a limit reached leaves a partial preview with markers ('...',
    '<truncated: ...>'). A malformed pickle raises a DecodeError whose
    .partial holds what came before the fault."""
    with _Buffer(data) as b:
        return _preview(lambda p: _c.cas_preview_bytes(p, b.addr, b.size), json, limits, "pickle")


def preview(src, spec=None, meta=_NO_META, name=None, json=False, key=None, **limits):
    """An artifact's value without unpickling it: repr-like text, or with
    json=True a JSON tree. Reads no more of the blob than the preview needs
    (a numpy array: its first values; a DataFrame: the whole stream, skipped
    in bounded memory). Nothing is imported: numpy, pandas and the flow's
    classes are not needed.

      cas_h.preview("path/.metaflow/Flow/data/ab/ab12...")  # a blob file (its sidecar beside it)
      cas_h.preview(fileobj, meta={"cas_version": 2, ...})  # a blob in a binary file object
      cas_h.preview(store, "Flow/12/train/3/model")         # a task's artifact
      cas_h.preview(store, "Flow", key="ab12...")           # a blob of the store

    Limits and errors as preview_pickle. (preview(src, n) with a number n,
    the 0.1.0 call, still returns the first n decoded bytes: that is head().)"""
    if isinstance(src, Store):
        if meta is not _NO_META or name is not None:
            raise TypeError("preview(store, ...) takes no meta or name")
        if not isinstance(spec, str):
            raise TypeError("preview(store, 'Flow/run/step/task/name') or preview(store, 'Flow', key=KEY)")
        if key is not None:
            return src.preview(spec, key, json=json, **limits)
        if spec.count("/") != 4:
            raise InvalidName("%r is not Flow/run/step/task/name" % spec, -15)
        pathspec, art = spec.rsplit("/", 1)
        return src.preview_artifact(pathspec, art, json=json, **limits)
    if spec is None and "n" in limits:  # 0.1.0's keyword
        spec = limits.pop("n")
    if spec is not None:
        import warnings

        warnings.warn("cas_h.preview(src, n) returns the first n bytes as in 0.1.0; call cas_h.head(src, n)",
                      DeprecationWarning, stacklevel=2)
        return head(src, spec, meta, name)
    what = name or (os.fsdecode(src) if isinstance(src, (str, bytes, os.PathLike)) else "blob")
    with open_blob(src, meta, name) as reader:
        return reader._preview(json, limits, what)


# ---- the store -----------------------------------------------------------------

BlobStat = collections.namedtuple("BlobStat", "format stored_size")
BlobStat.__doc__ = "format: V1, V2, RAW or LEGACY (format_name() names it); stored_size: bytes on disk"
Artifact = collections.namedtuple("Artifact", "name key size encoding type")
Artifact.__doc__ = "One artifact of a task: size is the pickled size (-1 if unknown)"


class Task(object):
    """A task's latest attempt: its artifacts by name, as data.json lists them."""

    def __init__(self, pathspec, flow, attempt, artifacts):
        self.pathspec, self.flow, self.attempt = pathspec, flow, attempt
        self.artifacts = collections.OrderedDict((a.name, a) for a in artifacts)

    def __getitem__(self, name):
        try:
            return self.artifacts[name]
        except KeyError:
            raise NotFound("No artifact '%s' in task '%s'" % (name, self.pathspec), -16) from None

    def __contains__(self, name):
        return name in self.artifacts

    def __iter__(self):
        return iter(self.artifacts.values())

    def __len__(self):
        return len(self.artifacts)

    def __repr__(self):
        return "Task(%r, attempt=%d, %d artifacts)" % (self.pathspec, self.attempt, len(self.artifacts))


class _Handle(object):
    """A C object shared by threads: calls in flight keep it alive; close()
    frees it once the last one returns, and refuses new calls."""

    def __init__(self, ptr, free, what):
        self._ptr, self._free, self._what = ptr, free, what
        self._users = 0
        self._closing = False
        self._mu = threading.Lock()

    def __enter__(self):
        with self._mu:
            if self._closing:
                raise ValueError("%s is closed" % self._what)
            self._users += 1
            return self._ptr

    def __exit__(self, *exc):
        with self._mu:
            self._users -= 1
            if self._closing and not self._users:
                self._do_free()

    def _do_free(self):
        if self._ptr is not None:
            self._free(self._ptr)
            self._ptr = None

    def close(self):
        with self._mu:
            self._closing = True
            if not self._users:
                self._do_free()

    @property
    def closed(self):
        return self._closing


class Store(_Closing):
    """A Metaflow datastore root, read and written as Metaflow does: a local
    `.metaflow` directory (<root>/<Flow>/data/<ab>/<key> + <key>_meta), or an
    object store, "s3://bucket/prefix" (the same keys, the sidecar as the
    object's user metadata). root=None takes the root Metaflow would use: its
    configuration (METAFLOW_DEFAULT_DATASTORE, METAFLOW_DATASTORE_SYSROOT_S3 /
    _LOCAL, from the environment or ~/.metaflowconfig), else the nearest
    .metaflow above the working directory.

    version: what put() writes by default, 1 (gzip, every Metaflow reads it)
    or 2 (LZ4 frame, readers need Metaflow PR #3090 or cas.h); raw=True stores
    bytes as is. verify: every read rehashes against the key. fsync: durable
    puts. limit: the most bytes a blob may decode to. Settings are fixed here;
    after that the store may be shared by any number of threads."""

    def __init__(self, root=None, version=1, raw=False, verify=False, fsync=False, level=None, limit=0, strict=False,
                 lz4_block=None, algo=SHA1):
        self._h = None
        s = _c_void_p()
        err = _err_buf()
        croot = None if root is None else _name(os.fspath(root), "root")
        if croot is not None and b"://" not in croot and not os.path.isdir(croot):
            try:  # a new datastore, as Metaflow makes .metaflow on its first save
                os.makedirs(croot, exist_ok=True)
            except OSError as e:
                raise errors.CasIOError("Cannot create the datastore root '%s': %s" % (os.fsdecode(croot), e.strerror),
                                        -17) from None
        _check_store(_c.cas_store_open(_byref(s), croot, _ALLOC, err, _ERR_CAP), err)
        self._h = _Handle(s, _c.cas_store_close, "Store")
        self.root = os.fspath(root) if root is not None else _c.cas_store_root(s).decode()
        settings = ((_PARAM_FORMAT, _format(version, raw)), (_PARAM_VERIFY, int(bool(verify))),
                    (_PARAM_FSYNC, int(bool(fsync))), (_PARAM_LEVEL, level), (_PARAM_LIMIT, limit or None),
                    (_PARAM_STRICT, int(bool(strict))), (_PARAM_LZ4_BLOCK, lz4_block), (_PARAM_HASH, algo))
        for param, value in settings:
            if value is None:
                continue
            rc = _c.cas_store_set_param(s, param, value)
            if rc < 0:
                self.close()
                _raise(rc, "Store: bad value %r for %s: %s" % (value, _PARAM_NAMES[param], strerror(rc)))

    def close(self):
        """Frees the C store once calls in flight return. Readers opened from
        it stay usable."""
        if self._h is not None:
            self._h.close()

    @property
    def closed(self):
        return self._h is None or self._h.closed

    def __repr__(self):
        return "Store(%r)" % self.root

    @staticmethod
    def _fmt_arg(version, raw):
        return 0 if version is None and not raw else _format(version, raw)

    def blob_name(self, flow, key):
        """The store-relative path "Flow/data/ab/abcd..." messages use."""
        buf = ctypes.create_string_buffer(512)
        rc = _c.cas_store_blob_name(_name(flow, "flow"), _name(key, "key"), buf, 512)
        if rc < 0:
            _raise(rc)
        return buf.value.decode()

    def put(self, flow, data, version=None, raw=False):
        """Stores bytes (any contiguous buffer) in flow; returns the key. An
        existing key writes nothing. version/raw override the store's default."""
        key = ctypes.create_string_buffer(_KEY_BUF)
        err = _err_buf()
        with self._h as s, _Buffer(data) as b:
            rc = _c.cas_store_put(s, _name(flow, "flow"), b.addr, b.size, self._fmt_arg(version, raw), key, None,
                                  err, _ERR_CAP)
        _check_store(rc, err)
        return key.value.decode()

    def put_file(self, flow, src, version=None, raw=False):
        """Stores a file's contents, streaming (memory bounded): src is a path,
        a file object with fileno(), or a file descriptor. Returns the key."""
        key = ctypes.create_string_buffer(_KEY_BUF)
        err = _err_buf()
        own = None
        if isinstance(src, (str, bytes, os.PathLike)):
            own = open(src, "rb")
            fd = own.fileno()
        elif isinstance(src, int):
            fd = src
        else:
            fd = src.fileno()
        try:
            with self._h as s:
                rc = _c.cas_store_put_fd(s, _name(flow, "flow"), fd, self._fmt_arg(version, raw), key, None, err,
                                         _ERR_CAP)
        finally:
            if own is not None:
                own.close()
        _check_store(rc, err)
        return key.value.decode()

    def exists(self, flow, key):
        with self._h as s:
            rc = _c.cas_store_exists(s, _name(flow, "flow"), _name(key, "key"))
        if rc == -15:
            raise InvalidName("Invalid flow name '%s'" % flow, rc)
        if rc == -14:
            raise InvalidKey("Invalid key '%s'" % key, rc)
        if rc < 0:
            _raise(rc)
        return rc == 1

    def get(self, flow, key):
        """The decoded bytes of a blob."""
        p, n = _c_void_p(), _c_size_t()
        err = _err_buf()
        with self._h as s:
            rc = _c.cas_store_get(s, _name(flow, "flow"), _name(key, "key"), _byref(p), _byref(n), err, _ERR_CAP)
            try:
                _check_store(rc, err)
                return ctypes.string_at(p, n.value) if n.value else b""
            finally:
                if p.value:
                    _c.cas_store_free_buffer(s, p)

    def stat(self, flow, key):
        """BlobStat(format, stored_size) without decoding."""
        fmt, size = _c_int(), _c_uint64()
        err = _err_buf()
        with self._h as s:
            rc = _c.cas_store_stat(s, _name(flow, "flow"), _name(key, "key"), _byref(fmt), _byref(size), err,
                                   _ERR_CAP)
        _check_store(rc, err)
        return BlobStat(fmt.value, size.value)

    def verify(self, flow, key):
        """Decodes the blob and rehashes it against its key; returns the decoded
        size, raises HashMismatch (or the decoding error) when it is bad."""
        size = _c_uint64()
        err = _err_buf()
        with self._h as s:
            rc = _c.cas_store_verify(s, _name(flow, "flow"), _name(key, "key"), _byref(size), err, _ERR_CAP)
        _check_store(rc, err)
        return size.value

    def keys(self, flow):
        """Every key stored for flow."""
        p, n = _c_void_p(), _c_size_t()
        err = _err_buf()
        with self._h as s:
            rc = _c.cas_store_keys(s, _name(flow, "flow"), _byref(p), _byref(n), err, _ERR_CAP)
            try:
                _check_store(rc, err)
                raw = ctypes.string_at(p, n.value * _KEY_BUF) if n.value else b""
            finally:
                if p.value:
                    _c.cas_store_free_buffer(s, p)
        return [raw[i * _KEY_BUF:(i + 1) * _KEY_BUF].split(b"\0", 1)[0].decode() for i in range(n.value)]

    def flows(self):
        """The flows in the store."""
        p, n = _c_void_p(), _c_size_t()
        err = _err_buf()
        with self._h as s:
            rc = _c.cas_store_flows(s, _byref(p), _byref(n), err, _ERR_CAP)
            try:
                _check_store(rc, err)
                names = []
                at = p.value
                for _ in range(n.value):
                    name = ctypes.string_at(at)
                    names.append(name.decode())
                    at += len(name) + 1
            finally:
                if p.value:
                    _c.cas_store_free_buffer(s, p)
        return names

    def put_many(self, flow, items, version=None, raw=False, threads=0):
        """Stores many buffers at once on C threads (threads=0: 2); returns
        their keys in order. Raises the first failure."""
        bufs = []
        try:
            for d in items:
                bufs.append(_Buffer(d))
            count = len(bufs)
            if not count:
                return []
            ptrs = (_c_void_p * count)(*[b.addr for b in bufs])
            sizes = (_c_size_t * count)(*[b.size for b in bufs])
            keys = ctypes.create_string_buffer(_KEY_BUF * count)
            err = _err_buf()
            with self._h as s:
                rc = _c.cas_store_put_batch(s, _name(flow, "flow"), count, ptrs, sizes, self._fmt_arg(version, raw),
                                            keys, None, threads, err, _ERR_CAP)
        finally:
            for b in bufs:
                b.release()
        _check_store(rc, err)
        raw_keys = keys.raw
        return [raw_keys[i * _KEY_BUF:(i + 1) * _KEY_BUF].split(b"\0", 1)[0].decode() for i in range(count)]

    def get_many(self, flow, keys, threads=0):
        """Decoded bytes of many blobs, read on C threads (threads=0: 2), in
        the order of keys. Raises the first failure."""
        keys = list(keys)
        count = len(keys)
        if not count:
            return []
        karr = (ctypes.c_char_p * count)(*[_name(k, "key") for k in keys])
        outs = (_c_void_p * count)()
        lens = (_c_size_t * count)()
        err = _err_buf()
        with self._h as s:
            rc = _c.cas_store_get_batch(s, _name(flow, "flow"), count, karr, outs, lens, None, threads, err,
                                        _ERR_CAP)
            try:
                _check_store(rc, err)
                return [ctypes.string_at(outs[i], lens[i]) if lens[i] else b"" for i in range(count)]
            finally:
                for i in range(count):
                    if outs[i]:
                        _c.cas_store_free_buffer(s, outs[i])

    def open(self, flow, key, expected_size=None):
        """A Reader decoding the blob piece by piece (memory bounded). It stays
        usable after the store is closed."""
        st = _c_void_p()
        err = _err_buf()
        with self._h as s:
            rc = _c.cas_store_open_stream(s, _name(flow, "flow"), _name(key, "key"), _byref(st), err, _ERR_CAP)
        _check_store(rc, err)
        return _StreamReader(st, expected_size)

    # ---- tasks ----

    def task(self, pathspec):
        """Task("Flow/run/step/task"): its latest attempt and artifacts."""
        t = _c_void_p()
        err = _err_buf()
        with self._h as s:
            rc = _c.cas_task_open(s, _name(pathspec, "pathspec"), _byref(t), err, _ERR_CAP)
        _check_store(rc, err)
        try:
            arts = []
            name, key, enc, typ = ctypes.c_char_p(), ctypes.c_char_p(), ctypes.c_char_p(), ctypes.c_char_p()
            size = _c_int64()
            for i in range(_c.cas_task_count(t)):
                if _c.cas_task_artifact(t, i, _byref(name), _byref(key), _byref(size), _byref(enc), _byref(typ)) < 0:
                    continue
                arts.append(Artifact(_text(name.value), _text(key.value), size.value, _text(enc.value),
                                     _text(typ.value)))
            return Task(pathspec, _text(_c.cas_task_flow(t)), _c.cas_task_attempt(t), arts)
        finally:
            _c.cas_task_close(t)

    def _resolve(self, pathspec, name):
        task = self.task(pathspec)
        return task, task[name]

    def artifact(self, pathspec, name):
        """The bytes (the pickle) of artifact `name` of task "Flow/run/step/task".
        Checks the decoded length against the size data.json records."""
        task, art = self._resolve(pathspec, name)
        if art.size < 0:
            return self.get(task.flow, art.key)
        with self.open(task.flow, art.key, expected_size=art.size) as f:
            return f.readall()

    def preview(self, flow, key, json=False, **limits):
        """The value of blob `key` (a pickle) without unpickling it; see cas_h.preview."""
        err = _err_buf()
        fk = (_name(flow, "flow"), _name(key, "key"))

        def run(p):
            with self._h as s:
                rc = _c.cas_store_preview(s, fk[0], fk[1], p, err, _ERR_CAP)
            if rc < 0 and not ctypes.string_at(_c.cas_preview_text(p, None), 1).strip(b"\0"):
                _check_store(rc, err)  # the blob could not be opened: no preview at all
            return rc

        return _preview(run, json, limits, "blob %s of flow %s" % (key, flow))

    def preview_artifact(self, pathspec, name, json=False, **limits):
        """The value of artifact `name` of task "Flow/run/step/task", without unpickling it."""
        task, art = self._resolve(pathspec, name)
        return self.preview(task.flow, art.key, json=json, **limits)

    def open_artifact(self, pathspec, name):
        """A Reader over artifact `name` of task "Flow/run/step/task"."""
        task, art = self._resolve(pathspec, name)
        return self.open(task.flow, art.key, expected_size=art.size if art.size >= 0 else None)
