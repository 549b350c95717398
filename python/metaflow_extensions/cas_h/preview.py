"""Previews of artifacts for notebooks and UI backends: the first N decoded
bytes of an artifact of any size, decoding no further (cas.h streams the blob
through a fixed window and stops once N bytes are out).

  from metaflow import Step
  from metaflow_extensions.cas_h.preview import preview_artifact
  head = preview_artifact(Step("MyFlow/12/train").task["model"], 4096)

  preview_blob(flow_datastore.ca_store, key, 4096)   # any ContentAddressedStore
  preview_local(".metaflow", "MyFlow/12/train/3", "model", 4096)  # no Metaflow needed

Works whatever the extension's switch says and whatever Metaflow release is
in use (v1, v2, raw and sidecar-less blobs). The bytes are the head of the
pickle: pickletools.dis or a hex dump show what it holds without unpickling
(and without running anything the pickle would import).
"""

import cas_h

__all__ = ["preview_blob", "preview_artifact", "preview_local"]


def _data_exception():
    try:
        from metaflow.datastore.exceptions import DataException

        return DataException
    except ImportError:  # used without Metaflow
        return cas_h.CasError


def preview_blob(ca_store, key, n=4096):
    """The first n decoded bytes of blob `key` of a Metaflow
    ContentAddressedStore, on any storage. The storage fetches the blob as it
    always does (S3, Azure and GCS download it to a temporary file); only n
    bytes of it are decoded. Errors are DataException in Metaflow's words."""
    storage = ca_store._storage_impl
    path = storage.path_join(ca_store._prefix, key[:2], key)
    with storage.load_bytes([path]) as loaded:
        for path_key, local_path, meta in loaded:
            if local_path is None:
                raise _data_exception()("Could not find artifact '%s'" % path_key)
            try:
                with open(local_path, "rb") as f, cas_h.open_blob(f, meta=meta, name=path_key) as r:
                    return r.read(n)
            except cas_h.CasError as e:
                raise _data_exception()(str(e)) from None
    raise _data_exception()("Could not find artifact '%s'" % path)


def preview_artifact(artifact, n=4096):
    """The first n decoded bytes (the head of the pickle) of a Metaflow client
    DataArtifact, e.g. Task("F/1/start/2")["x"], on any datastore."""
    from metaflow.datastore import FlowDataStore
    from metaflow.plugins import DATASTORES

    obj = artifact._object
    location = obj["location"]
    if not location.startswith(":root:"):
        raise ValueError("artifact %s predates datastore roots (location %r); preview_blob needs its store"
                         % (artifact.pathspec, location))
    impls = [d for d in DATASTORES if d.TYPE == obj["ds_type"]]
    if not impls:
        raise ValueError("no Metaflow datastore of type %r" % obj["ds_type"])
    flow_ds = FlowDataStore(flow_name=artifact.path_components[0], environment=None, storage_impl=impls[0],
                            ds_root=location[len(":root:"):])
    return preview_blob(flow_ds.ca_store, obj["sha"], n)


def preview_local(root, pathspec, name, n=4096):
    """The first n decoded bytes of artifact `name` of task "Flow/run/step/task"
    in a local datastore root (the .metaflow directory), without Metaflow."""
    with cas_h.Store(root) as store, store.open_artifact(pathspec, name) as r:
        return r.read(n)
