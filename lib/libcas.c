/* The implementation for libcas.so / libcas.a: cas.h with its object-store
 * backends (cas_cloud.h) and the pickle preview (cas_pickle.h), so that the
 * library, `cas` and the Python binding open s3:// roots as they open local
 * ones, and show any artifact's value. -DCAS_NO_CLOUD leaves the object stores
 * (and libcurl, expat) out. */
#define CAS_IMPLEMENTATION
#ifndef CAS_NO_CLOUD
#define CAS_CLOUD_IMPLEMENTATION
#include "../cas_cloud.h"
#endif
#define CAS_PICKLE_IMPLEMENTATION
#include "../cas_pickle.h"
