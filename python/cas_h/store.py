"""A Metaflow datastore root, local or in an object store: blobs, batches,
streams and tasks."""

from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union, cast  # noqa: F401

import collections
import ctypes
import json as _json
import os
import threading

from . import _constants as C, _lib, errors
from ._lib import Buffer as _Buffer, Closing as _Closing, lib as _c
from ._core import (SHA1, _ERR_CAP, _KEY_BUF, _PARAM_FORMAT, _PARAM_FSYNC, _PARAM_HASH, _PARAM_LEVEL,
                    _PARAM_LIMIT, _PARAM_LZ4_BLOCK, _PARAM_STRICT, _PARAM_VERIFY, _alloc, _byref, _c_int, _c_int64,
                    _c_size_t, _c_uint64, _c_void_p, _check_store, _err_buf, _format, _name, _preview, _raise, _text,
                    strerror)
from .codec import _PARAM_NAMES
from .errors import InvalidKey, InvalidName, NotFound
from .streams import _StreamReader


# ---- the store -----------------------------------------------------------------

BlobStat = collections.namedtuple("BlobStat", "format stored_size")
BlobStat.__doc__ = "format: V1, V2, RAW or LEGACY (format_name() names it); stored_size: bytes on disk"
Artifact = collections.namedtuple("Artifact", "name key size encoding type")
Artifact.__doc__ = "One artifact of a task: size is the pickled size (-1 if unknown)"
FileEntry = collections.namedtuple("FileEntry", "name is_dir size mtime other")
FileEntry.__doc__ = ("An entry of a store folder: size in bytes (0 for a folder), mtime in seconds (0 if unknown), "
                     "other: a symbolic link or special file, which the store never follows")
Run = collections.namedtuple("Run", "pathspec id started finished user tags system_tags")
Run.__doc__ = ("A run: started in seconds since the epoch (None if unknown), finished (its end step is done), "
               "user (None if unknown), tags and system_tags (lists) from Metaflow's local metadata")
Step = collections.namedtuple("Step", "pathspec name tasks")
Step.__doc__ = "A step of a run, with its task count"
TaskInfo = collections.namedtuple("TaskInfo", "pathspec id attempt done")
TaskInfo.__doc__ = "A task of a step: the attempt Metaflow reads (-1 if none is done)"


def _is_part(e):
    """A run's, step's or task's folder (the library's rule: cas_part_check)."""
    return e.is_dir and _c.cas_part_check(e.name.encode()) == C.CAS_OK


class Task(object):
    """A task's latest attempt: its artifacts by name, as data.json lists them."""

    def __init__(self, pathspec: str, flow: str, attempt: int, artifacts: Iterable[Artifact]) -> None:
        self.pathspec, self.flow, self.attempt = pathspec, flow, attempt
        self.artifacts = collections.OrderedDict((a.name, a) for a in artifacts)

    def __getitem__(self, name: str) -> Artifact:
        try:
            return self.artifacts[name]
        except KeyError:
            raise NotFound("No artifact '%s' in task '%s'" % (name, self.pathspec), C.CAS_E_NOTFOUND) from None

    def __contains__(self, name: object) -> bool:
        return name in self.artifacts

    def __iter__(self) -> Iterator[Artifact]:
        return iter(self.artifacts.values())

    def __len__(self) -> int:
        return len(self.artifacts)

    def __repr__(self) -> str:
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
    object store, "s3://bucket/prefix" or "azure://container/prefix" (the same
    keys, the sidecar as the object's user metadata). root=None takes the root
    Metaflow would use: its configuration (METAFLOW_DEFAULT_DATASTORE,
    METAFLOW_DATASTORE_SYSROOT_S3 / _AZURE / _LOCAL, from the environment or ~/.metaflowconfig), else the nearest
    .metaflow above the working directory.

    version: what put() writes by default, 1 (gzip, every Metaflow reads it)
    or 2 (LZ4 frame, readers need Metaflow PR #3090 or cas.h); raw=True stores
    bytes as is. verify: every read rehashes against the key (None: only on an
    object store, whose answers are never trusted). fsync: durable
    puts. limit: the most bytes a blob may decode to. Settings are fixed here;
    after that the store may be shared by any number of threads."""

    def __init__(self, root: Optional[Union[str, bytes, os.PathLike]] = None, version: int = 1,
                 raw: bool = False, verify: Optional[bool] = None, fsync: bool = False, level: Optional[int] = None,
                 limit: int = 0, strict: bool = False, lz4_block: Optional[int] = None, algo: int = SHA1) -> None:
        self._h: _Handle = cast(_Handle, None)  # None until the C store is open (close() and closed allow it)
        s = _c_void_p()
        err = _err_buf()
        croot = None if root is None else _name(os.fspath(root), "root")
        if croot is not None and b"://" not in croot and not os.path.isdir(croot):
            try:  # a new datastore, as Metaflow makes .metaflow on its first save
                os.makedirs(croot, exist_ok=True)
            except OSError as e:
                raise errors.CasIOError("Cannot create the datastore root '%s': %s" % (os.fsdecode(croot), e.strerror),
                                        C.CAS_E_IO) from None
        _c.cas_store_open(_byref(s), croot, _alloc(), err, _ERR_CAP)
        self._h = _Handle(s, _c.cas_store_close, "Store")
        self.root = os.fspath(root) if root is not None else _c.cas_store_root(s).decode()
        settings = ((_PARAM_FORMAT, _format(version, raw)),
                    (_PARAM_VERIFY, None if verify is None else int(bool(verify))),
                    (_PARAM_FSYNC, int(bool(fsync))), (_PARAM_LEVEL, level), (_PARAM_LIMIT, limit or None),
                    (_PARAM_STRICT, int(bool(strict))), (_PARAM_LZ4_BLOCK, lz4_block), (_PARAM_HASH, algo))
        for param, value in settings:
            if value is None:
                continue
            rc = _c.cas_store_set_param(s, param, value)
            if rc < 0:
                self.close()
                _raise(rc, "Store: bad value %r for %s: %s" % (value, _PARAM_NAMES[param], strerror(rc)))

    def close(self) -> None:
        """Frees the C store once calls in flight return. Readers opened from
        it stay usable."""
        if self._h is not None:
            self._h.close()

    @property
    def closed(self) -> bool:
        return self._h is None or self._h.closed

    def __repr__(self) -> str:
        return "Store(%r)" % self.root

    @staticmethod
    def _fmt_arg(version, raw):
        return 0 if version is None and not raw else _format(version, raw)

    def blob_name(self, flow: str, key: str) -> str:
        """The store-relative path "Flow/data/ab/abcd..." messages use."""
        buf = ctypes.create_string_buffer(512)
        _c.cas_store_blob_name(_name(flow, "flow"), _name(key, "key"), buf, 512)
        return buf.value.decode()

    def put(self, flow: str, data: Any, version: Optional[int] = None, raw: bool = False) -> str:
        """Stores bytes (any contiguous buffer) in flow; returns the key. An
        existing key writes nothing. version/raw override the store's default."""
        key = ctypes.create_string_buffer(_KEY_BUF)
        err = _err_buf()
        with self._h as s, _Buffer(data) as b:
            _c.cas_store_put(s, _name(flow, "flow"), b.addr, b.size, self._fmt_arg(version, raw), key, None, err,
                             _ERR_CAP)
        return key.value.decode()

    def put_file(self, flow: str, src: Any, version: Optional[int] = None, raw: bool = False) -> str:
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
                _c.cas_store_put_fd(s, _name(flow, "flow"), fd, self._fmt_arg(version, raw), key, None, err, _ERR_CAP)
        finally:
            if own is not None:
                own.close()
        return key.value.decode()

    def exists(self, flow: str, key: str) -> bool:
        with self._h as s:
            rc = _c.cas_store_exists(s, _name(flow, "flow"), _name(key, "key"))
        if rc == C.CAS_E_NAME:
            raise InvalidName("Invalid flow name '%s'" % flow, rc)
        if rc == C.CAS_E_KEY:
            raise InvalidKey("Invalid key '%s'" % key, rc)
        if rc < 0:
            _raise(rc)
        return rc == 1

    def get(self, flow: str, key: str) -> bytes:
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

    def stat(self, flow: str, key: str) -> BlobStat:
        """BlobStat(format, stored_size) without decoding."""
        fmt, size = _c_int(), _c_uint64()
        err = _err_buf()
        with self._h as s:
            _c.cas_store_stat(s, _name(flow, "flow"), _name(key, "key"), _byref(fmt), _byref(size), err, _ERR_CAP)
        return BlobStat(fmt.value, size.value)

    def verify(self, flow: str, key: str) -> int:
        """Decodes the blob and rehashes it against its key; returns the decoded
        size, raises HashMismatch (or the decoding error) when it is bad."""
        size = _c_uint64()
        err = _err_buf()
        with self._h as s:
            _c.cas_store_verify(s, _name(flow, "flow"), _name(key, "key"), _byref(size), err, _ERR_CAP)
        return size.value

    def keys(self, flow: str) -> List[str]:
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

    def flows(self) -> List[str]:
        """The flows in the store."""
        p, n = _c_void_p(), _c_size_t()
        err = _err_buf()
        with self._h as s:
            rc = _c.cas_store_flows(s, _byref(p), _byref(n), err, _ERR_CAP)
            try:
                _check_store(rc, err)
                names = []
                at = cast(int, p.value)
                for _ in range(n.value):
                    name = ctypes.string_at(at)
                    names.append(name.decode())
                    at += len(name) + 1
            finally:
                if p.value:
                    _c.cas_store_free_buffer(s, p)
        return names

    def put_many(self, flow: str, items: Any, version: Optional[int] = None, raw: bool = False,
                 threads: int = 0) -> List[str]:
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
                _c.cas_store_put_batch(s, _name(flow, "flow"), count, ptrs, sizes, self._fmt_arg(version, raw), keys,
                                       None, threads, err, _ERR_CAP)
        finally:
            for b in bufs:
                b.release()
        raw_keys = keys.raw
        return [raw_keys[i * _KEY_BUF:(i + 1) * _KEY_BUF].split(b"\0", 1)[0].decode() for i in range(count)]

    def get_many(self, flow: str, keys: List[str], threads: int = 0) -> List[bytes]:
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
                return [ctypes.string_at(cast(int, outs[i]), lens[i]) if lens[i] else b"" for i in range(count)]
            finally:
                for i in range(count):
                    if outs[i]:
                        _c.cas_store_free_buffer(s, outs[i])

    # ---- the datastore's other objects (data.json, markers, logs) ----

    def file_exists(self, name: str) -> bool:
        """Whether the object "Flow/12/start/3/0.DONE.lock" (store-relative) exists."""
        err = _err_buf()
        with self._h as s:
            return _c.cas_store_file_exists(s, _name(name, "name"), err, _ERR_CAP) == 1

    def file_get(self, name: str, max_bytes: int = 0) -> Tuple[bytes, Optional[str]]:
        """(bytes, metadata JSON text or None) of a store-relative object, read
        whole (at most max_bytes; 0: 256 MiB). NotFound when there is none."""
        p, n, m = _c_void_p(), _c_size_t(), _c_void_p()
        err = _err_buf()
        with self._h as s:
            try:
                _c.cas_store_file_get(s, _name(name, "name"), max_bytes, _byref(p), _byref(n), _byref(m), err,
                                      _ERR_CAP)
                return (ctypes.string_at(p, n.value) if n.value else b"",
                        ctypes.string_at(m).decode("utf-8", "replace") if m.value else None)
            finally:
                for q in (p, m):
                    if q.value:
                        _c.cas_store_free_buffer(s, q)

    def file_put(self, name: str, data: Any, meta: Optional[str] = None, replace: bool = True) -> bool:
        """Writes a store-relative object whole, with its metadata JSON text (None:
        none); replace=False keeps one already there. Returns whether it wrote."""
        stored = _c_int()
        err = _err_buf()
        with self._h as s, _Buffer(data) as b:
            _c.cas_store_file_put(s, _name(name, "name"), b.addr, b.size, None if meta is None else meta.encode(),
                                  int(bool(replace)), _byref(stored), err, _ERR_CAP)
        return bool(stored.value)

    def open(self, flow: str, key: str, expected_size: Optional[int] = None) -> "_StreamReader":
        """A Reader decoding the blob piece by piece (memory bounded). It stays
        usable after the store is closed."""
        st = _c_void_p()
        err = _err_buf()
        with self._h as s:
            _c.cas_stream_open(s, _name(flow, "flow"), _name(key, "key"), _byref(st), err, _ERR_CAP)
        return _StreamReader(st, expected_size)

    # ---- browsing: flows, runs, steps, tasks ----

    def _entries(self, fn, folder):
        p, n = ctypes.POINTER(_lib.FileEntry)(), _c_size_t()
        err = _err_buf()
        with self._h as s:
            try:
                fn(s, folder.encode("utf-8") if isinstance(folder, str) else folder, _byref(p), _byref(n), err,
                   _ERR_CAP)
                return [FileEntry(_text(p[i].name), bool(p[i].is_dir), p[i].size, p[i].mtime, bool(p[i].other))
                        for i in range(n.value)]
            finally:
                if p:
                    _c.cas_store_free_buffer(s, p)

    def file_list(self, folder: str = "") -> List[FileEntry]:
        """A folder's entries ("" the root; "Flow/12" a run's steps), sorted: FileEntry
        rows. An object store's folders are its common prefixes; it is listed page by
        page inside. NotFound when there is no such folder."""
        return self._entries(_c.cas_store_file_list, folder)

    def file_walk(self, folder: str) -> List[FileEntry]:
        """Every object below a folder, names relative to it, in one listing."""
        return self._entries(_c.cas_store_file_walk, folder)

    def runs(self, flow: str) -> Iterator[Run]:
        """A flow's runs, newest first: an iterator of Run."""
        p, n = ctypes.POINTER(_lib.RunInfo)(), _c_size_t()
        err = _err_buf()
        with self._h as s:
            try:
                _c.cas_store_runs(s, _name(flow, "flow"), _byref(p), _byref(n), err, _ERR_CAP)
                rows = [(_text(p[i].id), p[i].started, bool(p[i].finished), _text(p[i].user), _text(p[i].tags),
                         _text(p[i].system_tags)) for i in range(n.value)]
            finally:
                if p:
                    _c.cas_store_free_buffer(s, p)
        for rid, started, finished, user, tags, system_tags in rows:
            yield Run("%s/%s" % (flow, rid), rid, started or None, finished, user or None,
                      _json.loads(tags) if tags else [], _json.loads(system_tags) if system_tags else [])

    def latest(self, flow: str) -> Run:
        """The newest run of a flow (NotFound when it has none)."""
        for run in self.runs(flow):
            return run
        raise NotFound("flow '%s' has no runs" % flow)

    def _path(self, pathspec, parts):
        """pathspec with exactly `parts` parts, 'latest' for the run resolved."""
        got = pathspec.split("/")
        if len(got) != parts or not all(got):
            raise InvalidName("'%s' is not %s" % (pathspec, "/".join(("Flow", "run", "step", "task")[:parts])))
        if parts >= 2 and got[1] == "latest":
            got[1] = self.latest(got[0]).id
        return "/".join(got)

    def steps(self, run: str) -> Iterator[Step]:
        """The steps of "Flow/run" (run may be 'latest'): an iterator of Step."""
        run = self._path(run, 2)
        for e in self.file_list(run):
            if _is_part(e):
                yield Step("%s/%s" % (run, e.name), e.name, sum(1 for t in self._parts("%s/%s" % (run, e.name))))

    def _parts(self, folder):
        try:
            return [e for e in self.file_list(folder) if _is_part(e)]
        except NotFound:
            return []

    def tasks(self, step: str) -> Iterator[TaskInfo]:
        """The tasks of "Flow/run/step": an iterator of TaskInfo (the attempt Metaflow's
        rule picks from the task folder's names, -1 if none is done)."""
        step = self._path(step, 3)
        for e in self._parts(step):
            names = [f.name.encode("utf-8") for f in self.file_list("%s/%s" % (step, e.name))]
            attempt = _c.cas_task_pick_attempt(b"".join(n + b"\0" for n in names), len(names))
            yield TaskInfo("%s/%s" % (step, e.name), e.name, attempt, attempt >= 0)

    # ---- tasks ----

    def task(self, pathspec: str) -> "Task":
        """Task("Flow/run/step/task"; run may be 'latest'): its latest attempt and artifacts."""
        t = _c_void_p()
        err = _err_buf()
        if isinstance(pathspec, str) and pathspec.count("/") == 3 and pathspec.split("/")[1] == "latest":
            pathspec = self._path(pathspec, 4)
        with self._h as s:
            _c.cas_task_open(s, _name(pathspec, "pathspec"), _byref(t), err, _ERR_CAP)
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

    def artifact(self, pathspec: str, name: str) -> bytes:
        """The bytes (the pickle) of artifact `name` of task "Flow/run/step/task".
        Checks the decoded length against the size data.json records."""
        task, art = self._resolve(pathspec, name)
        if art.size < 0:
            return self.get(task.flow, art.key)
        with self.open(task.flow, art.key, expected_size=art.size) as f:
            return f.readall()

    def preview(self, flow: str, key: str, json: bool = False, encoding: Optional[str] = None, size: int = -1,
                **limits: Optional[int]) -> Any:
        """The value of blob `key` (a pickle) without unpickling it; see cas_h.preview.
        encoding (data.json's): another serializer's bytes are named, never parsed."""
        err = _err_buf()
        fk = (_name(flow, "flow"), _name(key, "key"))
        enc = None if encoding is None or _c.cas_encoding_is_pickle(encoding.encode()) else encoding.encode()

        def run(p):
            with self._h as s:
                if enc is not None:
                    rc = _c.cas_store_preview_encoded(s, fk[0], fk[1], enc, size, p, err, _ERR_CAP)
                else:
                    rc = _c.cas_store_preview(s, fk[0], fk[1], p, err, _ERR_CAP)
            if rc < 0 and not ctypes.string_at(_c.cas_preview_text(p, None), 1).strip(b"\0"):
                _check_store(rc, err)  # the blob could not be opened: no preview at all
            return rc

        return _preview(run, json, limits, "blob %s of flow %s" % (key, flow))

    def preview_artifact(self, pathspec: str, name: str, json: bool = False, **limits: Optional[int]) -> Any:
        """The value of artifact `name` of task "Flow/run/step/task", without unpickling it."""
        task, art = self._resolve(pathspec, name)
        return self.preview(task.flow, art.key, json=json, encoding=art.encoding, size=art.size, **limits)

    def preview_task(self, pathspec: str, threads: int = 8, **limits: Optional[int]) -> Dict[str, Dict[str, Any]]:
        """Every artifact of task "Flow/run/step/task" (run may be 'latest') previewed as a
        JSON tree (see cas_h.preview; limits as there), read `threads` at a time: each C
        call releases the GIL, so an object store's reads overlap. {name: {"key", "size",
        "encoding", "preview"}}, in data.json's order; an artifact that cannot be previewed
        carries "error" (its message) and "preview" (what came before, or None)."""
        from concurrent.futures import ThreadPoolExecutor
        task = self.task(pathspec)

        def one(a):
            row = {"key": a.key, "size": a.size, "encoding": a.encoding}
            try:
                row["preview"] = self.preview(task.flow, a.key, json=True, encoding=a.encoding, size=a.size, **limits)
            except errors.CasError as e:
                row.update(preview=getattr(e, "partial", None) or None, error=str(e))
            return a.name, row

        arts = list(task.artifacts.values())
        with ThreadPoolExecutor(max_workers=max(1, min(int(threads), len(arts) or 1))) as ex:
            return collections.OrderedDict(ex.map(one, arts))

    def open_artifact(self, pathspec: str, name: str) -> "_StreamReader":
        """A Reader over artifact `name` of task "Flow/run/step/task"."""
        task, art = self._resolve(pathspec, name)
        return self.open(task.flow, art.key, expected_size=art.size if art.size >= 0 else None)
