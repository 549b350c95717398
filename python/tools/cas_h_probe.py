# Imported by casflow.py's end step: says whether cas.h served that task.
try:
    from metaflow_extensions.cas_h import cas_store

    print("cas_h installed in this task:", cas_store.installed(), "; object stores through cas.h:",
          sorted(ident[1] for ident, store in cas_store._Remote.stores.items() if store is not None) or "none")
except ImportError as e:
    print("cas_h extension not importable:", e)
