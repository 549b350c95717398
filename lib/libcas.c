/* The implementation for libcas.so / libcas.a. */
#define CAS_IMPLEMENTATION
#include "../cas.h"
