"""Bytes to key + blob and back: hashing, packing, unpacking, one blob or many in
one C call."""

from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union, cast  # noqa: F401

import ctypes
import os
import threading

from . import _lib
from ._lib import Buffer as _Buffer, Closing as _Closing, OwnedBytes as _OwnedBytes, lib as _c, new_bytes as _new_bytes
from ._core import (LEGACY, RAW, SHA1, V1, V2, _KEY_BUF, _NEED_OUTPUT, _OK, _PARAM_EXPECT_SIZE, _PARAM_FORMAT,
                    _PARAM_FSYNC, _PARAM_GZIP_BACKEND, _PARAM_HASH, _PARAM_LEVEL, _PARAM_LIMIT, _PARAM_LZ4_BLOCK,
                    _PARAM_STRICT, _PARAM_THREADS, _PARAM_VERIFY, SIDECAR_JSON, SIDECARS, _alloc, _byref, _c_int,
                    _c_size_t, _c_uint64, _c_void_p, _format, _meta_bytes, _name, _raise, _text, meta_format, sidecar,
                    strerror)


def hash_available(algo: int) -> bool:
    """True if libcas was built with this key algorithm: SHA-1 always, XXH3
    when xxhash.h was found (otherwise hash_key raises Unsupported)."""
    return bool(_c.cas_hash_available(algo))


def hash_key(data: Any, algo: int = SHA1) -> str:
    """The key of some bytes: lowercase hex SHA-1 (Metaflow's) or XXH3-128."""
    key = _fast.hash(algo, data)
    if type(key) is str:
        return key
    if key is not None:
        _lib.fail(key)
    key = ctypes.create_string_buffer(_KEY_BUF)
    with _Buffer(data) as b:
        _c.cas_hash(algo, b.addr, b.size, key)
    return key.value.decode()


class Packer(_Closing):
    """Bytes to key + blob, reusing one C writer (its tables and buffers).

    version 1 (gzip, the default: every Metaflow reads it) or 2 (LZ4 frame,
    Metaflow PR #3090), or raw=True. level: gzip 1-9 (default 3, Metaflow's),
    LZ4 1-12 (default 1). threads=2 hashes on a second thread while the first
    compresses (inputs of 256 KiB and more). gzip_backend: "auto" (the fastest
    compiled in, the default), "zlib" (byte-identical to CPython's gzip at the
    same level, mtime 0) or "isal". One thread at a time (a lock serializes
    concurrent use)."""

    def __init__(self, version: int = 1, raw: bool = False, level: Optional[int] = None,
                 lz4_block: Optional[int] = None, threads: int = 2, algo: int = SHA1,
                 gzip_backend: Optional[str] = None) -> None:
        self._fmt = _format(version, raw)
        self._algo = algo
        self._lock = threading.Lock()
        self._w = None
        w = _c_void_p()
        _c.cas_writer_create(_byref(w), self._fmt, _alloc())
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
    def format(self) -> int:
        return self._fmt

    @property
    def meta(self) -> Dict[str, Any]:
        """The sidecar dict for what this packer writes."""
        return sidecar(2 if self._fmt == V2 else 1, self._fmt == RAW)

    def close(self) -> None:
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

    def pack(self, data: Any) -> Tuple[str, bytes]:
        """(key, blob bytes). A raw packer returns data itself as the blob when
        it is bytes (raw blobs are the bytes as is)."""
        with _Buffer(data) as b:
            if self._fmt == RAW:
                kbuf = ctypes.create_string_buffer(_KEY_BUF)
                _c.cas_hash(self._algo, b.addr, b.size, kbuf)
                return kbuf.value.decode(), data if type(data) is bytes else ctypes.string_at(b.addr, b.size)
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

    def pack_into(self, data: Any, out: Any) -> Tuple[str, int]:
        """Packs into a writable buffer of at least pack_bound(len) bytes:
        (key, blob length)."""
        with _Buffer(data) as b, _Buffer(out, writable=True) as o:
            return self._pack(b, o.addr, o.size)

    def bound(self, n: int) -> int:
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
# and for them a call's own cost is more than the work: the module-level
# pack/unpack/compress/hash_key are one call each, on this thread's own Packer /
# Unpacker, of cas_h's speedups (_speedups.c, a CPython extension) or, without
# them, of the same calls through ctypes (slower per call, small bytes only).
# Either answers None for what it leaves to the general path below.
_fast = _lib.speedups or _lib.CtypesCalls((V1, V2), _KEY_BUF)


def _kept(slot, key, make):
    """This thread's make() for key, kept in the dict _tls.<slot> (the fast paths read
    it there directly; clearing _tls drops each C pointer with the object owning it)."""
    d = _tls.__dict__.setdefault(slot, {})
    v = d.get(key)
    if v is None:
        v = d[key] = make()
    return v


def _writer_entry(version):
    fmt = _format(version)
    p = _packer(fmt)
    return p, p._w.value, fmt


def _fast_writer(version):
    """(Packer, its cas_writer *, format) of this thread for version 1 or 2."""
    return _kept("writers", version, lambda: _writer_entry(version))


def pack(data: Any, version: int = 1, raw: bool = False) -> Tuple[str, bytes]:
    """(key, blob): the SHA-1 key of data and the blob Metaflow would store.
    version=1 gzip (default), version=2 LZ4 frame, raw=True as is."""
    if not raw and (version == 1 or version == 2):
        try:
            _, w, fmt = _tls.writers[version]
        except (AttributeError, KeyError):  # this thread's first pack of that version
            _, w, fmt = _fast_writer(version)
        out = _fast.pack(w, fmt, data)
        if type(out) is tuple:
            return cast(Tuple[str, bytes], out)
        # a failure: the Packer's own path words it
    return _packer(_format(version, raw)).pack(data)


def pack_into(data: Any, out: Any, version: int = 1, raw: bool = False) -> Tuple[str, int]:
    """Packs into a writable buffer: (key, blob length). pack_bound() sizes it."""
    return _packer(_format(version, raw)).pack_into(data, out)


class _Encoder(_Closing):
    """A codec's encoder at one level, kept per thread for compress(): making one
    per call cost more than encoding a small artifact."""

    __slots__ = ("_c", "addr", "codec")

    def __init__(self, version, level):
        self._c = None
        self.codec = _c.cas_format_codec(_format(version))  # the codec the format's blobs are in, as C says
        c = _c_void_p()
        rc = _c.cas_encoder_create(_byref(c), self.codec, _alloc())
        if rc == _OK and level:
            rc = _c.cas_codec_set_param(c, _PARAM_LEVEL, level)
        if rc != _OK:
            if c.value:
                _c.cas_codec_free(c)
            _raise(rc, "Could not pack artifact: %s" % strerror(rc))
        self._c, self.addr = c, c.value

    def close(self):
        if self._c is not None:
            _c.cas_codec_free(self._c)
            self._c = None


def _fast_encoder(version, level):
    """This thread's _Encoder for (version, level)."""
    return _kept("encoders", (version, level), lambda: _Encoder(version, level))


def compress(data: Any, version: int = 1, level: int = 0) -> bytes:
    """The blob alone, without hashing: gzip (version 1, level 3 unless
    given, mtime 0) or an LZ4 frame (version 2). For callers that already
    know the key; pack() computes both at once."""
    level = level or 0
    try:
        enc = _tls.encoders[version, level]
    except (AttributeError, KeyError):  # this thread's first compress at that version and level
        enc = _fast_encoder(version, level)
    out = _fast.encode(enc.addr, enc.codec, data)
    if type(out) is bytes:
        return out
    if out is not None and out < 0:
        _raise(out, "Could not pack artifact: %s" % strerror(out))
    codec = enc.codec
    with _Buffer(data) as b:
        cap = _c.cas_encode_bound(codec, b.size)
        out = _lib.malloc(cap or 1)
        if not out:
            raise MemoryError("cannot allocate %d bytes for the blob" % cap)
        try:
            n = _c_size_t()
            rc = _c.cas_codec_encode_all(enc._c, b.addr, b.size, out, cap, _byref(n))
            if rc != _OK:
                _raise(rc if rc < 0 else -3, "Could not pack artifact: %s" % strerror(rc))
            return ctypes.string_at(out, n.value)
        finally:
            _lib.free(out)


def pack_bound(n: int, version: int = 1, raw: bool = False) -> int:
    """The largest blob n bytes can become."""
    return _c.cas_pack_bound(_format(version, raw), n)


# ---- reading -------------------------------------------------------------------

class Unpacker(_Closing):
    """Blob (+ its sidecar) to bytes, reusing one C reader.

    meta: the sidecar as a dict, JSON str or bytes, or None when the blob has
    none (then Metaflow's legacy rule applies: gzip). name: what messages call
    the blob (Metaflow uses the store-relative path "Flow/data/ab/abcd..").
    key: verify that the bytes hash to it. limit: the most bytes a blob may
    decode to (0 = none). One thread at a time (a lock serializes)."""

    def __init__(self, limit: int = 0, strict: bool = False) -> None:
        self._lock = threading.Lock()
        self._r = None
        r = _c_void_p()
        _c.cas_reader_create(_byref(r), _alloc())
        self._r = r
        self._expect = None  # the expect_size the C reader holds (a sticky parameter)
        self._limit = limit or 0
        for param, value in ((_PARAM_LIMIT, limit), (_PARAM_STRICT, strict)):
            if value:
                rc = _c.cas_reader_set_param(r, param, int(value))
                if rc < 0:
                    self.close()
                    _raise(rc, "Unpacker: bad value %r for %s" % (value, _PARAM_NAMES[param]))

    def close(self) -> None:
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
        mb = _sidecar_bytes(meta)
        _c.cas_reader_begin(r, mb, len(mb) if mb is not None else 0, None if name is None else _name(name),
                            None if key is None else _name(key, "key"))
        return r

    def _fail(self, rc):
        _raise(rc, _text(_c.cas_reader_message(self._r)))

    def size_hint(self, blob: Any, meta: Any = None) -> Optional[int]:
        """What the blob says it decodes to (LZ4 content size, gzip length
        field), or None. Never trusted by the decoder."""
        size = _c_uint64()
        with self._lock, _Buffer(blob) as b:
            r = self._begin(meta, None, None, None)
            if _c.cas_reader_format(r) == RAW:
                return b.size
            rc = _c.cas_reader_size_hint(r, b.addr, b.size, _byref(size))
        return size.value if rc == _OK else None

    def unpack(self, blob: Any, meta: Any = None, name: Optional[str] = None, key: Optional[str] = None,
               expect_size: Optional[int] = None) -> bytes:
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
            if fmt == RAW:
                hint = b.size
            elif _c.cas_reader_size_hint(r, b.addr, b.size, _byref(size)) == _OK:
                hint = size.value  # a size these bytes can decode to: C refuses any other
            else:
                hint = -1
            if 0 <= hint and not (self._limit and hint > self._limit):
                out, addr = _new_bytes(hint)
                if _c.cas_reader_unpack_into(r, b.addr, b.size, addr, hint, _byref(n)) == _OK:
                    return out if n.value == hint else out[:n.value]
                del out  # CAS_NEED_OUTPUT
                self._begin(meta, name, key, expect_size)  # the hint lied: start over
            p = _c_void_p()
            _c.cas_reader_unpack(r, b.addr, b.size, _byref(p), _byref(n))  # on failure it allocates nothing
            try:
                return ctypes.string_at(p, n.value) if n.value else b""
            finally:
                if p.value:
                    _c.cas_reader_free_buffer(r, p)

    def unpack_into(self, blob: Any, out: Any, meta: Any = None, name: Optional[str] = None,
                    key: Optional[str] = None, expect_size: Optional[int] = None) -> int:
        """Decodes into a writable buffer; returns the decoded length. Raises
        ValueError when the buffer is too small (size_hint() tells the size
        most blobs decode to)."""
        n = _c_size_t()
        with self._lock, _Buffer(blob) as b, _Buffer(out, writable=True) as o:
            r = self._begin(meta, name, key, expect_size)
            if _c.cas_reader_unpack_into(r, b.addr, b.size, o.addr, o.size, _byref(n)) == _NEED_OUTPUT:
                raise ValueError("output buffer of %d bytes is too small for the decoded blob" % o.size)
        return n.value


def _unpacker():
    u = getattr(_tls, "unpacker", None)
    if u is None:
        u = _tls.unpacker = Unpacker()
    return u


# The sidecars Metaflow writes, pre-encoded (json.dumps costs more than the
# decode of a small blob); keyed by (cas_raw, cas_version): equal values give
# the same answer under Metaflow's rules, whatever their JSON spelling.
_META_JSON = {(m["cas_raw"], m["cas_version"]): SIDECAR_JSON[f] for f, m in SIDECARS.items()}


def _sidecar_bytes(meta):
    if type(meta) is dict and len(meta) == 2:
        mb = _META_JSON.get((meta.get("cas_raw"), meta.get("cas_version")))
        if mb is not None:
            return mb
    return _meta_bytes(meta)


def _fast_reader():
    """(Unpacker, its cas_reader *) of this thread, kept in _tls.reader beside the
    Unpacker that owns the pointer."""
    r = _tls.__dict__.get("reader")
    if r is None:
        u = _unpacker()
        r = _tls.reader = (u, u._r.value)
    return r


def unpack(blob: Any, meta: Any = None, name: Optional[str] = None, key: Optional[str] = None,
           expect_size: Optional[int] = None) -> bytes:
    """Decoded bytes of a blob. meta: its sidecar (dict, JSON str/bytes) or None
    for a blob without one (Metaflow's legacy rule: gzip). key: verify."""
    if expect_size is None:
        mb = _sidecar_bytes(meta)
        try:
            u, r = _tls.reader
        except AttributeError:  # this thread's first unpack
            u, r = _fast_reader()
        if u._expect is not None:  # left by an Unpacker call that checked a size
            _c.cas_reader_set_param(u._r, _PARAM_EXPECT_SIZE, -1)
            u._expect = None
        out = _fast.unpack(r, mb, blob, None if name is None else _name(name),
                           None if key is None else _name(key, "key"))
        if type(out) is bytes:
            return out
        if out is not None and out != _NEED_OUTPUT:
            u._fail(out)
        # a blob that decodes to more than it states, or states nothing and is large: the growing path
    return _unpacker().unpack(blob, meta, name, key, expect_size)


def unpack_into(blob: Any, out: Any, meta: Any = None, name: Optional[str] = None, key: Optional[str] = None,
                expect_size: Optional[int] = None) -> int:
    """Decodes into a writable buffer; returns the length."""
    return _unpacker().unpack_into(blob, out, meta, name, key, expect_size)


# ---- many blobs in one C call ----------------------------------------------------

# Outputs up to this size share one buffer and are sliced out of it (a copy costs
# less than a call per item); larger ones get a bytes object each, filled in place.
_ARENA_ITEM = 64 << 10


def _bytes_array(blobs):
    """C's view of a list of bytes: (char *[n], size_t[n]); no copies."""
    n = len(blobs)
    return (ctypes.c_char_p * n)(*blobs), (_c_size_t * n)(*map(len, blobs))


def _outputs(sizes):
    """Room for n outputs: (void *[n], size_t[n] capacities, fetch(i, length))."""
    n = len(sizes)
    outs, caps = (_c_void_p * n)(), (_c_size_t * n)(*sizes)
    own = {}
    small = sum(z for z in sizes if z <= _ARENA_ITEM)
    arena, base = _new_bytes(small) if small else (b"", 0)
    offsets = [0] * n
    off = 0
    for i, z in enumerate(sizes):
        if z > _ARENA_ITEM:  # cut to its length in place when fetched (a blob written into its bound)
            own[i] = _OwnedBytes(z)
            outs[i] = own[i].addr
        else:
            outs[i], offsets[i] = base + off, off
            off += z

    def fetch(i, length):
        if i in own:
            return own.pop(i).take(length)
        return arena[offsets[i]:offsets[i] + length]

    return outs, caps, fetch


def _keys_of(buf, n):
    text = buf.raw.decode("ascii")
    return [text[i * _KEY_BUF:i * _KEY_BUF + _KEY_BUF].split("\0", 1)[0] for i in range(n)]


def pack_many(blobs: Iterable[Any], version: int = 1, raw: bool = False, keys: bool = True, compress: bool = True,
              threads: int = 0) -> Tuple[Optional[List[str]], Optional[List[bytes]]]:
    """Keys and blobs of many artifacts in one C call over `threads` threads (0:
    two): what pack() does to each, the same keys and bytes. blobs: a list of
    bytes. Returns (keys, blobs), either None when not asked for (keys=False:
    compression alone, for artifacts whose keys are known; compress=False: keys
    alone). A single large artifact hashes beside its compression, as pack() does."""
    if not keys and not compress:
        raise ValueError("pack_many: nothing asked for (keys=False, compress=False)")
    fmt = _format(version, raw)
    blobs = [b if type(b) is bytes else bytes(b) for b in blobs]
    n = len(blobs)
    if not n:
        return ([] if keys else None), ([] if compress else None)
    ins, lens = _bytes_array(blobs)
    kbuf = ctypes.create_string_buffer(n * _KEY_BUF) if keys else None
    status = (_c_int * n)()
    outs: Any
    caps: Any
    made: Any
    fetch: Any
    if compress:
        bound = _c.cas_pack_bound
        outs, caps, fetch = _outputs([bound(fmt, len(b)) for b in blobs])
        made = (_c_size_t * n)()
    else:
        outs = caps = made = fetch = None
    rc = _c.cas_pack_many(fmt, SHA1, n, ins, lens, outs, caps, made, kbuf, status, int(threads))
    if rc != _OK:
        i = next((j for j in range(n) if status[j] != _OK), None)
        if i is None:  # the call itself failed (no item ran)
            _raise(rc if rc < 0 else -3, "Could not pack %d artifacts: %s" % (n, strerror(rc)))
        _raise(status[i] if status[i] < 0 else -3, "Could not pack artifact %d of %d: %s" % (i, n, strerror(status[i])))
    return (_keys_of(kbuf, n) if keys else None), ([fetch(i, made[i]) for i in range(n)] if compress else None)


# a truthy cas_raw decides alone (Metaflow's rule), whatever the version beside it
_FORMAT_OF_META = {(m["cas_raw"], m["cas_version"]): f for f, m in SIDECARS.items()}
_FORMAT_OF_META.update({(True, v): RAW for _, v in list(_FORMAT_OF_META)})


def _format_of(meta):
    if meta is None:
        return LEGACY
    if type(meta) is int:
        if meta in (V1, V2, RAW, LEGACY):
            return meta
        raise ValueError("not a blob format: %r" % (meta,))
    if type(meta) is dict and len(meta) == 2:
        f = _FORMAT_OF_META.get((meta.get("cas_raw"), meta.get("cas_version")))
        if f is not None:
            return f
    return meta_format(meta)


class _ManyIn(_Closing):
    """C's view of many blobs: bytes as they are, any other buffer (an mmap of a
    blob file, a bytearray) held by its address without a copy until close()."""

    __slots__ = ("held", "n", "fmts", "ins", "lens")

    def __init__(self, blobs, metas):
        self.held = []
        n = self.n = len(blobs)
        if len(metas) != n:
            raise ValueError("%d blobs, %d metas" % (n, len(metas)))
        self.fmts = (_c_int * n)(*[_format_of(m) for m in metas])
        views = [b if type(b) is bytes else self._hold(b) for b in blobs]
        self.ins = (ctypes.c_char_p * n)(*[b if type(b) is bytes else b.addr for b in views])
        self.lens = (_c_size_t * n)(*[len(b) if type(b) is bytes else b.size for b in views])

    def _hold(self, b):
        view = _Buffer(b)
        self.held.append(view)
        return view

    def close(self):
        while self.held:
            self.held.pop().release()


def _stated(fmts, ins, lens, n, threads):
    status, sizes = (_c_int * n)(), (_c_size_t * n)()
    _c.cas_unpack_many(n, fmts, ins, lens, None, None, sizes, None, status, int(threads))
    # C states no size a blob of that length cannot decode to (a corrupt field)
    return [sizes[i] if status[i] == _OK or (status[i] == _NEED_OUTPUT and sizes[i]) else None for i in range(n)]


_LZ4_MAGIC = b"\x04\x22\x4d\x18"


def unpack_v2_fd(fd: int, head: Optional[bytes] = None, most: int = 1 << 30) -> Optional[bytes]:
    """The bytes of a cas_version 2 blob file (fd, read from its start), decoded
    straight into them (cas_unpack_v2_fd: stored blocks read into place, no
    mapping); None when the frame states no content size (or more than most
    bytes), is not a plain frame, or fails: take the general path then, which
    words any error. head: the file's first bytes, if already read."""
    size = _v2_content_size(fd, head, most)
    if size is None:
        return None
    out, addr = _new_bytes(size)
    got = _c_size_t()
    if _c.cas_unpack_v2_fd(fd, addr, size, _byref(got)) != 0 or got.value != size:
        return None
    return out


def _v2_content_size(fd, head, most):
    """The content size an LZ4 frame's header states, or None (none, over most)."""
    if head is None or len(head) < 14:
        head = os.pread(fd, 14, 0)
    if head[:4] != _LZ4_MAGIC or len(head) < 14 or not head[4] & 8:
        return None
    size = int.from_bytes(head[6:14], "little")
    return size if size <= most else None


def unpack_v2_fd_many(fds: Sequence[int], heads: Optional[Sequence[Optional[bytes]]] = None, most: int = 1 << 30,
                      threads: int = 0) -> List[Optional[bytes]]:
    """unpack_v2_fd of many files in one C call on `threads` threads (0: two):
    a list, None where unpack_v2_fd would give None. heads: each file's first
    bytes, if already read. Decoded bytes are allocated up front, so keep a
    call's total (what the frames state, each at most `most`) bounded."""
    n = len(fds)
    heads = heads if heads is not None else [None] * n
    sizes = [_v2_content_size(fd, head, most) for fd, head in zip(fds, heads)]
    todo = [i for i in range(n) if sizes[i] is not None]
    res: List[Optional[bytes]] = [None] * n
    if not todo:
        return res
    k = len(todo)
    outs = [_new_bytes(sizes[i]) for i in todo]
    c_fds = (ctypes.c_int * k)(*[fds[i] for i in todo])
    dsts = (ctypes.c_void_p * k)(*[addr for _, addr in outs])
    caps = (_c_size_t * k)(*[sizes[i] for i in todo])
    got, st = (_c_size_t * k)(), (ctypes.c_int * k)()
    _c.cas_unpack_v2_fd_many(k, c_fds, dsts, caps, got, st, threads)
    for j, i in enumerate(todo):
        if st[j] == 0 and got[j] == sizes[i]:
            res[i] = outs[j][0]
    return res


def decoded_sizes(blobs: Sequence[Any], metas: Sequence[Any], threads: int = 0) -> List[Optional[int]]:
    """What each blob says it decodes to (gzip's length field, an LZ4 frame's
    content size, a raw blob's own length), or None where it says nothing (or a
    size its length cannot hold). One C call; nothing is decoded. For sizing a
    batch before unpack_many(..., sizes=)."""
    with _ManyIn(blobs, metas) as m:
        return _stated(m.fmts, m.ins, m.lens, m.n, threads) if m.n else []


def unpack_many(blobs: Sequence[Any], metas: Sequence[Any], keys: Optional[Sequence[str]] = None, threads: int = 0,
                sizes: Optional[Sequence[Optional[int]]] = None) -> List[bytes]:
    """The decoded bytes of many blobs in one C call over `threads` threads (0:
    two), in order: what unpack() gives each. metas: each blob's sidecar (dict,
    JSON, None for none) or format (V1, V2, RAW, LEGACY). keys: when given, each
    blob must decode to bytes with that key. sizes: decoded_sizes()'s answer, if
    the caller has it. A blob that fails raises what unpack() raises for it (the
    first such blob in order), with no name: callers that name blobs redo that
    one with unpack(..., name=...). blobs: bytes, or buffers (an mmap of a blob
    file, a bytearray) C reads in place."""
    with _ManyIn(blobs, metas) as m:
        n, fmts = m.n, m.fmts
        if keys is not None and len(keys) != n:
            raise ValueError("%d blobs, %d keys" % (n, len(keys)))
        if not n:
            return []
        if sizes is None:
            sizes = _stated(fmts, m.ins, m.lens, n, threads)
        karr = None if keys is None else (ctypes.c_char_p * n)(*[_name(k, "key") for k in keys])
        # no stated size: 0 room makes the item come back CAS_NEED_OUTPUT, and unpack() answers for it alone
        outs, caps, fetch = _outputs([z or 0 for z in sizes])
        status, made = (_c_int * n)(), (_c_size_t * n)()
        if _c.cas_unpack_many(n, fmts, m.ins, m.lens, outs, caps, made, karr, status, int(threads)) == _OK:
            return [fetch(i, made[i]) for i in range(n)]
    # a size the blob stated was wrong, or a blob is bad: those alone again, for their own answer or error
    return [fetch(i, made[i]) if status[i] == _OK else
            unpack(blobs[i], _FORMAT_META.get(fmts[i]), key=None if keys is None else keys[i])
            for i in range(n)]


_FORMAT_META = SIDECARS


def size_hint(blob: Any, meta: Any = None) -> Optional[int]:
    """The decoded size the blob states, or None."""
    return _unpacker().size_hint(blob, meta)
