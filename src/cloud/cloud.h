/* A backend for an object-store URL: "s3://bucket[/prefix]" or
 * "azure://container[/prefix]". Settings come from
 * the environment and config files as listed above. The backend is usually
 * handed straight to cas_store_open_backend; cas_store_open does this for you. */
CASDEF int cas_cloud_backend(cas_backend *out, const char *url, const cas_allocator *alloc, char *err, size_t errcap);
/* Adds cas_cloud_backend for the s3 and azure schemes through add: cas.h calls it
 * with its own adder before the first URL root opens (a scheme the user registered
 * stays theirs); cas_cloud_register(cas_backend_register) makes them win instead. */
CASDEF int cas_cloud_register(int (*add)(const char *scheme, cas_backend_opener open));
