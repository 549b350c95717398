CASDEF const char *cas_strerror(int code) {
    switch (code) {
#define CAS__STATUS_TEXT(name, value, text) \
    case value: return text;
        CAS_STATUS_LIST(CAS__STATUS_TEXT)
#undef CAS__STATUS_TEXT
    default: return "unknown status";
    }
}

CASDEF const char *cas_status_name(int code) {
    switch (code) {
#define CAS__STATUS_NAME(name, value, text) \
    case value: return #name;
        CAS_STATUS_LIST(CAS__STATUS_NAME)
#undef CAS__STATUS_NAME
    default: return "CAS_UNKNOWN";
    }
}

CASDEF const char *cas_version_string(void) { return CAS_VERSION_STRING; }
CASDEF int cas_version_number(void) { return CAS_VERSION_MAJOR * 10000 + CAS_VERSION_MINOR * 100 + CAS_VERSION_PATCH; }
