"""File-like readers of blobs: decoded a window at a time, memory bounded."""

from typing import TYPE_CHECKING, Any, Optional

import ctypes
import io
import os
import threading

from . import _lib
from ._lib import Buffer as _Buffer, lib as _c, new_bytes as _new_bytes
from ._core import (_CHUNK, _ERR_CAP, _E_IO, _OK, _PARAM_EXPECT_SIZE, _alloc, _byref, _c_size_t, _c_void_p,
                    _err_buf, _name, _preview)
from .codec import Unpacker
from .errors import CasError


# ---- streaming readers ---------------------------------------------------------


class Reader(io.RawIOBase):
    """A decoded blob as a read-only binary file: read(n), readinto(b),
    readall(), iteration by lines, context manager. Memory stays bounded (the
    codec's window) whatever the blob's size. read(n) returns n bytes unless
    the blob ends first. One thread at a time (a lock serializes)."""

    def __init__(self) -> None:
        io.RawIOBase.__init__(self)
        self._lock = threading.Lock()
        self._eof = False
        self.expected_size = None

    def readable(self) -> bool:
        return True

    if TYPE_CHECKING:  # each kind of reader has its own; declared for type checkers only
        def _chunk(self, addr: int, cap: int) -> int: ...

        def _release(self) -> None: ...

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

    def readinto(self, b: Any) -> int:
        with _Buffer(b, writable=True) as o:
            return self._fill(o.addr, o.size)

    def read(self, n: Optional[int] = -1) -> bytes:
        if n is None or n < 0:
            return self.readall()
        if n == 0:
            self._checkClosed()
            return b""
        out, addr = _new_bytes(n)
        got = self._fill(addr, n)
        return out if got == n else out[:got]

    def readall(self) -> bytes:
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

    def preview(self, json: bool = False, **limits: Optional[int]) -> Any:
        """The value of the pickle this reader decodes, from where it stands:
        text, or a JSON tree (see cas_h.preview). Reads only what it needs."""
        return self._preview(json, limits, "blob")

    def _preview(self, as_json, limits, what, encoding=None):
        """encoding: data.json's; another serializer's bytes are named, never parsed."""
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
            if encoding is not None and not _c.cas_encoding_is_pickle(encoding.encode()):
                return _preview(lambda p: _c.cas_preview_encoded(p, encoding.encode(), -1, fn, None), as_json,
                                limits, what)
            return _preview(lambda p: _c.cas_preview_run(p, fn, None), as_json, limits, what)
        except CasError as e:
            if failure:  # the blob's own error (its codec's words), with the preview so far
                failure[0].partial = getattr(e, "partial", None)
                raise failure[0]
            raise

    def close(self) -> None:
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
        _c.cas_stream_read(self._st, addr, cap, _byref(got))
        return got.value

    def _release(self):
        if self._st is not None:
            _c.cas_stream_close(self._st)
            self._st = None

    def _preview(self, as_json, limits, what, encoding=None):
        if encoding is not None and not _c.cas_encoding_is_pickle(encoding.encode()):
            return Reader._preview(self, as_json, limits, what, encoding)  # its first bytes only
        with self._lock:  # C reads the stream itself: no Python between the chunks
            self._checkClosed()
            return _preview(lambda p: _c.cas_stream_preview(self._st, p), as_json, limits, what)

    @property
    def format(self) -> Optional[int]:
        """V1, V2, RAW or LEGACY: how the blob was framed."""
        return _c.cas_stream_format(self._st) if self._st is not None else None

    @property
    def stored_size(self) -> Optional[int]:
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


def open_blob(src: Any, meta: Any = _NO_META, name: Optional[str] = None, key: Optional[str] = None, limit: int = 0,
              expected_size: Optional[int] = None) -> Reader:
    """A Reader over one blob.

    src: a path (its sidecar is path + "_meta" when meta is not given, as in a
    local Metaflow datastore) or a binary file object (then pass meta: the
    sidecar dict/JSON, or None for a blob without one). key: verify on read
    (the check happens when the end is reached). limit: the most bytes it
    may decode to."""
    if isinstance(src, (str, bytes, os.PathLike)) and meta is _NO_META:
        st = _c_void_p()
        err = _err_buf()
        _c.cas_stream_open_file(_byref(st), os.fsencode(src), None if key is None else _name(key, "key"), limit or 0,
                                _alloc(), err, _ERR_CAP)
        return _StreamReader(st, expected_size)
    if meta is _NO_META:
        raise TypeError("open_blob(fileobj) needs meta= (the sidecar dict, or None for a blob without one)")
    if isinstance(src, (str, bytes, os.PathLike)):
        return _FileReader(open(src, "rb"), meta, name, key, limit, expected_size, close_file=True)
    return _FileReader(src, meta, name, key, limit, expected_size)


def head(src: Any, n: int = 4096, meta: Any = _NO_META, name: Optional[str] = None) -> bytes:
    """The first n decoded bytes of a blob of any size (a path or a binary file
    object, as open_blob), decoding no further than needed."""
    with open_blob(src, meta, name) as f:
        return f.read(n)
