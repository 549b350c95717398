"""Save + load through the ctypes binding (python/cas_h), as the Metaflow
extension calls it: cas_h.pack(data, version) -> (key, blob), then
cas_h.unpack(blob, meta) with the sidecar dict read back from the store."""


class Paths:
    def __init__(self, cas_h):
        self.cas_h = cas_h

    def get(self, name, data):
        cas_h = self.cas_h
        if name not in ("rt_v1", "rt_v2"):
            return None
        version = 1 if name == "rt_v1" else 2
        meta = cas_h.sidecar(version)
        key, blob = cas_h.pack(data, version=version)
        if cas_h.unpack(blob, meta) != data:
            raise AssertionError("cas_h round trip (v%d) does not give the payload back" % version)

        def roundtrip():
            key, blob = cas_h.pack(data, version=version)
            return cas_h.unpack(blob, meta)

        return roundtrip


def make(cas_h):
    for attr in ("pack", "unpack", "sidecar"):
        if not hasattr(cas_h, attr):
            return None, "cas_h has no %s() yet" % attr
    return Paths(cas_h), "cas_h %s from %s" % (getattr(cas_h, "__version__", "?"),
                                               getattr(cas_h, "library_path", "?"))
