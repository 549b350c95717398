# Loaded by `import metaflow` (see mfextinit_cas_h.py). Metaflow copies this
# module's public names into the `metaflow` namespace, so it defines none:
# it only patches ContentAddressedStore when METAFLOW_CAS_H is on.
import importlib as __importlib

__importlib.import_module("metaflow_extensions.cas_h.cas_store").install_from_config()
