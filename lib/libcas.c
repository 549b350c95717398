/* The implementation for libcas.so / libcas.a: cas.h with its object-store
 * backends (cas_cloud.h), so that the library, `cas` and the Python binding
 * open s3:// roots as they open local ones. */
#define CAS_IMPLEMENTATION
#define CAS_CLOUD_IMPLEMENTATION
#include "../cas_cloud.h"
