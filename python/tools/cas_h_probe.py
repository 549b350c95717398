# Imported by casflow.py's end step: says whether cas.h served that task.
try:
    from metaflow_extensions.cas_h import cas_store

    print("cas_h installed in this task:", cas_store.installed())
except ImportError as e:
    print("cas_h extension not importable:", e)
