/* ---- parameters beyond the codecs' (the same bounds table, one check) ----- */

static int cas__hash_built(int64_t v) { return cas_hash_available((int)v) ? CAS_OK : CAS_E_UNSUPPORTED; }

static const cas__param_row cas__params[] = {
    CAS__PARAM(CAS_PARAM_HASH, CAS__FOR_WRITER | CAS__FOR_STORE, CAS_HASH_SHA1, CAS_HASH_XXH3, cas__hash_built),
    CAS__PARAM(CAS_PARAM_THREADS, CAS__FOR_WRITER, 1, 2, NULL),
    CAS__PARAM(CAS_PARAM_LIMIT, CAS__FOR_READER | CAS__FOR_STORE, 0, INT64_MAX, NULL),
    CAS__PARAM(CAS_PARAM_EXPECT_SIZE, CAS__FOR_READER, -1, INT64_MAX, NULL),
};

/* Any parameter's row: cas.h's, else the codecs'; NULL when none has the id. */
static const cas__param_row *cas__param_row_of(int id) {
    const cas__param_row *r = CAS__PARAM_FIND(cas__params, id);
    return r ? r : CAS__CODEC_PARAM(id);
}
