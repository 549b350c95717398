"""Reads every artifact of every CasFlow run through the Metaflow client and
prints, per run, how many were read and a digest of the unpickled values (the
same digest from two readers = the same artifacts)."""
import hashlib
import pickle

from metaflow import Flow, namespace

namespace(None)
try:
    from metaflow_extensions.cas_h import cas_store

    state = cas_store.installed()
except ImportError:
    state = "extension not on PYTHONPATH"
print("  reader: cas.h installed = %s" % (state,))
for run in Flow("CasFlow").runs():
    h = hashlib.sha1()
    n = 0
    try:
        values = {}  # (step/task, name) -> digest: a foreach's tasks are listed in no set order
        for step in run:
            for task in step:
                for art in task.artifacts:
                    values[task.pathspec.split("/", 2)[2], art.id] = hashlib.sha1(
                        pickle.dumps(art.data, protocol=4)).hexdigest()
                    n += 1
        for k in sorted(values):
            h.update(("%s %s %s\n" % (k[0], k[1], values[k])).encode())
        print("  run %s: %d artifacts read, digest %s" % (run.id, n, h.hexdigest()[:16]))
    except Exception as e:
        print("  run %s: FAILED after %d artifacts: %s: %s" % (run.id, n, type(e).__name__, e))
if state not in (None, "extension not on PYTHONPATH"):
    print("  reader: object stores read through cas.h: %s" % (
        sorted(i[1] for i, v in cas_store._Remote.stores.items() if v is not None) or "none"))
