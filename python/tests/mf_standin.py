"""A stand-in for the slice of Metaflow the cas_h extension touches, so CI can
test the extension without Metaflow (which is not installable here).

Written for these tests from Metaflow's documented behaviour (the datastore
layout and read rules in ../shared/docs/FORMAT.md, the public shape of
ContentAddressedStore.save_blobs / load_blobs); it contains no Metaflow code.
It mirrors what matters to the extension:

- ContentAddressedStore(prefix, storage) with save_blobs(blob_iter, raw=False,
  len_hint=0, is_transfer=False) -> [save_blobs_result(uri, key)] and
  load_blobs(keys, force_raw=False, is_transfer=False) -> iterator of
  (key, bytes) or (key, bytes, meta), dispatching on the sidecar to
  self._unpack_v<N>(fileobj) / self._unpack_backward_compatible(fileobj) and
  wrapping failures in DataException with Metaflow's wording;
- a LocalStorage-like backend: blobs under <root>/<path>, sidecars in
  <path>_meta (json.dumps), load_bytes yielding (path, local file, meta);
- StandInStoreV2: the same store as Metaflow PR #3090 changes it (writes
  cas_version 2 with lz4.frame, reads it back).
"""

import gzip
import hashlib
import io
import json
import os
from collections import namedtuple

import lz4.frame


class DataException(Exception):
    pass


class _Closing(object):
    def __init__(self, value):
        self.value = value

    def __enter__(self):
        return self.value

    def __exit__(self, *exc):
        return False


class LocalBackend(object):
    """Files under a root directory; metadata in a `<file>_meta` JSON file."""

    TYPE = "local"

    def __init__(self, root):
        self.datastore_root = root
        self.saved = []  # (path, meta) in the order written, for the tests

    @staticmethod
    def path_join(*parts):
        if not parts:
            return ""
        return "/".join([parts[0].rstrip("/")] + [p.strip("/") for p in parts[1:]])

    @staticmethod
    def path_split(path):
        return path.split("/")

    def full_uri(self, path):
        return self.path_join(self.datastore_root, path)

    def is_file(self, paths):
        return [os.path.isfile(self.full_uri(p)) for p in paths]

    def save_bytes(self, items, overwrite=False, len_hint=0):
        for path, value in items:
            fileobj, meta = value if isinstance(value, tuple) else (value, None)
            target = self.full_uri(path)
            if not overwrite and os.path.exists(target):
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as out:
                out.write(fileobj.read())
            if meta:
                with open(target + "_meta", "w") as out:
                    out.write(json.dumps(meta))
            self.saved.append((path, meta))

    def load_bytes(self, paths):
        def gen():
            for path in paths:
                target = self.full_uri(path)
                if not os.path.exists(target):
                    yield path, None, None
                    continue
                meta = None
                if os.path.exists(target + "_meta"):
                    with open(target + "_meta") as f:
                        meta = json.load(f)
                yield path, target, meta

        return _Closing(gen())


class ContentAddressedStore(object):
    """Metaflow 2.19's interface and behaviour: gzip (cas_version 1) writes."""

    save_blobs_result = namedtuple("save_blobs_result", "uri key")
    WRITE_VERSION = 1

    def __init__(self, prefix, storage_impl):
        self._prefix = prefix
        self._storage_impl = storage_impl
        self.TYPE = storage_impl.TYPE
        self._blob_cache = None

    def set_blob_cache(self, blob_cache):
        self._blob_cache = blob_cache

    def _path(self, key):
        return self._storage_impl.path_join(self._prefix, key[:2], key)

    def save_blobs(self, blob_iter, raw=False, len_hint=0, is_transfer=False):
        out = []
        storage = self._storage_impl

        def items():
            for item in blob_iter:
                if is_transfer:
                    key, data, _meta = item
                    path = self._path(key)
                    out.append(self.save_blobs_result(storage.full_uri(path), key))
                    yield path, (io.BytesIO(data), {"cas_raw": True, "cas_version": 1})
                    continue
                key = hashlib.sha1(item).hexdigest()
                path = self._path(key)
                out.append(self.save_blobs_result(storage.full_uri(path) if raw else None, key))
                if storage.is_file([path])[0]:
                    continue
                if raw:
                    yield path, (io.BytesIO(item), {"cas_raw": True, "cas_version": 1})
                elif self.WRITE_VERSION == 2:
                    yield path, (self._pack_v2(item), {"cas_raw": False, "cas_version": 2})
                else:
                    yield path, (self._pack_v1(item), {"cas_raw": False, "cas_version": 1})

        storage.save_bytes(items(), overwrite=True, len_hint=len_hint)
        return out

    def load_blobs(self, keys, force_raw=False, is_transfer=False):
        wanted = []
        for key in keys:
            cached = self._blob_cache.load_key(key) if self._blob_cache else None
            if cached is not None:
                yield (key, cached, {"cas_raw": False, "cas_version": 1}) if is_transfer else (key, cached)
            else:
                wanted.append(self._path(key))
        with self._storage_impl.load_bytes(wanted) as loaded:
            for path, local, meta in loaded:
                key = self._storage_impl.path_split(path)[-1]
                with open(local, "rb") as f:
                    if force_raw or (meta and meta.get("cas_raw", False)):
                        data = f.read()
                    else:
                        if meta is None:
                            decode = self._unpack_backward_compatible
                        else:
                            version = meta.get("cas_version", -1)
                            if version == -1:
                                raise DataException("Could not extract encoding version for '%s'" % path)
                            decode = getattr(self, "_unpack_v%d" % version, None)
                            if decode is None:
                                raise DataException(
                                    "Unknown encoding version %d for '%s' -- the artifact is either corrupt or "
                                    "you need to update Metaflow to the latest version" % (version, path))
                        try:
                            data = decode(f)
                        except Exception as e:
                            raise DataException("Could not unpack artifact '%s': %s" % (path, e))
                if self._blob_cache:
                    self._blob_cache.store_key(key, data)
                yield (key, data, meta) if is_transfer else (key, data)

    def _unpack_backward_compatible(self, blob):
        return self._unpack_v1(blob)

    def _pack_v1(self, blob):
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=3) as g:
            g.write(blob)
        buf.seek(0)
        return buf

    def _unpack_v1(self, blob):
        with gzip.GzipFile(fileobj=blob, mode="rb") as g:
            return g.read()


class StandInStoreV2(ContentAddressedStore):
    """The store as Metaflow PR #3090 changes it: LZ4 frame writes, v2 reads."""

    WRITE_VERSION = 2

    def _pack_v2(self, blob):
        return io.BytesIO(lz4.frame.compress(blob))

    def _unpack_v2(self, blob):
        return lz4.frame.decompress(blob.read())


class DictBlobCache(object):
    def __init__(self):
        self.d = {}

    def load_key(self, key):
        return self.d.get(key)

    def store_key(self, key, blob):
        self.d[key] = blob
