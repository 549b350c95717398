"""Shared helpers for the tests: fixture paths, the counting allocator."""

import ctypes
import json
import os
import threading

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
V1META = {"cas_raw": False, "cas_version": 1}
V2META = {"cas_raw": False, "cas_version": 2}
RAWMETA = {"cas_raw": True, "cas_version": 1}


def fixtures_root():
    """$CAS_FIXTURES (relative paths are taken from the repo root) or the
    bundled stores, tests/fixtures/metaflow."""
    root = os.environ.get("CAS_FIXTURES") or "tests/fixtures/metaflow"
    if not os.path.isabs(root):
        root = os.path.normpath(os.path.join(REPO, root))
    return root


def fixture_stores():
    """[(name, datastore root, manifest list)] for the three fixture sets; a
    missing one fails the test, naming the path (no test skips for lack of one)."""
    out = []
    root = fixtures_root()
    for name in ("v1", "v2", "mixed"):
        mf = os.path.join(root, name, "manifest.json")
        if not os.path.isfile(mf):
            raise AssertionError("fixture store missing: %s (CAS_FIXTURES=%s)" % (mf, os.environ.get("CAS_FIXTURES")))
        with open(mf) as f:
            out.append((name, os.path.join(root, name, ".metaflow"), json.load(f)))
    return out


def edge_cases():
    path = os.path.join(fixtures_root(), "v1", "edge_cases.json")
    with open(path) as f:
        return os.path.join(fixtures_root(), "v1", ".metaflow"), json.load(f)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class CountingAllocator(object):
    """A cas_allocator whose alloc/free are Python callbacks counting live
    blocks: proves every C allocation the binding causes is freed. Callbacks
    may run on C's batch threads; ctypes takes the GIL for them."""

    ALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
    FREE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)

    class Struct(ctypes.Structure):
        pass

    Struct._fields_ = [("alloc", ALLOC), ("free", FREE), ("user", ctypes.c_void_p)]

    def __init__(self):
        from cas_h import _lib

        self._malloc, self._free = _lib.malloc, _lib.free
        self.live = {}
        self.total = 0
        self.bad_frees = 0
        self._mu = threading.Lock()
        self._a = self.ALLOC(self._on_alloc)
        self._f = self.FREE(self._on_free)
        self.struct = self.Struct(self._a, self._f, None)
        self.pointer = ctypes.pointer(self.struct)

    def _on_alloc(self, user, size):
        p = self._malloc(size or 1)
        if p:
            with self._mu:
                self.live[p] = size
                self.total += 1
        return p

    def _on_free(self, user, p):
        if p:
            with self._mu:
                if self.live.pop(p, None) is None:
                    self.bad_frees += 1  # an exception here would only be printed
                    return
            self._free(p)
