/* cas_h._speedups: the one-blob calls (pack, unpack, hash, encode) as a CPython
 * extension module, for the artifacts most steps save: small ones, where a ctypes
 * call's own price (argument conversion, libffi, the GIL handoff: 1-2 us) is
 * more than the work.
 *
 * It links nothing of cas.h. cas_h hands it, once, the addresses of the libcas
 * functions ctypes already loaded (bind), so the shim and the ctypes binding
 * always call the one library the package chose (CAS_H_LIBRARY included), and
 * the writer and reader handles passed in are that library's. cas.h is included
 * for its prototypes alone: each pointer's type is checked against them.
 *
 * Contract of every call: a status (a Python int, < 0 an error, or
 * CAS_NEED_OUTPUT) comes back where the C call failed, and cas_h words the error
 * from the handle's message as it does on its ctypes path; None when the input is
 * no contiguous buffer (cas_h's general path says why). The shim itself raises
 * only for its own arguments (TypeError, ValueError) and MemoryError. Work on less than
 * SP_KEEP_GIL bytes keeps the GIL (shorter than handing it over); the rest runs
 * without it, on the caller's own handle (cas_h keeps one per thread). The
 * scratch buffer is used only while the GIL is held.
 *
 * Built by the Makefile (make) and by setup.py (pip) when Python.h is there
 * (Debian: python3-dev); without it cas_h makes the same calls through ctypes. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "cas.h"

#define SP_KEEP_GIL (64 << 10)
/* call, keeping the GIL for less than SP_KEEP_GIL bytes of work: the rule, in one place */
#define SP_RUN(work, call)               \
    do {                                 \
        if ((work) < SP_KEEP_GIL) {      \
            call;                        \
        } else {                         \
            Py_BEGIN_ALLOW_THREADS call; \
            Py_END_ALLOW_THREADS         \
        }                                \
    } while (0)
/* a small blob without a stated size decodes here first (then one copy out) */
#define SP_SCRATCH (64 << 10)

typedef int (*sp_pack_fn)(cas_writer *, const void *, size_t, void *, size_t, size_t *, char *);
typedef size_t (*sp_bound_fn)(int, size_t);
typedef int (*sp_hash_fn)(int, const void *, size_t, char *);
typedef int (*sp_encode_fn)(cas_codec *, const void *, size_t, void *, size_t, size_t *);
typedef int (*sp_begin_fn)(cas_reader *, const char *, size_t, const char *, const char *);
typedef int (*sp_size_fn)(cas_reader *, const void *, size_t, uint64_t *);
typedef int (*sp_into_fn)(cas_reader *, const void *, size_t, void *, size_t, size_t *);

/* The functions, in bind()'s argument order; each type checked against cas.h. */
#define SP_FUNCTIONS(X)                   \
    X(sp_pack_fn, cas_pack)               \
    X(sp_bound_fn, cas_pack_bound)        \
    X(sp_hash_fn, cas_hash)               \
    X(sp_encode_fn, cas_codec_encode_all) \
    X(sp_bound_fn, cas_encode_bound)      \
    X(sp_begin_fn, cas_reader_begin)      \
    X(sp_size_fn, cas_reader_size_hint)   \
    X(sp_into_fn, cas_reader_unpack_into)

#define SP_DECLARE(type, name) static type sp_##name;
SP_FUNCTIONS(SP_DECLARE)

static unsigned char sp_scratch[SP_SCRATCH];

/* A function's address as ctypes gives it: cast(lib.f, c_void_p).value. */
static int sp_address(PyObject *o, uintptr_t *out) {
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (PyErr_Occurred()) return -1;
    if (!v) {
        PyErr_SetString(PyExc_ValueError, "bind: a NULL function address");
        return -1;
    }
    *out = (uintptr_t)v;
    return 0;
}

static PyObject *sp_bind(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t i = 0;
    uintptr_t a;
    (void)self;
#define SP_COUNT(type, name) +1
    if (nargs != 0 SP_FUNCTIONS(SP_COUNT)) {
        PyErr_Format(PyExc_TypeError, "bind takes %d function addresses", 0 SP_FUNCTIONS(SP_COUNT));
        return NULL;
    }
    /* sizeof does not evaluate its operand: the assignment type-checks each pointer
     * against cas.h's prototype without referring to the symbol */
#define SP_SET(type, name)                          \
    if (sp_address(args[i++], &a) < 0) return NULL; \
    (void)sizeof(sp_##name = name);                 \
    sp_##name = (type)a;
    SP_FUNCTIONS(SP_SET)
    Py_RETURN_NONE;
}

static int sp_bound(void) {
    if (sp_cas_pack) return 1;
    PyErr_SetString(PyExc_RuntimeError, "cas_h._speedups: bind() was not called");
    return 0;
}

/* A C pointer from a Python int (a ctypes handle's .value). */
static void *sp_handle(PyObject *o) {
    void *p = PyLong_AsVoidPtr(o);
    if (!p && !PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a NULL handle");
    return p;
}

/* bytes or None as a C string (sidecar JSON, a name, a key). */
static int sp_opt_bytes(PyObject *o, const char **p, size_t *n) {
    if (o == Py_None) {
        *p = NULL, *n = 0;
        return 0;
    }
    if (!PyBytes_Check(o)) {
        PyErr_Format(PyExc_TypeError, "expected bytes or None, not %.100s", Py_TYPE(o)->tp_name);
        return -1;
    }
    *p = PyBytes_AS_STRING(o), *n = (size_t)PyBytes_GET_SIZE(o);
    return 0;
}

/* The input's contiguous bytes. Anything else (a str, a strided array) is left to
 * cas_h's general path, which words the TypeError: the call returns None. */
static int sp_input(PyObject *o, Py_buffer *in) {
    if (PyObject_GetBuffer(o, in, PyBUF_SIMPLE) == 0) return 0;
    PyErr_Clear();
    return -1;
}

/* A bytes object of n bytes to be filled in place, or NULL (MemoryError). */
static PyObject *sp_new_bytes(size_t n) {
    if (n > (size_t)PY_SSIZE_T_MAX) return PyErr_NoMemory();
    return PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
}

/* out, filled with its first n bytes: cut to n in place. */
static PyObject *sp_cut(PyObject *out, size_t n) {
    if ((Py_ssize_t)n != PyBytes_GET_SIZE(out) && _PyBytes_Resize(&out, (Py_ssize_t)n) < 0) return NULL;
    return out;
}

/* The input and a bytes object of bound(id, its length) bytes for C to fill: 1; 0
 * when the input is no buffer (the call answers None); -1 with an exception set. */
static int sp_in_out(PyObject *arg, sp_bound_fn bound, int id, Py_buffer *in, PyObject **out, size_t *cap) {
    if (sp_input(arg, in) < 0) return 0;
    *cap = bound(id, (size_t)in->len);
    if (!(*out = sp_new_bytes(*cap ? *cap : 1))) {
        PyBuffer_Release(in);
        return -1;
    }
    return 1;
}

/* After C filled out: out cut to len, or the status rc (out dropped). */
static PyObject *sp_filled(PyObject *out, int rc, size_t len) {
    if (rc != CAS_OK) {
        Py_DECREF(out);
        return PyLong_FromLong(rc);
    }
    return sp_cut(out, len);
}

/* pack(writer, format, data) -> (key, blob) | status */
static PyObject *sp_pack(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer in;
    cas_writer *w;
    PyObject *out = NULL, *key_obj;
    char key[CAS_KEY_BUF];
    size_t cap = 0, len = 0;
    int fmt, rc;
    (void)self;
    if (!_PyArg_CheckPositional("pack", nargs, 3, 3) || !sp_bound()) return NULL;
    if (!(w = (cas_writer *)sp_handle(args[0]))) return NULL;
    if ((fmt = _PyLong_AsInt(args[1])) == -1 && PyErr_Occurred()) return NULL;
    if ((rc = sp_in_out(args[2], sp_cas_pack_bound, fmt, &in, &out, &cap)) <= 0) {
        if (rc < 0) return NULL;
        Py_RETURN_NONE;
    }
    SP_RUN(in.len, rc = sp_cas_pack(w, in.buf, (size_t)in.len, PyBytes_AS_STRING(out), cap, &len, key));
    PyBuffer_Release(&in);
    if (!(out = sp_filled(out, rc, len)) || rc != CAS_OK) return out;
    if (!(key_obj = PyUnicode_DecodeASCII(key, (Py_ssize_t)strlen(key), NULL))) {
        Py_DECREF(out);
        return NULL;
    }
    return Py_BuildValue("(NN)", key_obj, out);
}

/* hash(algo, data) -> key | status */
static PyObject *sp_hash(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer in;
    char key[CAS_KEY_BUF];
    int algo, rc;
    (void)self;
    if (!_PyArg_CheckPositional("hash", nargs, 2, 2) || !sp_bound()) return NULL;
    if ((algo = _PyLong_AsInt(args[0])) == -1 && PyErr_Occurred()) return NULL;
    if (sp_input(args[1], &in) < 0) Py_RETURN_NONE;
    SP_RUN(in.len, rc = sp_cas_hash(algo, in.buf, (size_t)in.len, key));
    PyBuffer_Release(&in);
    if (rc != CAS_OK) return PyLong_FromLong(rc);
    return PyUnicode_DecodeASCII(key, (Py_ssize_t)strlen(key), NULL);
}

/* encode(encoder, codec, data) -> blob | status: an encoder of cas_encoder_create,
 * kept by the caller (making one per call costs more than a small blob's work). */
static PyObject *sp_encode(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer in;
    PyObject *out = NULL;
    cas_codec *c;
    size_t cap = 0, len = 0;
    int codec, rc;
    (void)self;
    if (!_PyArg_CheckPositional("encode", nargs, 3, 3) || !sp_bound()) return NULL;
    if (!(c = (cas_codec *)sp_handle(args[0]))) return NULL;
    if ((codec = _PyLong_AsInt(args[1])) == -1 && PyErr_Occurred()) return NULL;
    if ((rc = sp_in_out(args[2], sp_cas_encode_bound, codec, &in, &out, &cap)) <= 0) {
        if (rc < 0) return NULL;
        Py_RETURN_NONE;
    }
    SP_RUN(in.len, rc = sp_cas_codec_encode_all(c, in.buf, (size_t)in.len, PyBytes_AS_STRING(out), cap, &len));
    PyBuffer_Release(&in);
    return sp_filled(out, rc, len);
}

/* unpack(reader, meta, blob, name, key) -> bytes | status
 * The blob's stated size (cas_reader_size_hint: only a size the codec can
 * produce from these bytes) sizes the bytes object C decodes into, in place;
 * a blob that states none decodes into the scratch buffer and is copied out.
 * CAS_NEED_OUTPUT: the blob lied about its size or needs more than the scratch
 * (cas_h then takes its growing path); the reader must be begun again. */
static PyObject *sp_unpack(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer in;
    cas_reader *r;
    PyObject *out = NULL;
    const char *meta, *name, *key;
    size_t meta_len, name_len, key_len, len = 0;
    uint64_t hint = 0;
    int rc;
    (void)self;
    if (!_PyArg_CheckPositional("unpack", nargs, 5, 5) || !sp_bound()) return NULL;
    if (!(r = (cas_reader *)sp_handle(args[0]))) return NULL;
    if (sp_opt_bytes(args[1], &meta, &meta_len) < 0 || sp_opt_bytes(args[3], &name, &name_len) < 0 ||
        sp_opt_bytes(args[4], &key, &key_len) < 0)
        return NULL;
    if ((rc = sp_cas_reader_begin(r, meta, meta_len, name, key)) < 0) return PyLong_FromLong(rc);
    if (sp_input(args[2], &in) < 0) Py_RETURN_NONE;
    if (sp_cas_reader_size_hint(r, in.buf, (size_t)in.len, &hint) == CAS_OK && hint <= (uint64_t)PY_SSIZE_T_MAX) {
        if (!(out = sp_new_bytes((size_t)hint))) { /* the general path sizes it its own way, and words a failure */
            PyErr_Clear();
            PyBuffer_Release(&in);
            return PyLong_FromLong(CAS_NEED_OUTPUT);
        }
        SP_RUN(hint + (uint64_t)in.len,
               rc = sp_cas_reader_unpack_into(r, in.buf, (size_t)in.len, PyBytes_AS_STRING(out), (size_t)hint, &len));
        if (rc == CAS_OK) out = sp_cut(out, len);
    } else {
        rc = sp_cas_reader_unpack_into(r, in.buf, (size_t)in.len, sp_scratch, sizeof sp_scratch, &len);
        if (rc == CAS_OK) out = PyBytes_FromStringAndSize((const char *)sp_scratch, (Py_ssize_t)len);
    }
    PyBuffer_Release(&in);
    if (rc == CAS_OK) return out;
    Py_XDECREF(out);
    return PyLong_FromLong(rc < 0 ? rc : CAS_NEED_OUTPUT);
}

static PyMethodDef sp_methods[] = {
    {"bind", (PyCFunction)(void (*)(void))sp_bind, METH_FASTCALL,
     "bind(*addresses): the libcas functions to call, in the shim's order (cas_h._lib does this)"},
    {"pack", (PyCFunction)(void (*)(void))sp_pack, METH_FASTCALL,
     "pack(writer, format, data) -> (key, blob), or a cas status"},
    {"hash", (PyCFunction)(void (*)(void))sp_hash, METH_FASTCALL, "hash(algo, data) -> key, or a cas status"},
    {"encode", (PyCFunction)(void (*)(void))sp_encode, METH_FASTCALL,
     "encode(encoder, codec, data) -> blob, or a cas status"},
    {"unpack", (PyCFunction)(void (*)(void))sp_unpack, METH_FASTCALL,
     "unpack(reader, meta, blob, name, key) -> bytes, or a cas status"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef sp_module = {PyModuleDef_HEAD_INIT,
                                       "_speedups",
                                       "cas.h's one-blob calls without ctypes (internal to cas_h)",
                                       -1,
                                       sp_methods,
                                       NULL,
                                       NULL,
                                       NULL,
                                       NULL};

PyMODINIT_FUNC PyInit__speedups(void) {
    PyObject *m = PyModule_Create(&sp_module);
    if (!m) return NULL;
#define SP_NAME(type, name) " " #name
    if (PyModule_AddStringConstant(m, "FUNCTIONS", &(SP_FUNCTIONS(SP_NAME))[1]) < 0 ||
        PyModule_AddIntConstant(m, "KEEP_GIL", SP_KEEP_GIL) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
