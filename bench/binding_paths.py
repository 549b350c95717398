"""Save and load through the ctypes binding (python/cas_h), as the Metaflow
extension (python/metaflow_extensions/cas_h/cas_store.py) calls it, minus the
storage calls:

- rt_v1 / rt_v2: cas_h.pack(data, version) -> (key, blob), then
  cas_h.unpack(blob, meta): the smallest round trip;
- ext_save_v1 / ext_save_v2: the extension's save_blobs for a blob the store
  lacks: cas_h.hash_key(data) (the key decides whether to compress at all), then
  io.BytesIO(cas_h.compress(data, version)), what it hands to the storage;
- ext_load_v1 / ext_load_v2: the extension's _unpack_v1/_unpack_v2 (its own
  function, taken from the module) on an in-memory blob."""
import io


class Paths:
    def __init__(self, cas_h, ext):
        self.cas_h = cas_h
        self.ext = ext

    def get(self, name, data):
        cas_h = self.cas_h
        kind, _, v = name.rpartition("_v")
        if kind not in ("rt", "ext_save", "ext_load") or v not in ("1", "2"):
            return None
        version = int(v)
        meta = cas_h.sidecar(version)
        key, blob = cas_h.pack(data, version=version)
        if cas_h.unpack(blob, meta) != data or key != cas_h.hash_key(data):
            raise AssertionError("cas_h round trip (v%d) does not give the payload back" % version)

        if kind == "rt":
            def roundtrip():
                key, blob = cas_h.pack(data, version=version)
                return cas_h.unpack(blob, meta)

            return roundtrip
        if kind == "ext_save":
            def save():
                return cas_h.hash_key(data), io.BytesIO(cas_h.compress(data, version))

            return save
        if self.ext is None:
            return None
        unpack = self.ext._decoder(cas_h, meta)
        if unpack(None, blob) != data:
            raise AssertionError("the extension's _unpack_v%d does not give the payload back" % version)
        return lambda: unpack(None, blob)


def make(cas_h):
    for attr in ("pack", "unpack", "sidecar", "hash_key", "compress"):
        if not hasattr(cas_h, attr):
            return None, "cas_h has no %s() yet" % attr
    try:
        from metaflow_extensions.cas_h import cas_store as ext
    except Exception:  # the load rows need it; the others do not
        ext = None
    return Paths(cas_h, ext), "cas_h %s from %s" % (getattr(cas_h, "__version__", "?"),
                                                    getattr(cas_h, "library_path", "?"))
