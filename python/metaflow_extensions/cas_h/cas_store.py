"""Metaflow's ContentAddressedStore, hashing, packing and unpacking through cas.h.

Switched on by configuration (METAFLOW_CAS_H=1 in the environment or in a
Metaflow config file), this replaces the CPU half of Metaflow's
content-addressed store and leaves the I/O half alone, so it works with every
storage Metaflow has (local, S3, Azure, GCS):

- save_blobs: the SHA-1 key through cas.h, the existence check, and only for
  a blob the store lacks, compression through cas.h: cas_version 1 (gzip,
  level 3, as Metaflow writes it) by default, 2 (LZ4 frame, Metaflow PR
  #3090) with METAFLOW_CAS_H_VERSION=2. Same keys, same sidecars / object
  metadata ({"cas_raw": ..., "cas_version": ...}), same storage calls in the
  same order as Metaflow's own.
- _unpack_v1, _unpack_v2, _unpack_backward_compatible: decoding through
  cas.h, called by Metaflow's own load_blobs, so the sidecar rules, the blob
  cache, transfers and the DataException wording stay Metaflow's. _unpack_v2
  is added when the Metaflow in use lacks PR #3090: v2 blobs read anyway.
- _pack_v1 / _pack_v2: compression only, for anything else that calls them.
- with METAFLOW_CAS_H_VERIFY=1, load_blobs also rehashes every blob against
  its key (Metaflow never does).

Switched off (the default), nothing is patched and Metaflow runs its own code.
When switched on but cas_h or libcas.so cannot load, a warning goes to stderr
and Metaflow keeps its own code: the formats are the same, so nothing breaks
(except reading v2 blobs on a Metaflow without PR #3090).

Programmatic use (a notebook, a UI backend): install(version=2),
uninstall(), installed().
"""

import inspect
import io
import mmap
import os
import sys

__all__ = ["install", "uninstall", "installed", "install_from_config", "config", "CasUnpackError"]

_PATCHED = ("save_blobs", "load_blobs", "_pack_v1", "_pack_v2", "_unpack_v1", "_unpack_v2",
            "_unpack_backward_compatible")
_MISSING = object()
_originals = {}  # class -> {attribute: what the class itself had, or _MISSING}
_settings = {}  # class -> (version, verify)
_SAVE_BLOBS_PARAMS = {"self", "blob_iter", "raw", "len_hint", "is_transfer"}
# Blob files from this size on are decoded from an mmap, not read into memory.
_MMAP_MIN = 1 << 20

V1_META = {"cas_raw": False, "cas_version": 1}
V2_META = {"cas_raw": False, "cas_version": 2}


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


def _save_blobs(cas_h, version):
    meta = V2_META if version == 2 else V1_META

    def save_blobs(self, blob_iter, raw=False, len_hint=0, is_transfer=False):
        """Metaflow's save_blobs, with the key and the blob computed by cas.h
        (cas_version %d)."""
        results = []
        storage = self._storage_impl

        def packing_iter():
            for blob in blob_iter:
                if is_transfer:
                    # transfers carry decoded bytes: stored raw, as Metaflow does
                    key, blob_data, _ = blob
                    path = storage.path_join(self._prefix, key[:2], key)
                    results.append(self.save_blobs_result(uri=storage.full_uri(path), key=key))
                    yield path, (io.BytesIO(blob_data), {"cas_raw": True, "cas_version": 1})
                    continue
                # Hash first, then compress only what the store lacks: Metaflow
                # re-saves every artifact a step has read (FlowSpec caches it as
                # an attribute), so existing keys are common and cost a hash only.
                key = cas_h.hash_key(blob)
                path = storage.path_join(self._prefix, key[:2], key)
                results.append(self.save_blobs_result(uri=storage.full_uri(path) if raw else None, key=key))
                if not storage.is_file([path])[0]:
                    if raw:
                        yield path, (io.BytesIO(blob), {"cas_raw": True, "cas_version": 1})
                    else:
                        yield path, (io.BytesIO(cas_h.compress(blob, version)), dict(meta))

        storage.save_bytes(packing_iter(), overwrite=True, len_hint=len_hint)
        return results

    save_blobs.__doc__ = save_blobs.__doc__ % version
    return save_blobs


def _verifying_load_blobs(cas_h, original, data_exception):
    def load_blobs(self, keys, *args, **kwargs):
        for item in original(self, keys, *args, **kwargs):
            key, blob = item[0], item[1]
            got = cas_h.hash_key(blob)
            if got != key:
                path = self._storage_impl.path_join(self._prefix, key[:2], key)
                raise data_exception("Could not unpack artifact '%s': content hashes to %s, not to its key %s"
                                     % (path, got, key))
            yield item

    return load_blobs


def _save_blobs_compatible(original):
    try:
        params = set(inspect.signature(original).parameters)
    except (TypeError, ValueError):
        return False
    return "blob_iter" in params and params <= _SAVE_BLOBS_PARAMS


def install(version=1, verify=False, cls=None, data_exception=None):
    """Routes cls's (default: Metaflow's ContentAddressedStore) hashing,
    packing and unpacking through cas.h. version: the cas_version new blobs
    get (1 gzip, 2 LZ4 frame). verify: rehash loaded blobs. Raises ImportError
    when cas_h / libcas.so cannot load. Calling it again reconfigures."""
    if version not in (1, 2):
        raise ValueError("cas_version must be 1 or 2, not %r" % (version,))
    import cas_h  # ImportError (with what it tried) when libcas.so is missing

    if cls is None:
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
        "_unpack_v1": _decoder(cas_h, V1_META),
        "_unpack_v2": _decoder(cas_h, V2_META),
        "_unpack_backward_compatible": _decoder(cas_h, None),
    }
    if _save_blobs_compatible(current_save):
        new["save_blobs"] = _save_blobs(cas_h, version)
    else:
        # an interface this extension was not written for: keep Metaflow's
        # save_blobs (it still compresses through the patched _pack_v1)
        _warn("%s.save_blobs has an unknown signature; writes keep Metaflow's own save_blobs%s"
              % (cls.__name__, " and its cas_version (METAFLOW_CAS_H_VERSION=2 ignored)" if version == 2 else ""))
    if verify:
        new["load_blobs"] = _verifying_load_blobs(cas_h, current_load, data_exception)
    for name, fn in new.items():
        fn.__name__ = name
        fn.__qualname__ = "%s.%s" % (cls.__name__, name)
        fn._cas_h = True
        setattr(cls, name, fn)
    _originals[cls] = saved
    _settings[cls] = (version, verify)
    return True


def uninstall(cls=None):
    """Puts back exactly what the class had before install()."""
    if cls is None:
        cls = _metaflow_classes()[0]
    saved = _originals.pop(cls, None)
    _settings.pop(cls, None)
    if saved is None:
        return False
    for name, value in saved.items():
        if value is _MISSING:
            if name in cls.__dict__:
                delattr(cls, name)
        else:
            setattr(cls, name, value)
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
