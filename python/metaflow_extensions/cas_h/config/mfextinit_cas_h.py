# Metaflow configuration values of the cas_h extension. from_conf reads the
# environment (METAFLOW_CAS_H=1), then the project's and the user's Metaflow
# config files; values that differ from the default are forwarded to remote
# tasks (Batch, Kubernetes, Argo...) like every other Metaflow setting.
from metaflow.metaflow_config_funcs import from_conf

# Switch: hash, pack and unpack artifacts through cas.h (libcas.so).
CAS_H = from_conf("CAS_H", False)
# The cas_version new blobs get: 1 = gzip (every Metaflow reads it), 2 = LZ4
# frame (readers need cas.h or Metaflow PR #3090).
CAS_H_VERSION = from_conf("CAS_H_VERSION", 1)
# Rehash every loaded artifact against its key (Metaflow never does).
CAS_H_VERIFY = from_conf("CAS_H_VERIFY", False)
# MiB of small decoded blobs (up to 1 MiB each) kept in memory per process when
# reading from S3 or Azure: a run's tasks share most small artifacts (0: none).
CAS_H_CACHE_MB = from_conf("CAS_H_CACHE_MB", 64)
