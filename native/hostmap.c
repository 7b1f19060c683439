/* hostmap.c: the host MapRef's hot path, in C (the extension broker._hostmap).
 *
 * `m[k]`, `m[k] = v`, `k in m` and `len(m)` on a host MapRef come here
 * from the interpreter's own slots (MapCore, the C base of broker.mapref's
 * MapRef) and go straight to the core's ABI operations: no Python frame, no
 * cffi argument conversion, no buffer allocated (a value is read into the
 * stack), and no error message built unless there is an error.
 *
 * Only the common case is answered here.  A closed or moved MapRef, a key
 * or value that is not exactly `bytes`, a closed or forked broker, handles
 * of garbage-collected MapRefs waiting to be closed: each goes to MapRef's
 * Python method of the same job (`_get`, `_setitem`, ...), which checks,
 * converts and raises as before.  An errno goes to `_failed`, which builds
 * the message and raises what any other host operation raises for it.  So
 * the rules stay in one place; this file only skips the way to them.
 *
 * This extension does not link to the core (broker._wm, built by cffi):
 * broker/_native/hostmap_door.py hands over the addresses of the five core
 * functions it calls (`bind`), and their types come from wm.h, so a changed
 * signature fails to compile here.  WM_H_SHA256 and WM_ABI_SHA256, the
 * hashes of the wm.h and of the broker/abi/ (whose errnos abi_gen.h holds)
 * it was compiled from, let the door refuse a build the core disagrees with.
 *
 * A Door holds the object whose going frees the C broker: no MapRef can
 * reach a freed broker, closed or not.
 *
 * The GIL is released around each call into the core, as cffi does: a
 * store function or host function on another thread may hold a core lock
 * while it waits for the GIL.
 */
#define Py_LIMITED_API 0x030B0000
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <structmember.h>

#include "abi_gen.h"
#include "wm.h"

#if !defined(WM_H_SHA256) || !defined(WM_ABI_SHA256)
#error "native/ffi_build.py defines the hashes of the wm.h and broker/abi/ this is built from"
#endif

/* Values up to this size are read into the stack; bigger ones straight
 * into the bytes object returned. */
#define STACK_VALUE 512

static struct {
    __typeof__(&wm_op_get) get;
    __typeof__(&wm_op_set) set;
    __typeof__(&wm_op_exists) exists;
    __typeof__(&wm_op_len) len;
    __typeof__(&wm_broker_host_after) host_after;
} core;

static PyTypeObject *door_type;

/* The MapRef's Python methods this file hands a case to (interned names). */
static PyObject *s_get, *s_setitem, *s_delitem, *s_contains, *s_len, *s_after_op;

/* --- Door: one broker's host module, for every MapRef of it --------------- */

typedef struct {
    PyObject_HEAD
    wm_broker *broker; /* NULL once the broker is closed (or forked) */
    wm_module *host;
    PyObject *released; /* the broker's list of finalized MapRefs' handles */
    PyObject *owner;    /* what frees the C broker when it goes: kept while a door is */
    PyObject *weakrefs; /* hostmap_door.py keeps its doors in a WeakSet */
} Door;

static int door_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
    Door *d = (Door *)self;
    unsigned long long broker, host;
    PyObject *released, *owner;
    static char *names[] = {"broker", "host", "released", "owner", NULL};
    if (d->released) {
        PyErr_SetString(PyExc_TypeError, "a Door is opened once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "KKO!O", names, &broker, &host,
                                     &PyList_Type, &released, &owner))
        return -1;
    d->broker = (wm_broker *)(uintptr_t)broker;
    d->host = (wm_module *)(uintptr_t)host;
    Py_INCREF(released);
    d->released = released;
    Py_INCREF(owner);
    d->owner = owner;
    return 0;
}

static PyObject *door_close(PyObject *self, PyObject *unused)
{
    (void)unused;
    ((Door *)self)->broker = NULL;
    ((Door *)self)->host = NULL;
    Py_RETURN_NONE;
}

static PyObject *door_is_open(PyObject *self, void *unused)
{
    (void)unused;
    return PyBool_FromLong(((Door *)self)->host != NULL);
}

static void door_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (((Door *)self)->weakrefs)
        PyObject_ClearWeakRefs(self);
    Py_CLEAR(((Door *)self)->released);
    Py_CLEAR(((Door *)self)->owner);
    ((freefunc)PyType_GetSlot(tp, Py_tp_free))(self);
    Py_DECREF(tp);
}

static PyMethodDef door_methods[] = {
    {"close", door_close, METH_NOARGS, "No MapRef reaches the core through this door any more."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef door_getset[] = {
    {"open", door_is_open, NULL, "Whether MapRefs still reach the core through it.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef door_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(Door, weakrefs), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot door_slots[] = {
    {Py_tp_doc, "Door(broker, host, released, owner): one broker's host module, for its "
                "MapRefs; `owner` frees the C broker when it goes, so it outlives every door."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, door_init},
    {Py_tp_dealloc, door_dealloc},
    {Py_tp_methods, door_methods},
    {Py_tp_getset, door_getset},
    {Py_tp_members, door_members},
    {0, NULL},
};

static PyType_Spec door_spec = {"broker._hostmap.Door", sizeof(Door), 0, Py_TPFLAGS_DEFAULT,
                                door_slots};

/* --- MapCore: the C base of MapRef ------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *h;    /* `_h`: the host handle number, or None once closed or moved */
    PyObject *door; /* `_door`: its broker's Door, set once by __init__ (read-only) */
} MapCore;

/* MapCore.__init__(door, handle): the door is given once and never changes,
 * so a MapRef reaches its own broker's core only. */
static int core_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
    MapCore *c = (MapCore *)self;
    PyObject *door, *h;
    static char *names[] = {"door", "handle", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O", names, door_type, &door, &h))
        return -1;
    if (c->door) {
        PyErr_SetString(PyExc_TypeError, "a MapRef's door is given once");
        return -1;
    }
    Py_INCREF(door);
    c->door = door;
    PyObject *old = c->h;
    Py_INCREF(h);
    c->h = h;
    Py_XDECREF(old);
    return 0;
}

/* Whether the fast path may answer: then the host module and the handle. */
static int reach(MapCore *self, wm_module **m, wm_broker **b, uint32_t *h)
{
    if (!self->door || !self->h || !PyLong_Check(self->h))
        return 0;
    Door *d = (Door *)self->door;
    if (!d->host || PyList_Size(d->released) != 0)
        return 0;
    unsigned long v = PyLong_AsUnsignedLong(self->h);
    if (v > UINT32_MAX || PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    *m = d->host;
    *b = d->broker;
    *h = (uint32_t)v;
    return 1;
}

/* The bytes of `o` when it is exactly `bytes` of a size the ABI takes. */
static int bytes_of(PyObject *o, const uint8_t **p, uint32_t *len)
{
    char *s;
    Py_ssize_t n;
    if (!PyBytes_CheckExact(o) || PyBytes_AsStringAndSize(o, &s, &n) < 0 || n > UINT32_MAX) {
        PyErr_Clear();
        return 0;
    }
    *p = (const uint8_t *)s;
    *len = (uint32_t)n;
    return 1;
}

/* Raise what the host raises for errno `err` of operation `op` on `key`. */
static PyObject *failed(PyObject *self, const char *op, PyObject *key, int err)
{
    PyObject *result = PyObject_CallMethod(self, "_failed", "sOi", op, key, err);
    Py_XDECREF(result); /* _failed always raises */
    return NULL;
}

static PyObject *get_large(PyObject *self, wm_module *m, uint32_t h, const uint8_t *k,
                           uint32_t klen, PyObject *key, uint32_t need)
{
    for (;;) {
        PyObject *out = PyBytes_FromStringAndSize(NULL, need);
        if (!out)
            return NULL;
        uint8_t *buf = (uint8_t *)PyBytes_AsString(out);
        uint32_t n = 0;
        int err;
        Py_BEGIN_ALLOW_THREADS
        err = core.get(m, h, k, klen, buf, need, &n);
        Py_END_ALLOW_THREADS
        if (err == WM_OK && n == need)
            return out;
        if (err == WM_OK) { /* it shrank meanwhile (another thread set it) */
            PyObject *exact = PyBytes_FromStringAndSize((const char *)buf, n);
            Py_DECREF(out);
            return exact;
        }
        Py_DECREF(out);
        if (err != WM_RANGE || n <= need)
            return failed(self, "get", key, err);
        need = n; /* it grew meanwhile: again */
    }
}

static PyObject *core_subscript(PyObject *self, PyObject *key)
{
    wm_module *m;
    wm_broker *b;
    uint32_t h, klen, n = 0;
    const uint8_t *k;
    if (!bytes_of(key, &k, &klen) || !reach((MapCore *)self, &m, &b, &h))
        return PyObject_CallMethodObjArgs(self, s_get, key, NULL);
    uint8_t buf[STACK_VALUE];
    int err;
    Py_BEGIN_ALLOW_THREADS
    err = core.get(m, h, k, klen, buf, sizeof buf, &n);
    Py_END_ALLOW_THREADS
    if (err == WM_OK)
        return PyBytes_FromStringAndSize((const char *)buf, n);
    if (err == WM_RANGE && n > sizeof buf)
        return get_large(self, m, h, k, klen, key, n);
    return failed(self, "get", key, err);
}

static int core_ass_subscript(PyObject *self, PyObject *key, PyObject *value)
{
    wm_module *m;
    wm_broker *b;
    uint32_t h, klen, vlen, after = 0;
    const uint8_t *k, *v;
    PyObject *result;
    if (!value) /* del m[k] */
        result = PyObject_CallMethodObjArgs(self, s_delitem, key, NULL);
    else if (!bytes_of(key, &k, &klen) || !bytes_of(value, &v, &vlen) ||
             !reach((MapCore *)self, &m, &b, &h))
        result = PyObject_CallMethodObjArgs(self, s_setitem, key, value, NULL);
    else {
        int err;
        Py_BEGIN_ALLOW_THREADS
        err = core.set(m, h, k, klen, v, vlen);
        if (err == WM_OK)
            after = core.host_after(b);
        Py_END_ALLOW_THREADS
        if (err != WM_OK)
            return failed(self, "set", key, err), -1;
        if (!after)
            return 0;
        /* Events to take or drop notices to deliver: the broker's Python side. */
        result = PyObject_CallMethodObjArgs(self, s_after_op, NULL);
    }
    Py_XDECREF(result);
    return result ? 0 : -1;
}

static int core_contains(PyObject *self, PyObject *key)
{
    wm_module *m;
    wm_broker *b;
    uint32_t h, klen, found = 0;
    const uint8_t *k;
    if (!bytes_of(key, &k, &klen) || !reach((MapCore *)self, &m, &b, &h)) {
        PyObject *result = PyObject_CallMethodObjArgs(self, s_contains, key, NULL);
        if (!result)
            return -1;
        int truth = PyObject_IsTrue(result);
        Py_DECREF(result);
        return truth;
    }
    int err;
    Py_BEGIN_ALLOW_THREADS
    err = core.exists(m, h, k, klen, &found);
    Py_END_ALLOW_THREADS
    if (err != WM_OK)
        return failed(self, "exists", key, err), -1;
    return found != 0;
}

static Py_ssize_t core_length(PyObject *self)
{
    wm_module *m;
    wm_broker *b;
    uint32_t h, n = 0;
    if (!reach((MapCore *)self, &m, &b, &h)) {
        PyObject *result = PyObject_CallMethodObjArgs(self, s_len, NULL);
        if (!result)
            return -1;
        Py_ssize_t len = PyLong_AsSsize_t(result);
        Py_DECREF(result);
        return len;
    }
    int err;
    Py_BEGIN_ALLOW_THREADS
    err = core.len(m, h, &n);
    Py_END_ALLOW_THREADS
    if (err != WM_OK)
        return failed(self, "len", Py_None, err), -1;
    return (Py_ssize_t)n;
}

static void core_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    Py_CLEAR(((MapCore *)self)->h);
    Py_CLEAR(((MapCore *)self)->door);
    ((freefunc)PyType_GetSlot(tp, Py_tp_free))(self);
    Py_DECREF(tp);
}

static PyMemberDef core_members[] = {
    {"_h", T_OBJECT, offsetof(MapCore, h), 0, "The host handle number, or None."},
    {"_door", T_OBJECT, offsetof(MapCore, door), READONLY, "Its broker's Door."},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot core_slots[] = {
    {Py_tp_doc, "The C base of MapRef: its hot path (native/hostmap.c)."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, core_init},
    {Py_tp_dealloc, core_dealloc},
    {Py_tp_members, core_members},
    {Py_mp_subscript, core_subscript},
    {Py_mp_ass_subscript, core_ass_subscript},
    {Py_mp_length, core_length},
    {Py_sq_contains, core_contains},
    {0, NULL},
};

static PyType_Spec core_spec = {"broker._hostmap.MapCore", sizeof(MapCore), 0,
                                Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, core_slots};

/* --- the module ------------------------------------------------------------- */

static PyObject *bind(PyObject *module, PyObject *args)
{
    (void)module;
    unsigned long long get, set, exists, len, host_after;
    if (!PyArg_ParseTuple(args, "KKKKK", &get, &set, &exists, &len, &host_after))
        return NULL;
    if (!get || !set || !exists || !len || !host_after) {
        PyErr_SetString(PyExc_ValueError, "bind: a core function's address is 0");
        return NULL;
    }
    core.get = (__typeof__(core.get))(uintptr_t)get;
    core.set = (__typeof__(core.set))(uintptr_t)set;
    core.exists = (__typeof__(core.exists))(uintptr_t)exists;
    core.len = (__typeof__(core.len))(uintptr_t)len;
    core.host_after = (__typeof__(core.host_after))(uintptr_t)host_after;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"bind", bind, METH_VARARGS,
     "bind(get, set, exists, len, host_after): the core functions' addresses."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef hostmap_module = {
    PyModuleDef_HEAD_INIT, "broker._hostmap", "The host MapRef's hot path (native/hostmap.c).",
    -1, module_methods, NULL, NULL, NULL, NULL,
};

static int intern(PyObject **name, const char *s)
{
    *name = PyUnicode_InternFromString(s);
    return *name ? 0 : -1;
}

PyMODINIT_FUNC PyInit__hostmap(void)
{
    if (intern(&s_get, "_get") || intern(&s_setitem, "_setitem") ||
        intern(&s_delitem, "_delitem") || intern(&s_contains, "_contains") ||
        intern(&s_len, "_len") || intern(&s_after_op, "_after_op"))
        return NULL;
    PyObject *module = PyModule_Create(&hostmap_module);
    if (!module)
        return NULL;
    door_type = (PyTypeObject *)PyType_FromSpec(&door_spec);
    PyObject *map_core = PyType_FromSpec(&core_spec);
    if (!door_type || !map_core || PyModule_AddObjectRef(module, "Door", (PyObject *)door_type) ||
        PyModule_AddObjectRef(module, "MapCore", map_core) ||
        PyModule_AddStringConstant(module, "wm_h_sha256", WM_H_SHA256) ||
        PyModule_AddStringConstant(module, "abi_sha256", WM_ABI_SHA256)) {
        Py_XDECREF(map_core);
        Py_DECREF(module);
        return NULL;
    }
    Py_DECREF(map_core);
    return module;
}
