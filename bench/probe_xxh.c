/* probe_xxh.c - one XXH3-128 entry point per build flavour, for probes.c:
 * compiled three times by probes.py (-DFLAVOUR=sse2 / avx2 with -mavx2 / lib). */
#include <stddef.h>
#ifdef XXH_FROM_LIB
#include <xxhash.h>
#include <xxh_x86dispatch.h>
size_t probe_xxh_lib(const void *p, size_t n) {
    XXH128_hash_t h = XXH3_128bits_dispatch(p, n);
    return (size_t)(h.low64 & 1) + 16;
}
#else
#define XXH_INLINE_ALL
#include <xxhash.h>
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
size_t CAT(probe_xxh_, FLAVOUR)(const void *p, size_t n) {
    XXH128_hash_t h = XXH3_128bits(p, n);
    return (size_t)(h.low64 & 1) + 16;
}
#endif
