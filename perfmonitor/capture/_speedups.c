/* perfmonitor.capture._speedups: the request path's common case, compiled.
 *
 * Each piece is the compiled twin of Python code that stays the definition of what
 * is recorded and handles every uncommon case:
 *
 * - query_timer(), for query_hook._py_query_timer;
 * - Middleware, whose call is middleware.PerformanceMiddleware.__call__ with
 *   _begin() and _finish() for a sync request whose response is not streamed;
 * - begin() and finish(), the same two ends for the async __acall__, whose
 *   coroutine stays Python;
 * - series_rollups(), for the flusher: writer.Sink.rollups() of the series of plain
 *   finite floats without weights (count, sum, extremes and the sketch's bytes).
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
 * Why compiled: on a busy host the request path's Python runs with cold caches,
 * and its bytecode is most of what a request costs beyond the site's own work: the
 * Python query wrapper cost a query about 10 us of CPU there, this one about half
 * (benchmarks/overhead/README.md).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

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
static PyObject *hook_on_error; /* counts an exception raised in here (never reaches the host) */
static PyObject *request_path;  /* conf.request_path: the settings a request reads */
static Py_ssize_t max_interned;
static PyObject *s_queries, *s_limit, *s_loaded, *s_enabled, *s_overflow, *s_exception;
static PyObject *s_overflow_lock, *s_ignore_prefixes, *s_query_limit;

/* getattr(obj, name, None) without making an AttributeError: 1 found, 0 not, -1 error */
#if PY_VERSION_HEX >= 0x030D0000
#  define get_optional_attr PyObject_GetOptionalAttr
#else
#  define get_optional_attr _PyObject_LookupAttr
#endif

static PyObject *time_time;  /* time.time: the wall clock where C has none of its own */

/* Seconds on the wall clock (wall: as time.time() reads it) or on the monotonic
 * clock time.perf_counter() reads (only differences of those are used). */
static int
read_clock(int wall, double *out)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyTime_t t;
    if ((wall ? PyTime_TimeRaw(&t) : PyTime_PerfCounterRaw(&t)) < 0) {
        return -1;
    }
    *out = PyTime_AsSecondsDouble(t);
#elif defined(_WIN32)
    if (!wall) {
        LARGE_INTEGER count, frequency;
        QueryPerformanceCounter(&count);
        QueryPerformanceFrequency(&frequency);
        *out = (double)count.QuadPart / (double)frequency.QuadPart;
        return 0;
    }
    PyObject *now = time_time ? PyObject_CallNoArgs(time_time) : NULL;
    if (now == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "perfmonitor middleware: not configured");
        }
        return -1;
    }
    *out = PyFloat_AsDouble(now);
    Py_DECREF(now);
    if (*out == -1.0 && PyErr_Occurred()) {
        return -1;
    }
#else
    struct timespec ts;
    if (clock_gettime(wall ? CLOCK_REALTIME : CLOCK_MONOTONIC, &ts) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    *out = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
#endif
    return 0;
}

#define clock_seconds(out) read_clock(0, (out))
#define wall_seconds(out) read_clock(1, (out))

/* ---- __slots__ read and written in place ----------------------------------------
 * CaptureContext and RequestPathSettings keep their attributes in __slots__. An
 * attribute lookup walks the type's attribute cache to the member descriptor and
 * its code: on a request that starts with cold caches, a few cache lines each, for
 * about twenty lookups a request and two a query. The offsets are found once, at
 * configure(), and used on objects of exactly that type (anything else, and an
 * unset slot, goes through the ordinary lookup, which raises as Python would). */

typedef struct {
    PyTypeObject *type;
    Py_ssize_t offset;
    PyObject *name;
} Slot;

#define SLOT_VALUE(obj, slot) (*(PyObject **)((char *)(obj) + (slot).offset))

/* Finds name's offset in type's own __slots__ (the type and name borrowed, as the
 * caller holds them); -1 with an exception set if it is not a writable object slot. */
static int
find_slot(Slot *slot, PyTypeObject *type, PyObject *name)
{
    PyObject *descr = PyObject_GetAttr((PyObject *)type, name);
    if (descr == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return -1;
        }
        PyErr_Clear();  /* reported below */
    }
    int ok = descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type)
        && ((PyMemberDescrObject *)descr)->d_common.d_type == type;
    PyMemberDef *member = ok ? ((PyMemberDescrObject *)descr)->d_member : NULL;
    Py_XDECREF(descr);
    if (member == NULL || member->type != T_OBJECT_EX || (member->flags & READONLY)
            || member->offset <= 0
            || member->offset > type->tp_basicsize - (Py_ssize_t)sizeof(PyObject *)) {
        PyErr_Format(PyExc_TypeError, "%s.%U is not a writable __slots__ attribute",
                     type->tp_name, name);
        return -1;
    }
    slot->type = type;
    slot->offset = member->offset;
    slot->name = name;
    return 0;
}

/* Keeps a found slot: strong references to its type and name. */
static void
keep_slot(Slot *kept, Slot found)
{
    Py_XSETREF(kept->type, (PyTypeObject *)Py_NewRef(found.type));
    Py_XSETREF(kept->name, Py_NewRef(found.name));
    kept->offset = found.offset;
}

/* obj.<slot> as a new reference, or NULL with an exception set. */
static inline PyObject *
get_slot(PyObject *obj, Slot slot)
{
    if (Py_IS_TYPE(obj, slot.type)) {
        PyObject *value = SLOT_VALUE(obj, slot);
        if (value != NULL) {
            return Py_NewRef(value);
        }
    }
    return PyObject_GetAttr(obj, slot.name);
}

/* obj.<slot> = value on an object of exactly the slot's type (a new context). */
static inline void
set_slot(PyObject *obj, Slot slot, PyObject *value)
{
    Py_XSETREF(SLOT_VALUE(obj, slot), Py_NewRef(value));
}

static Slot ctx_queries, ctx_overflow, ctx_limit, ctx_exception, ctx_overflow_lock;
static Slot rp_loaded, rp_enabled, rp_prefixes, rp_query_limit;

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

/* Hands the pending exception to on_error and clears it: 0. Anything but an
 * Exception (KeyboardInterrupt, SystemExit) stays set: -1, as ``except Exception``. */
static int
count_error(PyObject *on_error)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return -1;
    }
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    PyObject *result = value ? PyObject_CallOneArg(on_error, value) : NULL;
    if (result == NULL) {
        PyErr_Clear();
    }
    Py_XDECREF(result);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    return 0;
}

/* Appends (sql, ms, False) to ctx.queries when below ctx.limit. 1: appended,
 * 0: not (the Python path decides), -1: an exception is set. */
static int
append_query(PyObject *ctx, PyObject *sql, double ms)
{
    int appended = 0;
    PyObject *queries = get_slot(ctx, ctx_queries);
    if (queries == NULL) {
        return -1;
    }
    PyObject *limit = get_slot(ctx, ctx_limit);
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
            /* a strong reference: allocating below may run a collection, and with
             * it code that clears the table */
            PyObject *canonical = Py_XNewRef(PyDict_GetItemWithError(interned, sql));
            if (canonical == NULL && !PyErr_Occurred()) {
                if (PyDict_GET_SIZE(interned) >= max_interned) {
                    PyDict_Clear(interned);
                }
                canonical = PyDict_SetItem(interned, sql, sql) == 0 ? Py_NewRef(sql) : NULL;
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
                Py_DECREF(canonical);
            }
        }
    }
    Py_DECREF(limit);
    Py_DECREF(queries);
    return appended;
}

/* 1 when the settings are loaded and ENABLED is off, else 0 (the Python timer
 * decides); never raises. */
static int
capture_off(void)
{
    int off = 0;
    PyObject *loaded = get_slot(request_path, rp_loaded);
    if (loaded == Py_True) {
        PyObject *enabled = get_slot(request_path, rp_enabled);
        off = enabled == Py_False;
        Py_XDECREF(enabled);
    }
    Py_XDECREF(loaded);
    PyErr_Clear();
    return off;
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
    if ((ctx == Py_None && capture_off()) || ctx == suppressed) {  /* untimed */
        Py_DECREF(ctx);
        return PyObject_Vectorcall(args[0], args + 1, 4, NULL);
    }
    if (ctx == NULL || ctx == Py_None || !PyUnicode_CheckExact(sql)) {
        Py_XDECREF(ctx);
        return PyObject_Vectorcall(fallback, args, nargs, NULL);
    }
    double start, end;
    if (clock_seconds(&start) < 0) {
        Py_DECREF(ctx);
        if (count_error(hook_on_error) < 0) {
            return NULL;
        }
        return PyObject_Vectorcall(fallback, args, nargs, NULL);
    }
    /* execute(sql, params, many, context) */
    PyObject *result = PyObject_Vectorcall(args[0], args + 1, 4, NULL);
    PyObject *type = NULL, *value = NULL, *traceback = NULL;
    if (result == NULL) {  /* the query failed: kept aside, recorded, then re-raised */
        PyErr_Fetch(&type, &value, &traceback);
    }
    if (clock_seconds(&end) < 0) {
        end = start;
        PyErr_Clear();
    }
    double ms = (end - start) * 1000.0;
    if (result == NULL) {
        call_record(ctx, sql, ms, Py_True);
        PyErr_Restore(type, value, traceback);
        Py_DECREF(ctx);
        return NULL;
    }
    int appended = append_query(ctx, sql, ms);
    if (appended < 0 && count_error(hook_on_error) < 0) {
        Py_CLEAR(result);
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

/* 0 when every item is callable, else -1 with a TypeError naming the function. */
static int
check_callables(const char *where, PyObject **items, int n)
{
    for (int i = 0; i < n; i++) {
        if (!PyCallable_Check(items[i])) {
            PyErr_Format(PyExc_TypeError, "%s: argument %R is not callable", where, items[i]);
            return -1;
        }
    }
    return 0;
}

/* Stores a strong reference to each value in its slot, dropping what was there. */
static void
keep(PyObject **slots[], PyObject *values[], int n)
{
    for (int i = 0; i < n; i++) {
        Py_XSETREF(*slots[i], Py_NewRef(values[i]));
    }
}

static PyObject *
configure(PyObject *module, PyObject *args)
{
    PyObject *var, *skip, *table, *python_timer, *slow_path, *errors, *settings;
    Py_ssize_t cap;
    if (!PyArg_ParseTuple(args, "O!OO!OOOnO:configure", &PyContextVar_Type, &var, &skip,
                          &PyDict_Type, &table, &python_timer, &slow_path, &errors, &cap,
                          &settings)) {
        return NULL;
    }
    PyObject *callables[] = {python_timer, slow_path, errors};
    if (check_callables("configure", callables, 3) < 0) {
        return NULL;
    }
    if (cap < 1) {
        PyErr_SetString(PyExc_ValueError, "configure: max_interned must be at least 1");
        return NULL;
    }
    PyTypeObject *context = Py_TYPE(skip), *settings_type = Py_TYPE(settings);
    struct { Slot *kept; Slot found; } slots_of[] = {  /* found: {type, offset, name} */
        {&ctx_queries, {context, 0, s_queries}}, {&ctx_overflow, {context, 0, s_overflow}},
        {&ctx_limit, {context, 0, s_limit}}, {&ctx_exception, {context, 0, s_exception}},
        {&ctx_overflow_lock, {context, 0, s_overflow_lock}},
        {&rp_loaded, {settings_type, 0, s_loaded}},
        {&rp_enabled, {settings_type, 0, s_enabled}},
        {&rp_prefixes, {settings_type, 0, s_ignore_prefixes}},
        {&rp_query_limit, {settings_type, 0, s_query_limit}},
    };
    size_t n = sizeof(slots_of) / sizeof(slots_of[0]);
    for (size_t i = 0; i < n; i++) {  /* all of them, or nothing changes */
        Slot *found = &slots_of[i].found;
        if (find_slot(found, found->type, found->name) < 0) {
            return NULL;
        }
    }
    for (size_t i = 0; i < n; i++) {
        keep_slot(slots_of[i].kept, slots_of[i].found);
    }
    PyObject **slots[] = {&current_var, &suppressed, &interned, &fallback, &record,
                          &hook_on_error, &request_path};
    PyObject *values[] = {var, skip, table, python_timer, slow_path, errors, settings};
    keep(slots, values, 7);
    max_interned = cap;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(configure_doc,
"configure(current, suppressed, interned, python_timer, record, on_error, max_interned,\n"
"          request_path)\n--\n\n"
"Gives query_timer the capture ContextVar, the SUPPRESSED context, the shared\n"
"interning dict, the Python timer for every uncommon case, the slow path for\n"
"failed queries and queries past the cap, the error counter, the interning cap and\n"
"the request-path settings (ENABLED).");


/* ---- the middleware ------------------------------------------------------------ */

/* Set by configure_middleware(). */
static PyObject *py_begin;        /* middleware._begin(request) */
static PyObject *py_finish;       /* middleware._finish(request, response, ctx, wall, start, exc=None) */
static PyObject *route_cache;     /* middleware._route_cache */
static PyObject *method_names;    /* middleware._METHODS */
static PyObject *buffer_module;   /* capture.buffer: its .buffer takes the record */
static PyObject *mw_on_error;     /* counts an exception raised in _finish's work */
static PyObject *deque_type, *deque_append;  /* collections.deque and its append */
static PyObject *empty_tuple, *empty_str, *s_query_string;
static PyObject *s_path, *s_resolver_match, *s_route;
static PyObject *s_func, *s_view_name, *s_status_code, *s_streaming, *s_method, *s_meta;
static PyObject *s_cached_user, *s_is_authenticated, *s_pk, *s_buffer;
static PyObject *s_requests, *s_fast_until, *s_push_request, *s_append;

/* A new CaptureContext(limit) without running its __init__ in the interpreter:
 * the same slots, the same values (tests/capture/test_speedups.py compares them). */
static PyObject *
new_context(PyObject *limit)
{
    PyTypeObject *type = ctx_queries.type;  /* CaptureContext, its slots found by configure() */
    PyObject *ctx = type->tp_new(type, empty_tuple, NULL);
    if (ctx == NULL) {
        return NULL;
    }
    PyObject *queries = PyList_New(0);
    if (queries == NULL) {
        Py_DECREF(ctx);
        return NULL;
    }
    set_slot(ctx, ctx_queries, queries);
    set_slot(ctx, ctx_overflow, Py_None);
    set_slot(ctx, ctx_limit, limit);
    set_slot(ctx, ctx_exception, empty_str);
    set_slot(ctx, ctx_overflow_lock, Py_None);
    Py_DECREF(queries);
    return ctx;
}

/* _begin(request): a new context, SUPPRESSED (an ignored path) or None (capture
 * off). Settings not loaded yet, odd values and errors go to the Python _begin. */
static PyObject *
begin(PyObject *request)
{
    PyObject *ctx = NULL, *prefixes = NULL, *limit = NULL, *path = NULL;
    PyObject *flag = get_slot(request_path, rp_loaded);
    if (flag != Py_True) {
        goto python;
    }
    Py_DECREF(flag);
    flag = get_slot(request_path, rp_enabled);
    if (flag == Py_False) {
        Py_DECREF(flag);
        Py_RETURN_NONE;
    }
    if (flag != Py_True) {
        goto python;
    }
    prefixes = get_slot(request_path, rp_prefixes);
    limit = prefixes ? get_slot(request_path, rp_query_limit) : NULL;
    path = limit ? PyObject_GetAttr(request, s_path) : NULL;
    if (path == NULL || !PyTuple_CheckExact(prefixes) || !PyLong_CheckExact(limit)
            || !PyUnicode_CheckExact(path)) {
        goto python;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(prefixes); i++) {
        PyObject *prefix = PyTuple_GET_ITEM(prefixes, i);
        if (!PyUnicode_CheckExact(prefix)) {
            goto python;
        }
        Py_ssize_t match = PyUnicode_Tailmatch(path, prefix, 0, PY_SSIZE_T_MAX, -1);
        if (match < 0) {
            goto python;
        }
        if (match) {
            ctx = Py_NewRef(suppressed);
            goto done;
        }
    }
    ctx = new_context(limit);
    if (ctx == NULL) {
        goto python;
    }
    goto done;
python:
    PyErr_Clear();  /* the Python _begin meets the same error again, and counts it */
    ctx = NULL;
done:
    Py_XDECREF(flag);
    Py_XDECREF(prefixes);
    Py_XDECREF(limit);
    Py_XDECREF(path);
    return ctx != NULL ? ctx : PyObject_CallOneArg(py_begin, request);
}

/* _user_id(request): the pk of a user the host already loaded, else "". As there,
 * getattr(request, "_cached_user", None): no AttributeError is made, and the
 * request's attributes are not turned into a dict (request.__dict__ would). */
static PyObject *
user_id(PyObject *request)
{
    PyObject *user;
    if (get_optional_attr(request, s_cached_user, &user) < 0) {
        return NULL;
    }
    if (user == NULL || user == Py_None) {
        Py_XDECREF(user);
        return Py_NewRef(empty_str);
    }
    PyObject *result = NULL;
    PyObject *authenticated = PyObject_GetAttr(user, s_is_authenticated);
    if (authenticated == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear();
            result = Py_NewRef(empty_str);
        }
    }
    else {
        int truth = PyObject_IsTrue(authenticated);
        if (truth == 0) {
            result = Py_NewRef(empty_str);
        }
        else if (truth > 0) {
            PyObject *pk = PyObject_GetAttr(user, s_pk);
            result = pk ? PyObject_Str(pk) : NULL;
            Py_XDECREF(pk);
        }
        Py_DECREF(authenticated);
    }
    Py_DECREF(user);
    return result;
}

/* records.pack_request in C: the plain tuple a request waits as, (method, route,
 * view, path, query_string, status, numbers, overflow, exception, url_name, user_id,
 * failed, *statements), numbers being the timestamp, the duration and each query's
 * time as little-endian doubles, failed None unless a query failed. */
static PyObject *
pack_plain(PyObject *method, PyObject *route, PyObject *view, PyObject *path,
           PyObject *query_string, PyObject *status, double ts, double duration_ms,
           PyObject *queries, PyObject *overflow, PyObject *exception, PyObject *url_name,
           PyObject *user)
{
    PyObject *seq = PySequence_Fast(queries, "pack_request: queries must be a sequence");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *numbers = PyBytes_FromStringAndSize(NULL, (n + 2) * 8);
    PyObject *packed = numbers ? PyTuple_New(12 + n) : NULL;
    PyObject *failed = NULL;
    if (packed == NULL) {
        goto error;
    }
    char *out = PyBytes_AS_STRING(numbers);
    if (PyFloat_Pack8(ts, out, 1) < 0 || PyFloat_Pack8(duration_ms, out + 8, 1) < 0) {
        goto error;
    }
    int any_failed = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *query = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_CheckExact(query) || PyTuple_GET_SIZE(query) != 3) {
            PyErr_SetString(PyExc_ValueError, "pack_request: a query is not (sql, ms, failed)");
            goto error;
        }
        double ms = PyFloat_AsDouble(PyTuple_GET_ITEM(query, 1));
        if ((ms == -1.0 && PyErr_Occurred()) || PyFloat_Pack8(ms, out + 16 + 8 * i, 1) < 0) {
            goto error;
        }
        PyTuple_SET_ITEM(packed, 12 + i, Py_NewRef(PyTuple_GET_ITEM(query, 0)));
        int truth = PyObject_RichCompareBool(PyTuple_GET_ITEM(query, 2), Py_True, Py_EQ);
        if (truth < 0) {
            goto error;
        }
        any_failed |= truth;
    }
    if (any_failed) {
        failed = PyTuple_New(n);
        if (failed == NULL) {
            goto error;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *query = PySequence_Fast_GET_ITEM(seq, i);
            PyTuple_SET_ITEM(failed, i, Py_NewRef(PyTuple_GET_ITEM(query, 2)));
        }
    }
    else {
        failed = Py_NewRef(Py_None);
    }
    PyObject *items[] = {method, route, view, path, query_string, status};
    for (int i = 0; i < 6; i++) {
        PyTuple_SET_ITEM(packed, i, Py_NewRef(items[i]));
    }
    PyTuple_SET_ITEM(packed, 6, numbers);
    PyTuple_SET_ITEM(packed, 7, Py_NewRef(overflow));
    PyTuple_SET_ITEM(packed, 8, Py_NewRef(exception));
    PyTuple_SET_ITEM(packed, 9, Py_NewRef(url_name));
    PyTuple_SET_ITEM(packed, 10, Py_NewRef(user));
    PyTuple_SET_ITEM(packed, 11, failed);
    Py_DECREF(seq);
    return packed;
error:
    Py_DECREF(seq);
    Py_XDECREF(numbers);
    Py_XDECREF(packed);  /* its unset items are NULL, which tuple_dealloc skips */
    return NULL;
}

/* n arguments as C doubles (as float() takes them): 0, or -1 with an exception set. */
static int
as_doubles(PyObject *const *args, int n, double *out)
{
    for (int i = 0; i < n; i++) {
        out[i] = PyFloat_AsDouble(args[i]);
        if (out[i] == -1.0 && PyErr_Occurred()) {
            return -1;
        }
    }
    return 0;
}

static PyObject *
pack_request(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 13) {
        PyErr_Format(PyExc_TypeError, "pack_request() takes 13 arguments (%zd given)", nargs);
        return NULL;
    }
    double clocks[2];  /* ts, duration_ms */
    if (as_doubles(args + 6, 2, clocks) < 0) {
        return NULL;
    }
    return pack_plain(args[0], args[1], args[2], args[3], args[4], args[5], clocks[0],
                      clocks[1], args[8], args[9], args[10], args[11], args[12]);
}

PyDoc_STRVAR(pack_request_doc,
"pack_request(method, route, view, path, query_string, status, ts, duration_ms, queries,\n"
"             overflow, exception, url_name, user_id)\n--\n\n"
"records.pack_request, compiled: what the compiled middleware pushes.");

/* Appends to buffer._requests when push_request's fast path would, else calls
 * buffer.push_request(packed). 0, or -1 with an exception set. */
static int
push_request(PyObject *packed)
{
    PyObject *buffer = PyObject_GetAttr(buffer_module, s_buffer);
    if (buffer == NULL) {
        return -1;
    }
    PyObject *result = NULL;
    PyObject *requests = PyObject_GetAttr(buffer, s_requests);
    PyObject *fast_until = requests ? PyObject_GetAttr(buffer, s_fast_until) : NULL;
    PyObject *loaded = fast_until ? get_slot(request_path, rp_loaded) : NULL;
    if (loaded != NULL) {
        Py_ssize_t waiting = PyObject_Length(requests);
        Py_ssize_t until = PyLong_AsSsize_t(fast_until);
        if (waiting >= 0 && !(until == -1 && PyErr_Occurred())) {
            if (waiting >= until || loaded != Py_True) {
                result = PyObject_CallMethodOneArg(buffer, s_push_request, packed);
            }
            else if (Py_IS_TYPE(requests, (PyTypeObject *)deque_type)) {
                PyObject *call[] = {requests, packed};
                result = PyObject_Vectorcall(deque_append, call, 2, NULL);
            }
            else {
                result = PyObject_CallMethodOneArg(requests, s_append, packed);
            }
        }
    }
    Py_XDECREF(loaded);
    Py_XDECREF(fast_until);
    Py_XDECREF(requests);
    Py_DECREF(buffer);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

/* The common case of _finish(): a resolved route already in the cache, a response
 * that is not streamed. 1: recorded or deliberately skipped, 0: not the common
 * case (nothing done; the Python _finish takes it), -1: an exception is set. */
static int
finish_common(PyObject *request, PyObject *response, PyObject *ctx, double ts, double start)
{
    int outcome = -1;
    PyObject *match = NULL, *route = NULL, *func = NULL, *view_name = NULL, *key = NULL;
    PyObject *status = NULL, *streaming = NULL, *method = NULL, *path = NULL, *meta = NULL;
    PyObject *query_string = NULL, *queries = NULL, *overflow = NULL, *exception = NULL;
    PyObject *user = NULL, *packed = NULL;
    double ended;
    if (clock_seconds(&ended) < 0) {
        goto out;
    }
    double ms = (ended - start) * 1000.0;
    match = PyObject_GetAttr(request, s_resolver_match);
    if (match == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            goto out;
        }
        PyErr_Clear();
        outcome = 0;
        goto out;
    }
    if (match == Py_None || response == Py_None) {
        outcome = 0;
        goto out;
    }
    route = PyObject_GetAttr(match, s_route);
    func = route ? PyObject_GetAttr(match, s_func) : NULL;
    view_name = func ? PyObject_GetAttr(match, s_view_name) : NULL;
    if (view_name == NULL) {
        goto out;
    }
    if (!PyUnicode_CheckExact(route) || !PyUnicode_CheckExact(view_name)) {
        outcome = 0;  /* None (the Python code makes the key with ``or ""``) */
        goto out;
    }
    key = PyTuple_Pack(3, route, func, view_name);
    if (key == NULL) {
        goto out;
    }
    PyObject *cached = PyDict_GetItemWithError(route_cache, key);  /* borrowed */
    if (cached == NULL) {
        if (PyErr_Occurred()) {  /* an unhashable view: the Python code copes */
            PyErr_Clear();
        }
        outcome = 0;
        goto out;
    }
    if (!PyTuple_CheckExact(cached) || PyTuple_GET_SIZE(cached) != 4) {
        outcome = 0;
        goto out;
    }
    Py_INCREF(cached);
    int skip = PyObject_IsTrue(PyTuple_GET_ITEM(cached, 3));
    if (skip != 0) {
        Py_DECREF(cached);
        outcome = skip > 0 ? 1 : -1;
        goto out;
    }
    streaming = PyObject_GetAttr(response, s_streaming);
    if (streaming == NULL) {
        Py_DECREF(cached);
        goto out;
    }
    if (streaming != Py_False) {
        Py_DECREF(cached);
        outcome = 0;
        goto out;
    }
    status = PyObject_GetAttr(response, s_status_code);
    method = status ? PyObject_GetAttr(request, s_method) : NULL;
    path = method ? PyObject_GetAttr(request, s_path) : NULL;
    meta = path ? PyObject_GetAttr(request, s_meta) : NULL;
    if (meta == NULL || !PyDict_CheckExact(meta) || !PyUnicode_CheckExact(method)
            || PyUnicode_GET_LENGTH(method) == 0) {  /* no method: the Python code says GET */
        Py_DECREF(cached);
        if (meta == NULL) {
            goto out;
        }
        outcome = 0;
        goto out;
    }
    query_string = PyDict_GetItemWithError(meta, s_query_string);  /* borrowed */
    if (query_string == NULL && PyErr_Occurred()) {
        Py_DECREF(cached);
        goto out;
    }
    query_string = Py_NewRef(query_string ? query_string : empty_str);
    PyObject *shared = PyDict_GetItemWithError(method_names, method);  /* borrowed */
    if (shared != NULL) {
        Py_SETREF(method, Py_NewRef(shared));
    }
    else if (PyErr_Occurred()) {
        Py_DECREF(cached);
        goto out;
    }
    queries = get_slot(ctx, ctx_queries);
    overflow = queries ? get_slot(ctx, ctx_overflow) : NULL;
    exception = overflow ? get_slot(ctx, ctx_exception) : NULL;
    user = exception ? user_id(request) : NULL;
    if (user == NULL) {
        Py_DECREF(cached);
        goto out;
    }
    /* as _finish: pack_request(method, route, view, ...), then push_request */
    packed = pack_plain(method, PyTuple_GET_ITEM(cached, 0), PyTuple_GET_ITEM(cached, 1),
                        path, query_string, status, ts, ms, queries, overflow, exception,
                        PyTuple_GET_ITEM(cached, 2), user);
    Py_DECREF(cached);
    if (packed == NULL) {
        goto out;
    }
    outcome = push_request(packed) < 0 ? -1 : 1;
out:
    Py_XDECREF(match);
    Py_XDECREF(route);
    Py_XDECREF(func);
    Py_XDECREF(view_name);
    Py_XDECREF(key);
    Py_XDECREF(status);
    Py_XDECREF(streaming);
    Py_XDECREF(method);
    Py_XDECREF(path);
    Py_XDECREF(meta);
    Py_XDECREF(query_string);
    Py_XDECREF(queries);
    Py_XDECREF(overflow);
    Py_XDECREF(exception);
    Py_XDECREF(user);
    Py_XDECREF(packed);
    return outcome;
}

typedef struct {
    PyObject_HEAD
    PyObject *get_response;
} Middleware;

/* Resets the capture ContextVar to token, keeping the exception being raised. */
static void
reset_keeping_error(PyObject *token)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    if (PyContextVar_Reset(current_var, token) < 0) {
        PyErr_Clear();
    }
    PyErr_Restore(type, value, traceback);
}

/* py_finish(request, response, ctx, wall, start[, exc]): the Python _finish. */
static PyObject *
call_finish(PyObject *request, PyObject *response, PyObject *ctx, double wall, double start,
            PyObject *exc)
{
    PyObject *result = NULL;
    PyObject *wall_clock = PyFloat_FromDouble(wall);
    PyObject *started = wall_clock ? PyFloat_FromDouble(start) : NULL;
    if (started != NULL) {
        result = PyObject_CallFunctionObjArgs(py_finish, request, response, ctx, wall_clock,
                                              started, exc, NULL);
    }
    Py_XDECREF(wall_clock);
    Py_XDECREF(started);
    return result;
}

/* _finish(request, response, ctx, wall, start) for a response: the common case here,
 * the others by the Python _finish; what this raises is counted. The response (or
 * what the Python _finish returns) as a new reference. */
static PyObject *
finish(PyObject *request, PyObject *response, PyObject *ctx, double wall, double start)
{
    int outcome = finish_common(request, response, ctx, wall, start);
    if (outcome == 0) {  /* not the common case: the Python _finish */
        return call_finish(request, response, ctx, wall, start, NULL);
    }
    if (outcome < 0 && count_error(mw_on_error) < 0) {
        return NULL;
    }
    return Py_NewRef(response);
}

static PyObject *
middleware_call(Middleware *self, PyObject *args, PyObject *kwargs)
{
    PyObject *request;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "the middleware takes the request alone");
        return NULL;
    }
    if (!PyArg_UnpackTuple(args, "PerformanceMiddleware", 1, 1, &request)) {
        return NULL;
    }
    if (self->get_response == NULL || py_finish == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "perfmonitor middleware: not configured");
        return NULL;
    }
    PyObject *get_response = Py_NewRef(self->get_response);
    PyObject *ctx = begin(request);
    if (ctx == NULL || ctx == Py_None) {
        Py_XDECREF(ctx);
        PyObject *plain = ctx ? PyObject_CallOneArg(get_response, request) : NULL;
        Py_DECREF(get_response);
        return plain;
    }
    /* the clocks as time.time() and time.perf_counter() read them, without their calls */
    double wall, start;
    PyObject *token = PyContextVar_Set(current_var, ctx);
    if (token == NULL || wall_seconds(&wall) < 0 || clock_seconds(&start) < 0) {
        if (token != NULL) {
            reset_keeping_error(token);
        }
        Py_XDECREF(token);
        Py_DECREF(ctx);
        Py_DECREF(get_response);
        return NULL;
    }
    PyObject *response = PyObject_CallOneArg(get_response, request);
    Py_DECREF(get_response);
    if (response == NULL) {
        /* as __call__: _finish with the exception (ctx still current), then reset */
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        if (ctx != suppressed) {
            PyObject *result = call_finish(request, Py_None, ctx, wall, start,
                                           value ? value : Py_None);
            if (result == NULL) {
                PyErr_Clear();
            }
            Py_XDECREF(result);
        }
        PyErr_Restore(type, value, traceback);
        reset_keeping_error(token);
        Py_DECREF(token);
        Py_DECREF(ctx);
        return NULL;
    }
    int reset = PyContextVar_Reset(current_var, token);
    Py_DECREF(token);
    if (reset < 0 || ctx == suppressed) {
        Py_DECREF(ctx);
        if (reset < 0) {
            Py_DECREF(response);
            return NULL;
        }
        return response;
    }
    PyObject *result = finish(request, response, ctx, wall, start);
    Py_DECREF(response);
    Py_DECREF(ctx);
    return result;
}

/* -- the flusher's sketches (analytics.sketch, Sink.rollups) ------------------ */

static void
put_uint32(unsigned char *out, uint32_t value)  /* little-endian */
{
    for (int b = 0; b < 4; b++) {
        out[b] = (unsigned char)(value >> (8 * b));
    }
}

static int
compare_keys(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* One series' (payload, count, sum, min, max), or None when it holds a value that is
 * not a float or not finite (the Python code takes that series). The payload is
 * QuantileSketch.to_bytes() before compression; the stats are those of
 * Sink.rollups(): the sum folded left to right from 0.0, the first of equal extremes. */
static PyObject *
series_rollup(PyObject *values, double multiplier, double log_base, double min_positive)
{
    Py_ssize_t n = PyList_GET_SIZE(values);
    if ((uint64_t)n > UINT32_MAX) {  /* counts are uint32 */
        Py_RETURN_NONE;
    }
    long long *keys = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(long long));
    if (keys == NULL) {
        return PyErr_NoMemory();
    }
    Py_ssize_t m = 0;
    double zeros = 0.0, total = 0.0, low = 0.0, high = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(values, i);
        if (!PyFloat_CheckExact(item)) {
            goto python;
        }
        double v = PyFloat_AS_DOUBLE(item);
        if (!isfinite(v)) {
            goto python;
        }
        total += v;
        if (i == 0 || v < low) {
            low = v;
        }
        if (i == 0 || v > high) {
            high = v;
        }
        if (v > min_positive) {
            /* LogarithmicMapping.key: math.log(v, 2) * multiplier, its ceiling; math.log
             * is the C library's log, divided by the log of the base */
            double key = ceil(log(v) / log_base * multiplier);
            if (!(key > -2147483647.0 && key < 2147483647.0)) {
                goto python;
            }
            keys[m++] = (long long)key;
        }
        else {
            zeros += 1.0;
        }
    }
    qsort(keys, (size_t)m, sizeof(long long), compare_keys);
    Py_ssize_t bins = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        bins += i == 0 || keys[i] != keys[i - 1];
    }
    /* "<BBdI": version 1, flags 1 (integer counts), the zero bucket, the bin count;
     * then the keys as int32 deltas (the first from 0), then the counts as uint32 */
    PyObject *payload = PyBytes_FromStringAndSize(NULL, 14 + 8 * bins);
    if (payload == NULL) {
        PyMem_Free(keys);
        return NULL;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(payload);
    out[0] = 1;
    out[1] = 1;
    if (PyFloat_Pack8(zeros, (char *)out + 2, 1) < 0) {
        Py_DECREF(payload);
        PyMem_Free(keys);
        return NULL;
    }
    put_uint32(out + 10, (uint32_t)bins);
    unsigned char *deltas = out + 14, *counts = out + 14 + 4 * bins;
    long long previous = 0;
    for (Py_ssize_t i = 0, bin = 0; i < m; bin++) {
        Py_ssize_t j = i;
        while (j < m && keys[j] == keys[i]) {
            j++;
        }
        put_uint32(deltas + 4 * bin, (uint32_t)(int32_t)(keys[i] - previous));
        put_uint32(counts + 4 * bin, (uint32_t)(j - i));
        previous = keys[i];
        i = j;
    }
    PyMem_Free(keys);
    return Py_BuildValue("(NnNNN)", payload, n, PyFloat_FromDouble(total),
                         PyFloat_FromDouble(low), PyFloat_FromDouble(high));
python:
    PyMem_Free(keys);
    Py_RETURN_NONE;
}

static PyObject *
series_rollups(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "series_rollups() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    if (!PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "series_rollups: a list of lists of floats");
        return NULL;
    }
    double mapping[3];  /* multiplier, log_base, min_positive */
    if (as_doubles(args + 1, 3, mapping) < 0) {
        return NULL;
    }
    PyObject *lists = args[0];
    Py_ssize_t n = PyList_GET_SIZE(lists);
    PyObject *out = PyList_New(n);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *values = PyList_GET_ITEM(lists, i);
        PyObject *item = PyList_CheckExact(values) && PyList_GET_SIZE(values) > 0
            ? series_rollup(values, mapping[0], mapping[1], mapping[2]) : Py_NewRef(Py_None);
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, item);
    }
    return out;
}

PyDoc_STRVAR(series_rollups_doc,
"series_rollups(lists, multiplier, log_base, min_positive)\n--\n\n"
"For each list of floats: (sketch payload, count, sum, min, max), as Sink.rollups()\n"
"computes them for a series without weights, the payload being QuantileSketch.to_bytes()\n"
"before compression; None for a list that is empty or holds a value that is not a\n"
"finite float (the Python code takes that series).");

/* The async middleware's two ends (middleware.py, __acall__): a coroutine stays in
 * Python, what it does before and after awaiting the view need not. */
static PyObject *
async_begin(PyObject *module, PyObject *request)
{
    if (py_finish == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "perfmonitor middleware: not configured");
        return NULL;
    }
    return begin(request);
}

PyDoc_STRVAR(async_begin_doc,
"begin(request)\n--\n\n"
"middleware._begin, compiled: a new capture context, SUPPRESSED or None.");

static PyObject *
async_finish(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "finish() takes 5 arguments (%zd given)", nargs);
        return NULL;
    }
    if (py_finish == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "perfmonitor middleware: not configured");
        return NULL;
    }
    PyObject *request = args[0], *response = args[1], *ctx = args[2];
    double clocks[2];  /* wall, start */
    if (as_doubles(args + 3, 2, clocks) < 0) {
        return NULL;
    }
    return finish(request, response, ctx, clocks[0], clocks[1]);
}

PyDoc_STRVAR(async_finish_doc,
"finish(request, response, ctx, wall, start)\n--\n\n"
"middleware._finish for a response (no exception), compiled: records the request\n"
"and returns the response; its uncommon cases go to the Python _finish.");

static int
middleware_traverse(Middleware *self, visitproc visit, void *arg)
{
    /* A static type: a heap subclass's own traverse visits its type. */
    Py_VISIT(self->get_response);
    return 0;
}

static int
middleware_clear(Middleware *self)
{
    Py_CLEAR(self->get_response);
    return 0;
}

static void
middleware_dealloc(Middleware *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    middleware_clear(self);
    type->tp_free((PyObject *)self);
}

static PyMemberDef middleware_members[] = {
    {"get_response", T_OBJECT_EX, offsetof(Middleware, get_response), 0,
     "the rest of the middleware stack"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject MiddlewareType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "perfmonitor.capture._speedups.Middleware",
    .tp_doc = "The sync request path of PerformanceMiddleware, compiled: a base class "
              "(middleware.py subclasses it).",
    .tp_basicsize = sizeof(Middleware),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_call = (ternaryfunc)middleware_call,
    .tp_traverse = (traverseproc)middleware_traverse,
    .tp_clear = (inquiry)middleware_clear,
    .tp_dealloc = (destructor)middleware_dealloc,
    .tp_members = middleware_members,
};

static PyObject *
configure_middleware(PyObject *module, PyObject *args)
{
    PyObject *context, *begin_function, *finish_function, *routes, *methods_map;
    PyObject *buffers, *errors, *wall_clock;
    if (!PyArg_ParseTuple(args, "O!OOO!O!OOO:configure_middleware", &PyType_Type,
                          &context, &begin_function, &finish_function, &PyDict_Type, &routes,
                          &PyDict_Type, &methods_map, &buffers, &errors, &wall_clock)) {
        return NULL;
    }
    if (fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure_middleware: configure() first");
        return NULL;
    }
    if (context != (PyObject *)ctx_queries.type) {
        PyErr_SetString(PyExc_TypeError,
                        "configure_middleware: the context type is not configure()'s");
        return NULL;
    }
    PyObject *callables[] = {begin_function, finish_function, errors, wall_clock};
    if (check_callables("configure_middleware", callables, 4) < 0) {
        return NULL;
    }
    PyObject *collections = PyImport_ImportModule("collections");
    PyObject *deque = collections ? PyObject_GetAttrString(collections, "deque") : NULL;
    PyObject *append = deque ? PyObject_GetAttr(deque, s_append) : NULL;
    Py_XDECREF(collections);
    if (append == NULL) {
        Py_XDECREF(deque);
        return NULL;
    }
    PyObject **slots[] = {&py_begin, &py_finish, &route_cache, &method_names, &buffer_module,
                          &mw_on_error, &time_time, &deque_type, &deque_append};
    PyObject *values[] = {begin_function, finish_function, routes, methods_map, buffers,
                          errors, wall_clock, deque, append};
    keep(slots, values, 9);
    Py_DECREF(deque);
    Py_DECREF(append);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(configure_middleware_doc,
"configure_middleware(CaptureContext, begin, finish, route_cache, methods, buffer_module,\n"
"                     on_error, time)\n--\n\n"
"Gives Middleware what middleware.py's sync path reads; configure() first.");

static int
intern_names(void)
{
    struct { PyObject **slot; const char *text; } names[] = {
        {&s_queries, "queries"}, {&s_limit, "limit"}, {&s_loaded, "loaded"},
        {&s_enabled, "enabled"}, {&s_ignore_prefixes, "ignore_prefixes"},
        {&s_query_limit, "query_limit"}, {&s_path, "path"}, {&s_overflow, "overflow"},
        {&s_exception, "exception"}, {&s_overflow_lock, "_overflow_lock"},
        {&s_resolver_match, "resolver_match"}, {&s_route, "route"}, {&s_func, "func"},
        {&s_view_name, "view_name"}, {&s_status_code, "status_code"},
        {&s_streaming, "streaming"}, {&s_method, "method"}, {&s_meta, "META"},
        {&s_cached_user, "_cached_user"},
        {&s_is_authenticated, "is_authenticated"}, {&s_pk, "pk"}, {&s_buffer, "buffer"},
        {&s_requests, "_requests"}, {&s_fast_until, "_fast_until"},
        {&s_push_request, "push_request"}, {&s_append, "append"},
        {&s_query_string, "QUERY_STRING"}, {&empty_str, ""},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        *names[i].slot = PyUnicode_InternFromString(names[i].text);
        if (*names[i].slot == NULL) {
            return -1;
        }
    }
    empty_tuple = PyTuple_New(0);
    return empty_tuple == NULL ? -1 : 0;
}

static PyMethodDef methods[] = {
    {"query_timer", (PyCFunction)(void (*)(void))query_timer, METH_FASTCALL, query_timer_doc},
    {"configure", configure, METH_VARARGS, configure_doc},
    {"configure_middleware", configure_middleware, METH_VARARGS, configure_middleware_doc},
    {"pack_request", (PyCFunction)(void (*)(void))pack_request, METH_FASTCALL, pack_request_doc},
    {"begin", async_begin, METH_O, async_begin_doc},
    {"series_rollups", (PyCFunction)(void (*)(void))series_rollups, METH_FASTCALL,
     series_rollups_doc},
    {"finish", (PyCFunction)(void (*)(void))async_finish, METH_FASTCALL, async_finish_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "perfmonitor.capture._speedups",
    .m_doc = "The request path's common case, compiled (optional; see query_hook and "
             "middleware).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (intern_names() < 0 || PyType_Ready(&MiddlewareType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Middleware", (PyObject *)&MiddlewareType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
