/* The query hook's common case in C: a diagnostic variant (c_hook.py), not part of perfmonitor. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <time.h>

static PyObject *current_var, *suppressed, *interned, *fallback, *record;
static PyObject *s_queries, *s_limit;
static Py_ssize_t max_interned;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static PyObject *
query_timer(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) return PyObject_Vectorcall(fallback, args, nargs, NULL);
    PyObject *ctx = NULL;
    if (PyContextVar_Get(current_var, NULL, &ctx) < 0) return NULL;
    if (ctx == NULL || ctx == Py_None || ctx == suppressed || !PyUnicode_CheckExact(args[1])) {
        Py_XDECREF(ctx);
        return PyObject_Vectorcall(fallback, args, nargs, NULL);
    }
    PyObject *sql = args[1];
    double start = now();
    PyObject *result = PyObject_Vectorcall(args[0], args + 1, 4, NULL);
    double ms = (now() - start) * 1000.0;
    if (result == NULL) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyObject *r = PyObject_CallFunction(record, "OOdO", ctx, sql, ms, Py_True);
        Py_XDECREF(r);
        PyErr_Clear();
        PyErr_Restore(type, value, tb);
        Py_DECREF(ctx);
        return NULL;
    }
    PyObject *queries = PyObject_GetAttr(ctx, s_queries);
    PyObject *limit = queries ? PyObject_GetAttr(ctx, s_limit) : NULL;
    int done = 0;
    if (queries && limit && PyList_CheckExact(queries)) {
        Py_ssize_t cap = PyLong_AsSsize_t(limit);
        if (cap >= 0 && PyList_GET_SIZE(queries) < cap) {
            PyObject *canon = PyDict_GetItemWithError(interned, sql);
            if (canon == NULL && !PyErr_Occurred()) {
                if (PyDict_GET_SIZE(interned) >= max_interned) PyDict_Clear(interned);
                if (PyDict_SetItem(interned, sql, sql) == 0) canon = sql;
            }
            if (canon != NULL) {
                PyObject *f = PyFloat_FromDouble(ms);
                PyObject *t = f ? PyTuple_Pack(3, canon, f, Py_False) : NULL;
                if (t && PyList_Append(queries, t) == 0) done = 1;
                Py_XDECREF(t);
                Py_XDECREF(f);
            }
        }
    }
    PyErr_Clear();
    Py_XDECREF(queries);
    Py_XDECREF(limit);
    if (!done) {
        PyObject *r = PyObject_CallFunction(record, "OOdO", ctx, sql, ms, Py_False);
        Py_XDECREF(r);
        PyErr_Clear();
    }
    Py_DECREF(ctx);
    return result;
}

static PyObject *
configure(PyObject *self, PyObject *args)
{
    if (!PyArg_ParseTuple(args, "OOOOOn", &current_var, &suppressed, &interned, &fallback,
                          &record, &max_interned))
        return NULL;
    Py_INCREF(current_var); Py_INCREF(suppressed); Py_INCREF(interned);
    Py_INCREF(fallback); Py_INCREF(record);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"query_timer", (PyCFunction)(void(*)(void))query_timer, METH_FASTCALL, NULL},
    {"configure", configure, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pmhook", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pmhook(void) {
    s_queries = PyUnicode_InternFromString("queries");
    s_limit = PyUnicode_InternFromString("limit");
    return PyModule_Create(&module);
}
