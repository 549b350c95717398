"""Metaflow's ContentAddressedStore, hashing, packing and unpacking through cas.h,
and on S3 and Azure its object I/O too.

Switched on by configuration (METAFLOW_CAS_H=1 in the environment or in a
Metaflow config file), this replaces the CPU half of Metaflow's
content-addressed store on every storage Metaflow has (local, S3, Azure, GCS),
and on S3 and Azure the I/O half as well (the last item below):

- save_blobs: the SHA-1 keys through cas.h, the existence check, and only for
  the blobs the store lacks, compression through cas.h: cas_version 1 (gzip,
  level 3, as Metaflow writes it) by default, 2 (LZ4 frame, Metaflow PR
  #3090) with METAFLOW_CAS_H_VERSION=2. Same keys, same sidecars / object
  metadata ({"cas_raw": ..., "cas_version": ...}), the same storage calls as
  Metaflow's own. Blobs go to C a batch at a time (up to 64 MiB): one call
  hashes a batch on both cores, one compresses what is missing (v2 compresses
  beside the hash, and drops what the store has; a v2 batch's largest blob, from
  1 MiB, is packed on a thread while the storage writes the others).
- load_blobs: Metaflow's own steps (blob cache, sidecar rules, transfers,
  DataException wording), with each batch of blobs decoded in one C call on
  both cores; a bad blob is redone alone, so its error is Metaflow's.
- _unpack_v1, _unpack_v2, _unpack_backward_compatible: decoding one blob
  through cas.h (what load_blobs uses for a blob it does not batch); _unpack_v2
  is added when the Metaflow in use lacks PR #3090: v2 blobs read anyway.
- _pack_v1 / _pack_v2: compression only, for anything else that calls them.
- with METAFLOW_CAS_H_VERIFY=1, load_blobs also rehashes every blob against
  its key (Metaflow never does).
- On S3 and Azure, the object I/O as well: load_blobs and save_blobs go through
  a cas_h.Store on the same root (see _Remote), a batch per call, many requests
  in flight, decoding on both cores, every read rehashed against its key; so do
  the storage classes' is_file, load_bytes and save_bytes (a task's data.json,
  markers, logs). A store configured in a way cas.h cannot honour keeps
  Metaflow's own I/O, said once on stderr.

Switched off (the default), nothing is patched and Metaflow runs its own code.
When switched on but cas_h or libcas.so cannot load, a warning goes to stderr
and Metaflow keeps its own code: the formats are the same, so nothing breaks
(except reading v2 blobs on a Metaflow without PR #3090).

Programmatic use (a notebook, a UI backend): install(version=2),
uninstall(), installed().
"""

import configparser
import inspect
import io
import itertools
import json
import mmap
import os
import sys
import threading

__all__ = ["install", "uninstall", "installed", "install_from_config", "config", "CasUnpackError"]

_PATCHED = ("save_blobs", "load_blobs", "_pack_v1", "_pack_v2", "_unpack_v1", "_unpack_v2",
            "_unpack_backward_compatible")
_MISSING = object()
_originals = {}  # class -> {attribute: what the class itself had, or _MISSING}
_settings = {}  # class -> (version, verify)
_storage_originals = {}  # storage class -> {attribute: what the class itself had, or _MISSING}
_storage_owner = None  # the class whose install() patched the storage classes
_SAVE_BLOBS_PARAMS = {"self", "blob_iter", "raw", "len_hint", "is_transfer"}
_LOAD_BLOBS_PARAMS = {"self", "keys", "force_raw", "is_transfer"}
# Blob files from this size on are decoded from an mmap, not read into memory.
_MMAP_MIN = 1 << 20


class CasUnpackError(Exception):
    """What the extension's _unpack_* raise; Metaflow's load_blobs wraps it as
    DataException("Could not unpack artifact '<path>': <this message>"), so
    str() is only the reason, as Python's gzip would word it."""

    def __init__(self, cas_error):
        Exception.__init__(self, cas_error.reason)
        self.cas_error = cas_error


def _warn(msg):
    sys.stderr.write("cas_h extension: %s\n" % msg)


def _truthy(value):
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)


def config(env=None):
    """(enabled, version, verify) from Metaflow's configuration (the
    extension's config module reads METAFLOW_CAS_H* from the environment and
    Metaflow's config files), or from `env` / os.environ when Metaflow's
    configuration is not loaded."""
    mc = sys.modules.get("metaflow.metaflow_config") if env is None else None
    if mc is not None and hasattr(mc, "CAS_H"):
        enabled, version, verify = mc.CAS_H, getattr(mc, "CAS_H_VERSION", 1), getattr(mc, "CAS_H_VERIFY", False)
    else:
        e = os.environ if env is None else env
        enabled, version, verify = e.get("METAFLOW_CAS_H", ""), e.get("METAFLOW_CAS_H_VERSION", "1"), \
            e.get("METAFLOW_CAS_H_VERIFY", "")
    try:
        version = int(str(version).strip().lstrip("v") or 1)
    except ValueError:
        version = -1
    return _truthy(enabled), version, _truthy(verify)


def _metaflow_classes():
    from metaflow.datastore.content_addressed_store import ContentAddressedStore
    from metaflow.datastore.exceptions import DataException

    return ContentAddressedStore, DataException


def _open_source(f):
    """The blob's bytes to decode, without a copy for large files: (buffer, mmap or None)."""
    if isinstance(f, (bytes, bytearray, memoryview)):
        return f, None
    if type(f) is io.BytesIO:  # in memory already (and fileno() would raise, which costs)
        return f.read(), None
    try:
        fd = f.fileno()
        size = os.fstat(fd).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        return f.read(), None
    if size < _MMAP_MIN or f.tell() != 0:
        return f.read(), None
    try:
        mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return f.read(), None
    return mm, mm


def _decoder(cas_h, meta):
    def unpack(self, blob):
        src, mm = _open_source(blob)
        try:
            return cas_h.unpack(src, meta)
        except cas_h.CasError as e:
            raise CasUnpackError(e) from None
        finally:
            if mm is not None:
                mm.close()

    return unpack


def _packer(cas_h, version):
    def pack(self, blob):
        return io.BytesIO(cas_h.compress(blob, version))

    return pack


# A save or a load hands cas.h its blobs a batch at a time: one C call hashes (or
# packs, or decodes) a whole batch on both cores, where one call per blob would cost
# more than a small blob's work. A batch holds at most _BATCH_BYTES of input (or
# _BATCH_ITEMS blobs), so memory stays bounded: Metaflow pickles artifacts lazily.
# (Computing one batch on a thread while the storage writes the one before was
# tried: on two cores the file writes and the C threads compete, and a task saved
# no faster; see bench/results/task.md.) Within a v2 batch, the largest blob from
# _LATE_MIN on is packed last, on a thread, while the storage writes the others:
# its SHA-1 is the longest single job of a task (8 MB: ~5 ms), and the writes
# before it then cost no wall time (the task: ~22.6 -> ~20 ms).
_BATCH_BYTES = 64 << 20
_BATCH_ITEMS = 1024
_LATE_MIN = 1 << 20


def _save_blobs(cas_h, version):
    meta = cas_h.sidecar(version)  # from the C library's format table

    def local_save(self, blob_iter, raw=False, len_hint=0, is_transfer=False):
        results = []
        items = (_transfers(self, blob_iter, results) if is_transfer
                 else _packed(cas_h, version, meta, self, blob_iter, raw, results))
        self._storage_impl.save_bytes(items, overwrite=True, len_hint=len_hint)
        return results

    def save_blobs(self, blob_iter, raw=False, len_hint=0, is_transfer=False):
        """Metaflow's save_blobs, with keys and blobs computed by cas.h a batch
        at a time (cas_version %d); on S3 and Azure, written by cas.h too."""
        remote = None if is_transfer else _Remote.find(cas_h, self, version)
        if remote is not None:
            return remote.save(cas_h, self, blob_iter, raw, len_hint, local_save)
        return local_save(self, blob_iter, raw, len_hint, is_transfer)

    save_blobs.__doc__ = save_blobs.__doc__ % version
    return save_blobs


def _transfers(store, blob_iter, results):
    """Transfers carry decoded bytes: stored raw, as Metaflow does."""
    storage = store._storage_impl
    for key, blob_data, _ in blob_iter:
        path = _blob_path(store, key)
        results.append(store.save_blobs_result(uri=storage.full_uri(path), key=key))
        yield path, (io.BytesIO(blob_data), {"cas_raw": True, "cas_version": 1})


def _packed(cas_h, version, meta, store, blob_iter, raw, results):
    """(path, (blob, sidecar)) for each blob the store lacks, a batch at a time."""
    batch, total = [], 0
    for b in blob_iter:  # Metaflow pickles artifacts lazily: a batch at a time bounds memory
        if type(b) is not bytes:
            b = bytes(b)
        batch.append(b)
        total += len(b)
        if total >= _BATCH_BYTES or len(batch) >= _BATCH_ITEMS:
            yield from _packed_batch(cas_h, version, meta, store, batch, raw, results)
            batch, total = [], 0
    if len(batch) == 1 and not raw:  # one blob (a client saving one artifact): no batch to set up
        data = batch[0]
        key, blob = cas_h.pack(data, 2) if version == 2 else (cas_h.hash_key(data), None)
        path = _blob_path(store, key)
        results.append(store.save_blobs_result(uri=None, key=key))
        if not store._storage_impl.is_file([path])[0]:
            yield path, (io.BytesIO(cas_h.compress(data, version) if blob is None else blob), dict(meta))
    elif batch:
        yield from _packed_batch(cas_h, version, meta, store, batch, raw, results)


def _packed_batch(cas_h, version, meta, store, batch, raw, results):
    """One batch's (path, (blob, sidecar)) items to write: its keys (and for v2 its
    blobs beside them: LZ4 costs about what SHA-1 does, so a blob the store has costs
    its hash alone); the existence check Metaflow makes, blob by blob; then, for v1,
    the missing blobs compressed (gzip costs several hashes, and Metaflow re-saves
    every artifact a step has read: a key the store has is common). A list, not a
    generator, but for a late pack (its writes overlap its thread)."""
    if version == 2 and not raw and len(batch) > 1:
        late = max(range(len(batch)), key=lambda i: len(batch[i]))
        if len(batch[late]) >= _LATE_MIN:
            return _packed_late(cas_h, meta, store, batch, late, results)
    storage = store._storage_impl
    packed = None
    if version == 2 and not raw:
        keys, packed = cas_h.pack_many(batch, 2)
    else:
        keys = cas_h.pack_many(batch, compress=False)[0]
    missing, seen = [], set()
    for i, key in enumerate(keys):
        path = _blob_path(store, key)
        results.append(store.save_blobs_result(uri=storage.full_uri(path) if raw else None, key=key))
        if _lacks(store, path, key, seen):
            missing.append((i, path))
    if raw:
        return [(path, (io.BytesIO(batch[i]), {"cas_raw": True, "cas_version": 1})) for i, path in missing]
    if packed is None and len(missing) == 1:
        packed = {missing[0][0]: cas_h.compress(batch[missing[0][0]], version)}
    elif packed is None:
        packed = dict(zip((i for i, _ in missing),
                          cas_h.pack_many([batch[i] for i, _ in missing], version, keys=False)[1]))
    return [(path, (io.BytesIO(packed[i]), dict(meta))) for i, path in missing]


def _blob_path(store, key):
    """Where Metaflow keeps the blob of key: <prefix>/<key[:2]>/<key>."""
    return store._storage_impl.path_join(store._prefix, key[:2], key)


def _lacks(store, path, key, seen):
    """Whether to write this blob: the store lacks it (Metaflow's existence check,
    blob by blob) and this batch has not written it (a blob twice is written once)."""
    if key in seen or store._storage_impl.is_file([path])[0]:
        return False
    seen.add(key)
    return True


def _packed_late(cas_h, meta, store, batch, late, results):
    """A v2 batch whose item `late` is large: the others packed in one call, then
    written while a thread packs `late` (C runs it without the GIL, on the writer's
    two threads); `late` is written last. Results keep the batch's order."""
    others = [i for i in range(len(batch)) if i != late]
    keys, packed = cas_h.pack_many([batch[i] for i in others], 2)
    done = []

    def pack_late():
        try:
            done.append(cas_h.pack(batch[late], 2))
        except BaseException as e:  # raised again on the caller's thread
            done.append(e)

    helper = threading.Thread(target=pack_late, name="cas_h pack")
    try:
        helper.start()
    except RuntimeError:  # no thread to be had: packed here, before the others are written
        helper = None
        pack_late()
    try:
        res, seen = [None] * len(batch), set()
        for j, i in enumerate(others):
            res[i] = store.save_blobs_result(uri=None, key=keys[j])
            path = _blob_path(store, keys[j])
            if _lacks(store, path, keys[j], seen):
                yield path, (io.BytesIO(packed[j]), dict(meta))
    finally:  # also when the storage stops early: no thread outlives the save
        if helper is not None:
            helper.join()
    if isinstance(done[0], BaseException):
        raise done[0]
    key, blob = done[0]
    res[late] = store.save_blobs_result(uri=None, key=key)
    results.extend(res)
    path = _blob_path(store, key)
    if _lacks(store, path, key, seen):
        yield path, (io.BytesIO(blob), dict(meta))


_O_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_DIRECT_MIN = 1 << 16  # v2 blob files from this size on are decoded straight from the file


class _Decoded(object):
    """A blob _read_file has decoded already: .data is the artifact's bytes."""

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


_FIRST_READ = 1 << 13  # most system artifacts fit; a larger file costs one more read of its whole
_DIRECT_FDS = 64  # files a batch holds open for its one direct decode


class _Direct(object):
    """A large cas_version 2 blob file a batch holds open, to be decoded straight
    from it with the batch's others in one cas_unpack_v2_fd_many call."""

    __slots__ = ("fd", "head", "size")

    def __init__(self, fd, head, size):
        self.fd, self.head, self.size = fd, head, size  # size: what the frame states it decodes to

    def read(self):
        return _pread_whole(self.fd, os.fstat(self.fd).st_size)

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _pread_whole(fd, size):
    data = os.pread(fd, size, 0)  # the whole file in one piece (joining pieces would copy it)
    while len(data) < size:  # short only if the file shrank or a signal came; read on to its end
        more = os.pread(fd, size - len(data), len(data))
        if not more:
            break
        data += more
    return data


def _read_file(path, most, mappable=False, v2=None, batch=False):
    """A blob file's bytes (os.read: no file object for a blob read whole), or
    None when it holds more than `most` bytes. mappable: a blob to decode (not a
    raw one, whose bytes are the artifact) from _MMAP_MIN on comes as a read-only
    mmap, which C decodes in place: reading it into memory first costs more
    than decoding it. v2 (the cas_h module, for a cas_version 2 blob): from
    _DIRECT_MIN on, the blob comes decoded, as a _Decoded, read straight into its
    bytes (cas_unpack_v2_fd: no mapping, whose page faults made a freshly booted
    machine's loads 2-3x slower than PR #3090's read(), and one copy fewer than
    reading it first); a frame that path does not take comes as above. batch:
    such a blob comes as a _Direct instead (the file held open, the caller's to
    close), for a batch to decode with its others on both cores."""
    fd = os.open(path, _O_READ)
    try:
        data = os.read(fd, _FIRST_READ)
        if len(data) < _FIRST_READ:  # a regular file reads short only at its end: a small blob is one read
            return data
        size = os.fstat(fd).st_size
        if size > most:
            return None
        if v2 is not None and size >= _DIRECT_MIN:
            if batch:
                stated = v2.size_hint(data, v2.sidecar(2))
                if stated is not None and stated <= most:
                    held, fd = _Direct(fd, data, stated), -1
                    return held
            else:
                out = v2.unpack_v2_fd(fd, data, most)
                if out is not None:
                    return _Decoded(out)
        if mappable and size >= _MMAP_MIN:
            try:
                return mmap.mmap(fd, size, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                pass  # not mappable here: read it
        return _pread_whole(fd, size)
    finally:
        if fd >= 0:
            os.close(fd)


class _Load(object):
    """One load_blobs call's state and Metaflow's steps for a blob."""

    __slots__ = ("cas_h", "store", "storage", "force_raw", "is_transfer", "exc", "metas")
    # (class, cas_version or None for no sidecar) -> the format cas.h decodes it as, or
    # None when the class's unpacker for it is not this extension's; install() clears it
    formats = {}

    def __init__(self, cas_h, store, force_raw, is_transfer, exc, metas):
        self.cas_h, self.store, self.storage = cas_h, store, store._storage_impl
        self.force_raw, self.is_transfer, self.exc = force_raw, is_transfer, exc
        self.metas = metas  # a format's sidecar, for unpack()

    def done(self, path_key, blob, meta):
        key = self.storage.path_split(path_key)[-1]
        cache = self.store._blob_cache
        if cache:
            cache.store_key(key, blob)
        return (key, blob, meta) if self.is_transfer else (key, blob)

    def one(self, path_key, file_path, meta):
        """Metaflow's own steps for one blob: its calls, its messages."""
        store = self.store
        with open(file_path, "rb") as f:
            if self.force_raw or (meta and meta.get("cas_raw", False)):
                return self.done(path_key, f.read(), meta)
            if meta is None:
                unpack_code = store._unpack_backward_compatible
            else:
                version = meta.get("cas_version", -1)
                if version == -1:
                    raise self.exc("Could not extract encoding version for '%s'" % path_key)
                unpack_code = getattr(store, "_unpack_v%d" % version, None)
                if unpack_code is None:
                    raise self.exc("Unknown encoding version %d for '%s' -- the artifact is either corrupt or you "
                                   "need to update Metaflow to the latest version" % (version, path_key))
            try:
                blob = unpack_code(f)
            except Exception as e:
                raise self.exc("Could not unpack artifact '%s': %s" % (path_key, e))
        return self.done(path_key, blob, meta)

    def plan(self, file_path, meta):
        """The format cas.h decodes this blob as, or None for Metaflow's own steps
        (a class whose unpacker is not this extension's, an odd sidecar)."""
        cas_h = self.cas_h
        if file_path is None or self.force_raw:
            return None
        if meta is None:
            version = None
        elif type(meta) is not dict:
            return None
        elif meta.get("cas_raw", False):
            return cas_h.RAW
        else:
            version = meta.get("cas_version", -1)
        if version is not None and type(version) is not int:
            return None
        cls = type(self.store)
        try:
            return _Load.formats[cls, version]
        except KeyError:
            pass
        name = "_unpack_backward_compatible" if version is None else "_unpack_v%d" % version
        ours = getattr(getattr(cls, name, None), "_cas_h", False) and name not in vars(self.store)
        fmt = {None: cas_h.LEGACY, 1: cas_h.V1, 2: cas_h.V2}.get(version) if ours else None
        if name not in vars(self.store):  # an unpacker set on the instance is not the class's
            _Load.formats[cls, version] = fmt
        return fmt

    def direct(self, batch):
        """The batch's _Direct items decoded in one C call, in place: as RAW items
        holding their bytes; one that call does not take, read whole for the
        general path (which words its errors). Closes their files."""
        cas_h = self.cas_h
        held = [i for i, item in enumerate(batch) if type(item[3]) is _Direct]
        files = [batch[i][3] for i in held]
        try:
            if not held:
                return
            outs = cas_h.unpack_v2_fd_many([d.fd for d in files], [d.head for d in files], _BATCH_BYTES)
            for i, d, out in zip(held, files, outs):
                path_key, file_path, meta, _, fmt = batch[i]
                batch[i] = (path_key, file_path, meta, out, cas_h.RAW) if out is not None else \
                    (path_key, file_path, meta, d.read(), fmt)
        finally:
            for d in files:
                d.close()

    def decode(self, batch):
        """A batch of (path_key, file_path, meta, bytes, format)'s items, decoded a group
        per C call. A group's decoded bytes stay under _BATCH_BYTES (what each blob
        states it decodes to), so a load never holds more than that beyond what
        Metaflow's blob-at-a-time code holds; a blob that states more, or nothing, is
        decoded alone."""
        cas_h = self.cas_h
        raw = cas_h.RAW
        self.direct(batch)
        coded = [item for item in batch if item[4] != raw]
        stated = iter(cas_h.decoded_sizes([item[3] for item in coded], [item[4] for item in coded])
                      if len(coded) > 1 else [None] * len(coded))
        group, total = [], 0
        for item in batch:
            size = len(item[3]) if item[4] == raw else next(stated)
            if group and (size is None or total + size > _BATCH_BYTES):
                yield from self.decode_group(group)
                group, total = [], 0
            group.append((item, size))
            total += size or 0
            if size is None or total > _BATCH_BYTES:
                yield from self.decode_group(group)
                group, total = [], 0
        if group:
            yield from self.decode_group(group)

    def decode_group(self, group):
        cas_h = self.cas_h
        todo = [(item, size) for item, size in group if item[4] != cas_h.RAW]
        try:
            if len(todo) == 1:  # one blob: the one-call path costs less than a batch's set-up
                out = [cas_h.unpack(todo[0][0][3], self.metas[todo[0][0][4]])]
            else:
                out = cas_h.unpack_many([item[3] for item, _ in todo], [item[4] for item, _ in todo],
                                        sizes=[size for _, size in todo])
        except Exception:  # a bad blob: Metaflow's own steps, blob by blob, raise at the right one
            for (path_key, file_path, meta, data, fmt), _ in group:
                yield self.done(path_key, data, meta) if fmt == cas_h.RAW else self.one(path_key, file_path, meta)
            return
        out = iter(out)
        for (path_key, _, meta, data, fmt), _ in group:
            yield self.done(path_key, data if fmt == cas_h.RAW else next(out), meta)


def _close_held(batch):
    """Closes the files a batch holds (a _Direct not yet decoded)."""
    for item in batch:
        if type(item[3]) is _Direct:
            item[3].close()


def _load_blobs(cas_h, data_exception, version):
    metas = {cas_h.V1: cas_h.sidecar(1), cas_h.V2: cas_h.sidecar(2), cas_h.LEGACY: None}

    def load_blobs(self, keys, force_raw=False, is_transfer=False):
        """Metaflow's load_blobs (the blob cache, the sidecar rules, the messages),
        with the blobs decoded by cas.h a batch at a time; on S3 and Azure, read
        by cas.h too."""
        remote = None if force_raw or is_transfer else _Remote.find(cas_h, self, version)
        if remote is None:
            return local_load(self, keys, force_raw, is_transfer)
        return remote_load(remote, self, keys)

    def remote_load(remote, self, keys):
        cache, wanted = self._blob_cache, []
        for key in keys:
            blob = cache.load_key(key) if cache else None
            if blob is not None:
                yield key, blob
            else:
                wanted.append(key)
        yield from remote.load(cas_h, self, wanted, local_load, data_exception)

    def local_load(self, keys, force_raw=False, is_transfer=False):
        storage = self._storage_impl
        load_paths = []
        for key in keys:
            blob = self._blob_cache.load_key(key) if self._blob_cache else None
            if blob is not None:
                yield (key, blob, {"cas_raw": False, "cas_version": 1}) if is_transfer else (key, blob)
            else:
                load_paths.append(_blob_path(self, key))
        run = _Load(cas_h, self, force_raw, is_transfer, data_exception, metas)
        with storage.load_bytes(load_paths) as loaded:
            if len(load_paths) == 1:  # one artifact (a client reading one): no batch to set up
                for path_key, file_path, meta in loaded:
                    fmt = run.plan(file_path, meta)
                    data = (_read_file(file_path, _BATCH_BYTES, fmt != cas_h.RAW, cas_h if fmt == cas_h.V2 else None)
                            if fmt is not None else None)
                    if data is None:
                        yield run.one(path_key, file_path, meta)
                        continue
                    if type(data) is _Decoded:
                        data, fmt = data.data, cas_h.RAW  # decoded already: its bytes as they are
                    if fmt != cas_h.RAW:
                        try:
                            data = cas_h.unpack(data, run.metas[fmt])
                        except cas_h.CasError:
                            yield run.one(path_key, file_path, meta)  # Metaflow's words for it
                            continue
                    yield run.done(path_key, data, meta)
                return
            # A batch's large v2 blobs are decoded straight from their files by one C call on
            # both cores (decoding them one at a time on Python threads measured 1.24-1.56x
            # PR #3090 on the task, against 1.5-1.7x for one call); other large blobs come as
            # mmaps that one C call decodes in place.
            batch, total, held = [], 0, 0
            try:
                for path_key, file_path, meta in loaded:
                    fmt = run.plan(file_path, meta)
                    data = (_read_file(file_path, _BATCH_BYTES, fmt != cas_h.RAW, cas_h if fmt == cas_h.V2 else None,
                                       batch=True) if fmt is not None else None)
                    if data is not None:
                        batch.append((path_key, file_path, meta, data, fmt))
                        direct = type(data) is _Direct
                        total += data.size if direct else len(data)
                        held += direct
                        if total < _BATCH_BYTES and len(batch) < _BATCH_ITEMS and held < _DIRECT_FDS:
                            continue
                    if batch:
                        yield from run.decode(batch)
                        batch, total, held = [], 0, 0
                    if data is None:  # another unpacker's, or a huge one (decoded from an mmap)
                        yield run.one(path_key, file_path, meta)
                if batch:
                    yield from run.decode(batch)
            finally:  # also when the caller stops early: no file left open
                _close_held(batch)

    return load_blobs


# ---- S3 and Azure: the object I/O through cas.h as well -------------------------
#
# Metaflow's S3 client starts worker processes for a batch (and reads a few blobs one
# request at a time), its Azure client a thread per blob; every blob lands in a temp
# file before it is decoded. A cas_h.Store on the same root reads a batch over one
# connection pool, many requests in flight, decodes on both cores straight from
# memory, and rehashes every blob against its key (an object store's answers are not
# trusted). The object names and their user metadata are Metaflow's, so Metaflow
# without the extension reads what this writes, and the other way round.
#
# A configuration cas.h cannot honour (_s3_unsupported, _azure_unsupported) keeps
# Metaflow's own I/O for that store, said once on stderr; so does a store cas.h fails
# to reach, from that failure on (the call is redone by Metaflow's own code, which
# raises its own exceptions in its own words: access denied, no such object).

_REMOTE_KEYS = 64  # keys per get_many: a load holds at most this many decoded blobs at once
# AWS profile settings naming a credential source cas.h does not have (boto3 would use it)
_AWS_FOREIGN = ("credential_process", "sso_start_url", "sso_session", "source_profile", "credential_source")
# Azure credentials DefaultAzureCredential takes from the environment and cas.h does not
_AZURE_FOREIGN = ("AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME")


def _mf_setting(name, default=None):
    """Metaflow's setting `name`: metaflow_config's value once Metaflow is loaded
    (the environment, then its config files), else METAFLOW_<name> (JSON decoded
    where it is JSON, as Metaflow's from_conf does for dicts)."""
    mc = sys.modules.get("metaflow.metaflow_config")
    if mc is not None:
        return getattr(mc, name, default)
    value = os.environ.get("METAFLOW_" + name)
    if value is None:
        return default
    if value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            pass
    return value


def _aws_profile_unsupported(env):
    """Why boto3 would take credentials from a source cas.h lacks, or None."""
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return None  # first in both chains
    if env.get("AWS_WEB_IDENTITY_TOKEN_FILE") and env.get("AWS_ROLE_ARN"):
        return None
    profile = env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"
    parser = configparser.RawConfigParser()
    path = env.get("AWS_CONFIG_FILE") or os.path.expanduser("~/.aws/config")
    try:
        parser.read(path)
    except (configparser.Error, OSError, UnicodeDecodeError) as e:
        return "the AWS config file %s does not parse (%s)" % (path, type(e).__name__)
    for section in ("profile " + profile, profile):
        if parser.has_section(section):
            opts = parser[section]
            for name in _AWS_FOREIGN:
                if name in opts:
                    return "the AWS profile '%s' sets %s" % (profile, name)
            if "role_arn" in opts and "web_identity_token_file" not in opts:
                return "the AWS profile '%s' assumes a role (role_arn)" % profile
            break
    return None


def _client_config_options(config):
    """The options a botocore Config (or its dict form) was given."""
    if isinstance(config, dict):
        return set(config)
    return set(getattr(config, "_user_provided_options", None) or ())


def _s3_unsupported(env=None):
    """Why Metaflow's S3 settings are ones cas.h cannot honour, or None."""
    env = os.environ if env is None else env
    provider = _mf_setting("DEFAULT_AWS_CLIENT_PROVIDER", "boto3")
    if provider != "boto3":
        return "METAFLOW_DEFAULT_AWS_CLIENT_PROVIDER is '%s'" % provider
    if _truthy(_mf_setting("AWS_SANDBOX_ENABLED", False)):
        return "the Metaflow AWS sandbox is on"
    params = _mf_setting("DATATOOLS_CLIENT_PARAMS") or {}
    if not isinstance(params, dict):
        return "METAFLOW_DATATOOLS_CLIENT_PARAMS is not a JSON object"
    # metaflow_config copies S3_ENDPOINT_URL into it, cas.h reads S3_ENDPOINT_URL itself;
    # Metaflow's boto3 provider adds a botocore config holding its retry policy
    extra = sorted(set(params) - {"endpoint_url", "config"})
    if "config" in params and _client_config_options(params["config"]) - {"retries"}:
        extra.append("config (%s)" % ", ".join(sorted(_client_config_options(params["config"]) - {"retries"})))
    if extra:
        return "METAFLOW_DATATOOLS_CLIENT_PARAMS sets %s" % ", ".join(map(str, extra))
    if params.get("endpoint_url", None) not in (None, _mf_setting("S3_ENDPOINT_URL")):
        return "METAFLOW_DATATOOLS_CLIENT_PARAMS names another endpoint_url than METAFLOW_S3_ENDPOINT_URL"
    for name in ("S3_CLIENT_PARAMS", "DATATOOLS_SESSION_VARS", "S3_VERIFY_CERTIFICATE"):
        if _mf_setting(name):
            return "METAFLOW_%s is set" % name
    return _aws_profile_unsupported(env)


def _azure_unsupported(env=None):
    """Why Metaflow's Azure settings are ones cas.h cannot honour, or None."""
    env = os.environ if env is None else env
    provider = _mf_setting("DEFAULT_AZURE_CLIENT_PROVIDER", "azure-default")
    if provider != "azure-default":
        return "METAFLOW_DEFAULT_AZURE_CLIENT_PROVIDER is '%s'" % provider
    if not _mf_setting("AZURE_STORAGE_BLOB_SERVICE_ENDPOINT"):
        return "METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT is not set"
    for name in _AZURE_FOREIGN:
        if env.get(name):
            return "%s names a credential cas.h does not take" % name
    return None


class _Small(object):
    """Small decoded blobs of object stores, by key, the most recently used kept.
    A run's tasks share most of their small artifacts (a real 44-task run: 757
    artifacts, 143 distinct blobs), and on an object store each read is a request,
    which a browsing client pays task after task. The key is the content's hash and
    every read of an object store was rehashed: nothing cached is ever stale.
    Metaflow's client keeps such a cache too, on disk. METAFLOW_CAS_H_CACHE_MB
    (default 64; 0: none); blobs over 1 MiB are not kept."""

    lock = threading.Lock()
    items = None  # key -> bytes (an OrderedDict, oldest first)
    size = 0
    largest = 1 << 20

    @classmethod
    def budget(cls):
        try:
            return max(0, int(float(_mf_setting("CAS_H_CACHE_MB", 64)) * (1 << 20)))
        except (TypeError, ValueError):
            return 64 << 20

    @classmethod
    def get_many(cls, keys):
        if not cls.items:
            return {}
        found = {}
        with cls.lock:
            for k in keys:
                blob = cls.items.get(k)
                if blob is not None:
                    cls.items.move_to_end(k)
                    found[k] = blob
        return found

    @classmethod
    def put_many(cls, pairs):
        budget = cls.budget()
        if not budget:
            return
        import collections
        with cls.lock:
            if cls.items is None:
                cls.items = collections.OrderedDict()
            for k, blob in pairs:
                if len(blob) > cls.largest or k in cls.items:
                    continue
                cls.items[k] = blob
                cls.size += len(blob)
            while cls.size > budget and cls.items:
                cls.size -= len(cls.items.popitem(last=False)[1])

    @classmethod
    def clear(cls):
        with cls.lock:
            cls.items, cls.size = None, 0


class _Remote(object):
    """The cas_h.Store each object-store root's blobs go through, or None where
    Metaflow's own I/O stays (said once, with why)."""

    lock = threading.Lock()
    stores = {}  # (TYPE, root, version, pid) -> cas_h.Store, or None

    def __init__(self, store, flow, ident):
        self.store, self.flow, self.ident = store, flow, ident

    @classmethod
    def find(cls, cas_h, ca_store, version):
        """The _Remote for a ContentAddressedStore on S3 or Azure, else None."""
        flow, _, tail = str(ca_store._prefix).rpartition("/")
        if tail != "data" or not flow or "/" in flow:
            return None  # not a flow's blobs: not a layout cas.h addresses
        return cls.of_storage(cas_h, ca_store._storage_impl, version, flow)

    @classmethod
    def of_storage(cls, cas_h, storage, version, flow=None):
        """The _Remote for a Metaflow storage on S3 or Azure, else None."""
        kind = getattr(storage, "TYPE", None)
        if kind not in ("s3", "azure"):
            return None
        root = str(getattr(storage, "datastore_root", "") or "")
        if kind == "azure":
            root = "azure://" + root.strip("/")
        elif not root.startswith("s3://"):
            return None
        # per process: a child forked by user code (Metaflow's parallel_map) must never
        # use its parent's connections, nor close them (TLS would say goodbye on them)
        ident = (kind, root, version, os.getpid())
        store = cls.stores.get(ident, _MISSING)
        if store is _MISSING:
            with cls.lock:
                store = cls.stores.get(ident, _MISSING)
                if store is _MISSING:
                    store = cls.stores[ident] = cls.open(cas_h, kind, root, version)
        return None if store is None else cls(store, flow, ident)

    @staticmethod
    def open(cas_h, kind, root, version):
        why = _s3_unsupported() if kind == "s3" else _azure_unsupported()
        if why is None:
            try:
                return cas_h.Store(root, version=version)
            except Exception as e:
                why = str(e)
        _warn("%s: Metaflow's own I/O, not cas.h's: %s" % (root, why))
        return None

    def failed(self, cas_h, error):
        """After a failure Metaflow's own code may not have (access, network,
        credentials), the store keeps Metaflow's I/O. A missing or bad blob is
        Metaflow's to report; a blob that does not hash to its key is the
        caller's (Metaflow would return its bytes)."""
        if isinstance(error, (cas_h.NotFound, cas_h.DecodeError, cas_h.MetadataError, cas_h.LimitExceeded)):
            return
        with _Remote.lock:
            if _Remote.stores.get(self.ident) is self.store:
                _Remote.stores[self.ident] = None
                _warn("%s: Metaflow's own I/O from now on, not cas.h's: %s" % (self.ident[1], error))

    def load(self, cas_h, ca_store, keys, local_load, data_exception):
        """load_blobs' items for keys not in the blob cache, in their order."""
        cache = ca_store._blob_cache
        for at in range(0, len(keys), _REMOTE_KEYS):
            chunk = keys[at:at + _REMOTE_KEYS]
            have = _Small.get_many(chunk)
            todo = [k for k in chunk if k not in have]
            try:
                blobs = self.store.get_many(self.flow, todo) if todo else []
            except cas_h.HashMismatch as e:
                raise data_exception("Could not unpack artifact in '%s': %s" % (self.ident[1], e)) from None
            except cas_h.CasError as e:
                self.failed(cas_h, e)
                yield from local_load(ca_store, keys[at:], False, False)
                return
            have.update(zip(todo, blobs))
            _Small.put_many(zip(todo, blobs))
            for key in chunk:
                blob = have[key]
                if cache:
                    cache.store_key(key, blob)
                yield key, blob

    def save(self, cas_h, ca_store, blob_iter, raw, len_hint, local_save):
        """save_blobs' results: put_many a batch at a time (hash, existence check,
        pack, one PUT with the metadata, multipart when large, all in C)."""
        storage, results = ca_store._storage_impl, []
        blobs = iter(blob_iter)
        while True:
            batch, total = [], 0
            for b in blobs:
                batch.append(b)
                total += len(b)
                if total >= _BATCH_BYTES or len(batch) >= _BATCH_ITEMS:
                    break
            if not batch:
                return results
            try:
                keys = self.store.put_many(self.flow, batch, raw=raw)
            except cas_h.CasError as e:
                self.failed(cas_h, e)
                return results + local_save(ca_store, itertools.chain(batch, blobs), raw, len_hint, False)
            for key in keys:
                uri = storage.full_uri(_blob_path(ca_store, key)) if raw else None
                results.append(ca_store.save_blobs_result(uri=uri, key=key))


# The storage's own calls on S3 and Azure (a task's data.json, attempt and DONE
# markers, logs: what TaskDataStore reads and writes around the blobs), through the
# same cas_h.Store: Metaflow's storage opens a client (an S3 worker process for more
# than 10 paths) per call, which costs more than the requests. Same contracts:
# is_file a list of bools; load_bytes (path, local file or None, metadata dict or
# None) items in a context manager that removes its temp files; save_bytes with
# overwrite. Anything else (listing, info, sizes) stays Metaflow's.

_STORAGE_PATCHED = ("is_file", "load_bytes", "save_bytes")
_STORAGE_CLASSES = (("metaflow.plugins.datastores.s3_storage", "S3Storage"),
                    ("metaflow.plugins.datastores.azure_storage", "AzureStorage"))
_FILE_ITEMS = 64  # objects written per round of threads


class _Pool(object):
    """Threads for many small objects at once (ctypes releases the GIL), made in the
    process that uses them (Metaflow forks)."""

    pid, pool, lock = None, None, threading.Lock()

    @classmethod
    def map(cls, fn, items):
        items = list(items)
        if len(items) < 2:
            return [fn(i) for i in items]
        with cls.lock:
            if cls.pid != os.getpid():
                import concurrent.futures
                cls.pool, cls.pid = concurrent.futures.ThreadPoolExecutor(16, "cas_h io"), os.getpid()
        return list(cls.pool.map(fn, items))


class _Loaded(object):
    """load_bytes' answer: `with` gives the items; leaving removes the temp files."""

    def __init__(self, items, tmp):
        self.items, self.tmp = items, tmp

    def __enter__(self):
        return iter(self.items)

    def __exit__(self, *exc):
        self.close()

    def close(self):
        import shutil
        shutil.rmtree(self.tmp, True)


def _storage_methods(cas_h, version, original):
    def is_file(self, paths):
        remote = _Remote.of_storage(cas_h, self, version)
        if remote is not None:
            try:
                return _Pool.map(remote.store.file_exists, paths)
            except cas_h.CasError as e:
                remote.failed(cas_h, e)
        return original["is_file"](self, paths)

    def load_bytes(self, paths):
        remote = _Remote.of_storage(cas_h, self, version)
        if remote is not None and paths:
            import tempfile
            tmp = tempfile.mkdtemp(prefix="metaflow.cas_h.load_bytes.")

            def one(item):
                i, path = item
                try:
                    data, meta = remote.store.file_get(path)
                except cas_h.NotFound:
                    return path, None, None
                local = os.path.join(tmp, str(i))
                with open(local, "wb") as f:
                    f.write(data)
                return path, local, None if meta is None else json.loads(meta)

            try:
                return _Loaded(_Pool.map(one, enumerate(paths)), tmp)
            except cas_h.CasError as e:
                _Loaded((), tmp).close()
                remote.failed(cas_h, e)
        return original["load_bytes"](self, paths)

    def save_bytes(self, path_and_bytes_iter, overwrite=False, len_hint=0):
        remote = _Remote.of_storage(cas_h, self, version)
        if remote is None:
            return original["save_bytes"](self, path_and_bytes_iter, overwrite, len_hint)
        items = iter(path_and_bytes_iter)

        def one(item):
            path, obj = item
            fileobj, meta = obj if isinstance(obj, tuple) else (obj, None)
            data = fileobj if isinstance(fileobj, (bytes, bytearray, memoryview)) else fileobj.read()
            remote.store.file_put(path, data, None if meta is None else json.dumps(meta), overwrite)

        while True:
            batch = list(itertools.islice(items, _FILE_ITEMS))
            if not batch:
                return None
            try:
                _Pool.map(one, batch)
            except cas_h.CasError as e:  # Metaflow's own writes, from this batch on (a write is whole or not at all)
                remote.failed(cas_h, e)
                for _, obj in batch:
                    fileobj = obj[0] if isinstance(obj, tuple) else obj
                    if hasattr(fileobj, "seek"):
                        fileobj.seek(0)
                return original["save_bytes"](self, itertools.chain(batch, items), overwrite, len_hint)

    return {"is_file": is_file, "load_bytes": load_bytes, "save_bytes": save_bytes}


def _install_storage(cas_h, version, classes):
    """Routes the storage classes' object calls through cas.h (on S3 and Azure)."""
    _uninstall_storage()
    if classes is None:
        classes = []
        for module, name in _STORAGE_CLASSES:
            try:
                classes.append(getattr(__import__(module, fromlist=[name]), name))
            except Exception:  # a storage whose dependencies are missing: Metaflow cannot use it either
                pass
    for cls in classes:
        _storage_originals[cls] = {name: cls.__dict__.get(name, _MISSING) for name in _STORAGE_PATCHED}
        current = {name: getattr(cls, name) for name in _STORAGE_PATCHED}
        for name, fn in _storage_methods(cas_h, version, current).items():
            fn.__name__, fn.__qualname__, fn._cas_h = name, "%s.%s" % (cls.__name__, name), True
            setattr(cls, name, fn)


def _restore(cls, saved):
    """Puts back what the class itself had ({attribute: value or _MISSING})."""
    for name, value in saved.items():
        if value is _MISSING:
            if name in cls.__dict__:
                delattr(cls, name)
        else:
            setattr(cls, name, value)


def _uninstall_storage():
    for cls, saved in list(_storage_originals.items()):
        _restore(cls, saved)
        del _storage_originals[cls]


def _verifying_load_blobs(cas_h, original, data_exception):
    def load_blobs(self, keys, *args, **kwargs):
        for item in original(self, keys, *args, **kwargs):
            key, blob = item[0], item[1]
            got = cas_h.hash_key(blob)
            if got != key:
                path = _blob_path(self, key)
                raise data_exception("Could not unpack artifact '%s': content hashes to %s, not to its key %s"
                                     % (path, got, key))
            yield item

    return load_blobs


def _signature_fits(method, first, allowed):
    """Whether Metaflow's method has the parameters this extension was written for."""
    try:
        params = set(inspect.signature(method).parameters)
    except (TypeError, ValueError):
        return False
    return first in params and params <= allowed


def install(version=1, verify=False, cls=None, data_exception=None, storage=None):
    """Routes cls's (default: Metaflow's ContentAddressedStore) hashing,
    packing and unpacking through cas.h, and on S3 and Azure its object I/O
    and that of the storage classes (default with Metaflow's class: S3Storage,
    AzureStorage; else the list `storage`). version: the cas_version new blobs
    get (1 gzip, 2 LZ4 frame). verify: rehash loaded blobs. Raises ImportError
    when cas_h / libcas.so cannot load. Calling it again reconfigures."""
    global _storage_owner
    if version not in (1, 2):
        raise ValueError("cas_version must be 1 or 2, not %r" % (version,))
    import cas_h  # ImportError (with what it tried) when libcas.so is missing

    default_storage = cls is None
    if cls is None:
        storage = None
        cls, default_exception = _metaflow_classes()
        data_exception = data_exception or default_exception
    if data_exception is None:
        raise TypeError("install(cls=...) needs data_exception=")
    if cls in _originals:
        uninstall(cls)
    saved = {name: cls.__dict__.get(name, _MISSING) for name in _PATCHED}
    current_save = getattr(cls, "save_blobs")
    current_load = getattr(cls, "load_blobs")

    new = {
        "_pack_v1": _packer(cas_h, 1),
        "_pack_v2": _packer(cas_h, 2),
        "_unpack_v1": _decoder(cas_h, cas_h.sidecar(1)),
        "_unpack_v2": _decoder(cas_h, cas_h.sidecar(2)),
        "_unpack_backward_compatible": _decoder(cas_h, None),
    }
    if _signature_fits(current_save, "blob_iter", _SAVE_BLOBS_PARAMS):
        new["save_blobs"] = _save_blobs(cas_h, version)
    else:
        # an interface this extension was not written for: keep Metaflow's
        # save_blobs (it still compresses through the patched _pack_v1)
        _warn("%s.save_blobs has an unknown signature; writes keep Metaflow's own save_blobs%s"
              % (cls.__name__, " and its cas_version (METAFLOW_CAS_H_VERSION=2 ignored)" if version == 2 else ""))
    if _signature_fits(current_load, "keys", _LOAD_BLOBS_PARAMS):
        current_load = new["load_blobs"] = _load_blobs(cas_h, data_exception, version)
    else:
        _warn("%s.load_blobs has an unknown signature; reads keep Metaflow's own load_blobs (decoding "
              "through cas.h blob by blob)" % cls.__name__)
    if verify:
        new["load_blobs"] = _verifying_load_blobs(cas_h, current_load, data_exception)
    for name, fn in new.items():
        fn.__name__ = name
        fn.__qualname__ = "%s.%s" % (cls.__name__, name)
        fn._cas_h = True
        setattr(cls, name, fn)
    _originals[cls] = saved
    _settings[cls] = (version, verify)
    _Load.formats.clear()
    _Remote.stores.clear()
    _Small.clear()
    if storage is not None or default_storage:
        _install_storage(cas_h, version, storage)
        _storage_owner = cls
    return True


def uninstall(cls=None):
    """Puts back exactly what the class had before install()."""
    if cls is None:
        cls = _metaflow_classes()[0]
    saved = _originals.pop(cls, None)
    _settings.pop(cls, None)
    _Load.formats.clear()
    if _storage_owner is cls:
        _uninstall_storage()
    if saved is None:
        return False
    _restore(cls, saved)
    return True


def installed(cls=None):
    """(version, verify) when cas.h is installed on cls, else None."""
    if cls is None:
        if "metaflow.datastore.content_addressed_store" not in sys.modules:
            return None
        cls = _metaflow_classes()[0]
    return _settings.get(cls)


def install_from_config(cls=None, data_exception=None, env=None):
    """install() when the configuration switches cas.h on (METAFLOW_CAS_H);
    never raises: a problem is reported on stderr and Metaflow keeps its own
    code. Returns whether cas.h is now in use."""
    enabled, version, verify = config(env)
    if not enabled:
        return False
    if version not in (1, 2):
        _warn("METAFLOW_CAS_H_VERSION must be 1 or 2; writing cas_version 1")
        version = 1
    try:
        return install(version, verify, cls, data_exception)
    except Exception as e:  # never break `import metaflow`
        _warn("METAFLOW_CAS_H is on but cas.h is not used: %s" % (str(e).replace("\n", " "),))
        return False
