"""An artifact's value read from its pickle, without unpickling it."""

from typing import Any, Optional, Union, cast

import os

from . import _constants as C
from ._core import _preview
from ._lib import Buffer as _Buffer, lib as _c
from .errors import InvalidName
from .store import Store
from .streams import _NO_META, head, open_blob


def preview_pickle(data: Any, json: bool = False, **limits: Optional[int]) -> Any:
    """The value of a pickle (bytes-like: the decoded artifact), as repr-like
    text or, with json=True, a JSON tree (dicts and lists). Nothing is
    unpickled or imported. Limits: max_bytes (of text, 4096), items (per
    container, 10), depth (8), max_read (decoded bytes), max_ops, max_memo,
    max_values, max_memory (bytes held, 256 MiB); a limit reached leaves a partial preview with markers ('...',
    '<truncated: ...>'). A malformed pickle raises a DecodeError whose
    .partial holds what came before the fault."""
    with _Buffer(data) as b:
        return _preview(lambda p: _c.cas_preview_bytes(p, b.addr, b.size), json, limits, "pickle")


def preview(src: Any, spec: Optional[Union[str, int]] = None, meta: Any = _NO_META, name: Optional[str] = None,
            json: bool = False, key: Optional[str] = None, encoding: Optional[str] = None,
            **limits: Optional[int]) -> Any:
    """An artifact's value without unpickling it: repr-like text, or with
    json=True a JSON tree. Reads no more of the blob than the preview needs
    (a numpy array: its first values; a DataFrame: the whole stream, skipped
    in bounded memory). Nothing is imported: numpy, pandas and the flow's
    classes are not needed.

      cas_h.preview("path/.metaflow/Flow/data/ab/ab12...")  # a blob file (its sidecar beside it)
      cas_h.preview(fileobj, meta={"cas_version": 2, ...})  # a blob in a binary file object
      cas_h.preview(store, "Flow/12/train/3/model")         # a task's artifact
      cas_h.preview(store, "Flow", key="ab12...")           # a blob of the store

    encoding: data.json's for the artifact (a task's artifact: read from
    data.json); one that is not a pickle's ("pickle-v4", "gzip+pickle-v2" are)
    is never parsed: the preview names it and shows the first bytes.

    Limits and errors as preview_pickle. (preview(src, n) with a number n,
    the 0.1.0 call, still returns the first n decoded bytes: that is head().)"""
    if isinstance(src, Store):
        if meta is not _NO_META or name is not None:
            raise TypeError("preview(store, ...) takes no meta or name")
        if not isinstance(spec, str):
            raise TypeError("preview(store, 'Flow/run/step/task/name') or preview(store, 'Flow', key=KEY)")
        if key is not None:
            return src.preview(spec, key, json=json, encoding=encoding, **cast(Any, limits))  # size is one of them
        if spec.count("/") != 4:
            raise InvalidName("%r is not Flow/run/step/task/name" % spec, C.CAS_E_NAME)
        pathspec, art = spec.rsplit("/", 1)
        return src.preview_artifact(pathspec, art, json=json, **limits)
    if spec is None and "n" in limits:  # 0.1.0's keyword
        spec = limits.pop("n")
    if spec is not None:
        import warnings

        warnings.warn("cas_h.preview(src, n) returns the first n bytes as in 0.1.0; call cas_h.head(src, n)",
                      DeprecationWarning, stacklevel=2)
        return head(src, cast(int, spec), meta, name)
    what = name or (os.fsdecode(src) if isinstance(src, (str, bytes, os.PathLike)) else "blob")
    with open_blob(src, meta, name) as reader:
        return reader._preview(json, limits, what, encoding)
