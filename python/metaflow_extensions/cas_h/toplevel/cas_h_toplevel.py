# Loaded by `import metaflow` (see mfextinit_cas_h.py). Metaflow copies this
# module's public names into the `metaflow` namespace, so it defines none:
# it only patches ContentAddressedStore when METAFLOW_CAS_H is on.
# __mf_extensions__ / __version__ name the extension in Metaflow's version
# string ("2.19.38+cas_h(0.1.0)").
import importlib as __importlib

__mf_extensions__ = "cas_h"
__version__ = "0.1.0"

__importlib.import_module("metaflow_extensions.cas_h.cas_store").install_from_config()
