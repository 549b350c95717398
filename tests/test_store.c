/* Store tests: filled in with the store. */
static void test_store_open(void) {
    cas_store *s;
    char err[256];
    CHECK(cas_store_open(&s, "/nonexistent/cas-root", NULL, err, sizeof err) == CAS_E_NOTFOUND);
    (void)t_write_file;
}
static test_case store_tests[] = {{"store_open", test_store_open}};
