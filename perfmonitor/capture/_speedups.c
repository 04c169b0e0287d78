/* perfmonitor.capture._speedups: the query hook's common case, compiled.
 *
 * query_timer() does what query_hook._py_query_timer does for a query inside a
 * request or task: one ContextVar read, the clock around the query, and the
 * interned statement appended to the capture context below its cap. Everything
 * else (outside requests, capture off, perfmonitor's own queries, statements that
 * are not str, failed queries, past the cap) goes to the Python code that
 * query_hook hands to configure(), so there is one definition of what is
 * recorded. The module is optional: without a compiler, or with
 * PERFMONITOR_PURE_PYTHON=1, query_hook uses its Python timer alone.
 *
 * Why compiled: on a busy host the Python wrapper costs a query about 10 us of
 * CPU with cold caches, this one about half (benchmarks/overhead/README.md).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX < 0x030D0000
#  ifdef _WIN32
#    include <windows.h>
#  else
#    include <time.h>
#  endif
#endif

/* Set by configure(); strong references held for the life of the process. */
static PyObject *current_var;  /* context.current, the ContextVar */
static PyObject *suppressed;   /* context.SUPPRESSED */
static PyObject *interned;     /* query_hook._interned, shared with the Python code */
static PyObject *fallback;     /* query_hook._py_query_timer: every case but the common one */
static PyObject *record;       /* query_hook._record(ctx, sql, ms, failed) */
static PyObject *on_error;     /* counts an exception raised in here (never reaches the host) */
static Py_ssize_t max_interned;
static PyObject *s_queries, *s_limit;

/* Seconds on a monotonic clock; only differences are used. */
static int
clock_seconds(double *out)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyTime_t t;
    if (PyTime_PerfCounterRaw(&t) < 0) {
        return -1;
    }
    *out = PyTime_AsSecondsDouble(t);
#elif defined(_WIN32)
    LARGE_INTEGER count, frequency;
    QueryPerformanceCounter(&count);
    QueryPerformanceFrequency(&frequency);
    *out = (double)count.QuadPart / (double)frequency.QuadPart;
#else
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    *out = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
#endif
    return 0;
}

/* Calls record(ctx, sql, ms, failed); whatever it raises is dropped (it counts its
 * own errors, and nothing here may reach the host's query). */
static void
call_record(PyObject *ctx, PyObject *sql, double ms, PyObject *failed)
{
    PyObject *result = PyObject_CallFunction(record, "OOdO", ctx, sql, ms, failed);
    if (result == NULL) {
        PyErr_Clear();
    }
    Py_XDECREF(result);
}

/* Hands the pending exception to on_error() and clears it. */
static void
count_error(void)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (value != NULL && PyErr_GivenExceptionMatches(value, PyExc_Exception)) {
        PyObject *result = PyObject_CallOneArg(on_error, value);
        if (result == NULL) {
            PyErr_Clear();
        }
        Py_XDECREF(result);
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
}

/* Appends (sql, ms, False) to ctx.queries when below ctx.limit. 1: appended,
 * 0: not (the Python path decides), -1: an exception is set. */
static int
append_query(PyObject *ctx, PyObject *sql, double ms)
{
    int appended = 0;
    PyObject *queries = PyObject_GetAttr(ctx, s_queries);
    if (queries == NULL) {
        return -1;
    }
    PyObject *limit = PyObject_GetAttr(ctx, s_limit);
    if (limit == NULL) {
        Py_DECREF(queries);
        return -1;
    }
    if (PyList_CheckExact(queries) && PyLong_CheckExact(limit)) {
        Py_ssize_t cap = PyLong_AsSsize_t(limit);
        if (cap == -1 && PyErr_Occurred()) {
            appended = -1;
        }
        else if (PyList_GET_SIZE(queries) < cap) {
            PyObject *canonical = PyDict_GetItemWithError(interned, sql);  /* borrowed */
            if (canonical == NULL && !PyErr_Occurred()) {
                if (PyDict_GET_SIZE(interned) >= max_interned) {
                    PyDict_Clear(interned);
                }
                canonical = PyDict_SetItem(interned, sql, sql) == 0 ? sql : NULL;
            }
            if (canonical == NULL) {
                appended = -1;
            }
            else {
                PyObject *elapsed = PyFloat_FromDouble(ms);
                PyObject *item = elapsed ? PyTuple_Pack(3, canonical, elapsed, Py_False) : NULL;
                appended = item != NULL && PyList_Append(queries, item) == 0 ? 1 : -1;
                Py_XDECREF(item);
                Py_XDECREF(elapsed);
            }
        }
    }
    Py_DECREF(limit);
    Py_DECREF(queries);
    return appended;
}

static PyObject *
query_timer(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "perfmonitor.capture._speedups is not configured");
        return NULL;
    }
    if (nargs != 5) {
        return PyObject_Vectorcall(fallback, args, nargs, NULL);
    }
    PyObject *ctx = NULL;
    if (PyContextVar_Get(current_var, NULL, &ctx) < 0) {
        return NULL;
    }
    PyObject *sql = args[1];
    if (ctx == NULL || ctx == Py_None || ctx == suppressed || !PyUnicode_CheckExact(sql)) {
        Py_XDECREF(ctx);
        return PyObject_Vectorcall(fallback, args, nargs, NULL);
    }
    double start, end;
    if (clock_seconds(&start) < 0) {
        Py_DECREF(ctx);
        count_error();
        return PyObject_Vectorcall(fallback, args, nargs, NULL);
    }
    /* execute(sql, params, many, context) */
    PyObject *result = PyObject_Vectorcall(args[0], args + 1, 4, NULL);
    if (clock_seconds(&end) < 0) {
        end = start;
        if (result != NULL) {
            count_error();
        }
    }
    double ms = (end - start) * 1000.0;
    if (result == NULL) {  /* the query failed: record it, then re-raise its exception */
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        call_record(ctx, sql, ms, Py_True);
        PyErr_Restore(type, value, traceback);
        Py_DECREF(ctx);
        return NULL;
    }
    int appended = append_query(ctx, sql, ms);
    if (appended < 0) {
        count_error();
    }
    else if (appended == 0) {
        call_record(ctx, sql, ms, Py_False);
    }
    Py_DECREF(ctx);
    return result;
}

PyDoc_STRVAR(query_timer_doc,
"query_timer(execute, sql, params, many, context)\n--\n\n"
"Django execute wrapper: times the query and appends it to the current capture\n"
"context; every other case goes to the Python timer given to configure().");

static PyObject *
configure(PyObject *module, PyObject *args)
{
    PyObject *var, *skip, *table, *python_timer, *slow_path, *errors;
    Py_ssize_t cap;
    if (!PyArg_ParseTuple(args, "O!OO!OOOn:configure", &PyContextVar_Type, &var, &skip,
                          &PyDict_Type, &table, &python_timer, &slow_path, &errors, &cap)) {
        return NULL;
    }
    if (!PyCallable_Check(python_timer) || !PyCallable_Check(slow_path)
            || !PyCallable_Check(errors)) {
        PyErr_SetString(PyExc_TypeError, "configure: the timer, record and on_error must be callable");
        return NULL;
    }
    if (cap < 1) {
        PyErr_SetString(PyExc_ValueError, "configure: max_interned must be at least 1");
        return NULL;
    }
    Py_XSETREF(current_var, Py_NewRef(var));
    Py_XSETREF(suppressed, Py_NewRef(skip));
    Py_XSETREF(interned, Py_NewRef(table));
    Py_XSETREF(fallback, Py_NewRef(python_timer));
    Py_XSETREF(record, Py_NewRef(slow_path));
    Py_XSETREF(on_error, Py_NewRef(errors));
    max_interned = cap;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(configure_doc,
"configure(current, suppressed, interned, python_timer, record, on_error, max_interned)\n--\n\n"
"Gives query_timer the capture ContextVar, the SUPPRESSED context, the shared\n"
"interning dict, the Python timer for every uncommon case, the slow path for\n"
"failed queries and queries past the cap, the error counter and the interning cap.");

static PyMethodDef methods[] = {
    {"query_timer", (PyCFunction)(void (*)(void))query_timer, METH_FASTCALL, query_timer_doc},
    {"configure", configure, METH_VARARGS, configure_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "perfmonitor.capture._speedups",
    .m_doc = "The query hook's common case, compiled (optional; see query_hook).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    s_queries = PyUnicode_InternFromString("queries");
    s_limit = PyUnicode_InternFromString("limit");
    if (s_queries == NULL || s_limit == NULL) {
        return NULL;
    }
    return PyModule_Create(&module_def);
}
