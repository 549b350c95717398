/* ---- keys ---------------------------------------------------------------- */

#define CAS_HASH_SHA1 1 /* Metaflow's key: 40 hex */
#define CAS_HASH_XXH3 2 /* XXH3-128: 32 hex, ~10x faster, not Metaflow-compatible */
#ifdef CAS_USE_XXH3_KEYS
#define CAS_HASH_DEFAULT CAS_HASH_XXH3
#else
#define CAS_HASH_DEFAULT CAS_HASH_SHA1
#endif
#define CAS_KEY_MAX 40
#define CAS_KEY_BUF 41

CASDEF int cas_hash_available(int algo);
/* 40 for SHA-1, 32 for XXH3-128, 0 for anything else. */
CASDEF size_t cas_key_length(int algo);
/* CAS_OK when key[0..len) is exactly the hex length of a known hash and
 * lowercase hex; CAS_E_KEY otherwise. Tells the algorithm through *algo (nullable). */
CASDEF int cas_key_check(const char *key, size_t len, int *algo);

typedef struct cas_hasher cas_hasher;
CASDEF int cas_hasher_create(cas_hasher **out, int algo, const cas_allocator *alloc);
CASDEF int cas_hasher_update(cas_hasher *h, const void *data, size_t n);
/* Writes the hex key and a NUL. The hasher must be reset before reuse. */
CASDEF int cas_hasher_final(cas_hasher *h, char key[CAS_KEY_BUF]);
CASDEF int cas_hasher_reset(cas_hasher *h);
CASDEF void cas_hasher_free(cas_hasher *h);
CASDEF int cas_hash(int algo, const void *data, size_t n, char key[CAS_KEY_BUF]);
