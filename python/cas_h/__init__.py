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

Modules (this file only re-exports their public names): codec (keys, pack,
unpack, one blob or many), streams (file-like readers), store (a datastore
root, tasks), previews (values without unpickling), errors; _core and _lib are
what they share (constants, conversions, loading libcas.so).

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

# Re-exports (noqa: F401 throughout): the public names, and _tls, which tests clear.
from . import _lib, errors
from ._core import (LEGACY, RAW, SHA1, V1, V2, XXH3, format_name, meta_format, sidecar,  # noqa: F401
                    sidecar_json, status_name, strerror)
from ._lib import lib as _c
from .codec import (Packer, Unpacker, _tls, compress, hash_available, hash_key, pack, pack_bound,  # noqa: F401
                    pack_into, pack_many, size_hint, unpack, unpack_into, unpack_many, unpack_v2_fd, unpack_v2_fd_many,
                    decoded_sizes)
from .errors import *  # noqa: F401,F403
from .previews import preview, preview_pickle  # noqa: F401
from .store import Artifact, BlobStat, FileEntry, Run, Step, Store, Task, TaskInfo  # noqa: F401
from .streams import Reader, head, open_blob  # noqa: F401

__all__ = [
    "V1", "V2", "RAW", "LEGACY", "SHA1", "XXH3", "hash_available",
    "pack", "pack_into", "pack_bound", "compress", "unpack", "unpack_into", "pack_many", "unpack_many",
    "unpack_v2_fd", "unpack_v2_fd_many", "decoded_sizes",
    "size_hint",
    "hash_key", "sidecar", "sidecar_json",
    "meta_format", "format_name", "strerror", "status_name", "Packer", "Unpacker", "Store", "Reader",
    "Task", "Artifact", "BlobStat", "Run", "Step", "TaskInfo", "FileEntry", "open_blob", "head", "preview",
    "preview_pickle", "library_path", "errors",
] + errors.__all__

# The cas_allocator every C object is created with (a ctypes pointer to one),
# None for malloc/free. Tests set a counting one to prove nothing leaks (each
# module reads it from here when it creates an object).
_ALLOC = None

__version__ = _c.cas_version_string().decode()
library_path = _lib.path
