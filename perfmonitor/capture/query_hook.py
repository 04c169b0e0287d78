"""SQL timing through Django's supported ``connection.execute_wrappers``.

Installed once per connection from ``connection_created`` and on connections
that already exist when the app is ready. The wrapper only times the call and
appends ``(sql, ms, failed)`` to the current capture context; fingerprinting
happens in the flusher.

The common case (a query inside a request or task) runs compiled when
``perfmonitor.capture._speedups`` was built at install time, which halves what a
query costs the host; without a compiler, or with the environment variable
``PERFMONITOR_PURE_PYTHON=1``, ``_py_query_timer`` alone does everything.
``IMPLEMENTATION`` tells which one this process uses.

The timer goes first in ``execute_wrappers`` (outermost): the host's own
``with connection.execute_wrapper(...)`` blocks pop the *last* wrapper on exit,
so appending ours while such a block is open (the first query of a thread
opens the connection and fires ``connection_created``) would get ours popped
and leave theirs installed.
"""

from __future__ import annotations

import os
import time
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

from perfmonitor.capture import buffer as buffer_module
from perfmonitor.capture.context import SUPPRESSED, CaptureContext, current, origin, process_origin
from perfmonitor.conf import request_path, settings

_perf = time.perf_counter
_process_origin: list[str | None] = []

# Django builds a new SQL string for every query; buffered records would hold
# one copy each. Interning keeps one copy per distinct statement, so a request
# costs a few pointers per query in memory. Bounded: cleared when full.
MAX_INTERNED_SQL = 5000
_interned: dict[str, str] = {}


def intern_sql(sql: str) -> str:
    canonical = _interned.get(sql)
    if canonical is not None:
        return canonical
    if len(_interned) >= MAX_INTERNED_SQL:
        _interned.clear()
    _interned[sql] = sql
    return sql


def _fallback_origin() -> str | None:
    if not _process_origin:
        _process_origin.append(process_origin())
    return _process_origin[0]


_current_context = current.get


def _py_query_timer(execute: Any, sql: Any, params: Any, many: bool, context: Any) -> Any:
    """The execute wrapper in Python. One function serves every connection.

    A plain function, not an object with ``__call__``: Django calls it through a
    ``functools.partial`` once per query, and a function call is ~1000 machine
    instructions cheaper there. The common case (a str statement inside a request
    or task, below the per-request cap) is inlined: one ContextVar read (before the
    query, so that what runs after it, with the caches the database round trip
    left cold, is as little as it can be), two clock reads, one dict lookup and
    one list append. Everything else goes through _record().

    With ``ENABLED`` off (the middleware sets no context) a query is passed through
    untimed, so that the off switch costs only the wrapper's call: on a busy host a
    hook that timed every query and kept nothing cost a 10-query request about 1 %
    (benchmarks/overhead). Inside a request this costs nothing more than before.
    """
    ctx = _current_context()
    if ctx is None:  # outside a request (or capture off)
        try:
            off = not (request_path if request_path.loaded else request_path.load()).enabled
        except Exception:  # settings that do not load: _record() counts it, as before
            off = False
        if off:
            return execute(sql, params, many, context)
    elif ctx is SUPPRESSED:
        return execute(sql, params, many, context)
    start = _perf()
    try:
        result = execute(sql, params, many, context)
    except BaseException:
        _record(ctx, sql, (_perf() - start) * 1000.0, True)
        raise
    ms = (_perf() - start) * 1000.0
    try:  # free unless it raises (zero-cost try); nothing here may reach the host
        if ctx is not None and type(sql) is str:
            queries = ctx.queries
            if len(queries) < ctx.limit:
                queries.append((_interned.get(sql) or intern_sql(sql), ms, False))
                return result
    except Exception as exc:
        _count_error(exc)
        return result
    _record(ctx, sql, ms, False)
    return result


def _record(ctx: CaptureContext | None, sql: Any, ms: float, failed: bool) -> None:
    """The slow path: failures, past the cap, odd statements, outside requests."""
    try:
        if ctx is not None:
            ctx.add_query(_statement(sql), ms, failed)
        elif settings.ENABLED:
            where = origin.get() or _fallback_origin()
            if where is not None:
                # A plain tuple (see records.expand_standalone): cheapest to build.
                buffer_module.buffer.push((where, _statement(sql), ms, failed, time.time()))
    except Exception as exc:  # never raise into the host's query
        _count_error(exc)


def _statement(sql: Any) -> str:
    if type(sql) is str:
        return intern_sql(sql)
    # psycopg sql.Composed and friends: their repr can hold literal values.
    return f"<{type(sql).__name__}>"


def _count_error(exc: BaseException) -> None:
    buffer_module.buffer.count_internal_error("query hook", exc)


# PERFMONITOR_PURE_PYTHON=1: the Python request path even where the compiled one is
# built (to compare them, or to rule the compiled code out while debugging).
PURE_PYTHON_REQUESTED = os.environ.get("PERFMONITOR_PURE_PYTHON", "").strip().lower() in (
    "1", "true", "yes")


def _compiled_timer() -> Any:
    """The compiled timer configured with this module's state, or None."""
    if PURE_PYTHON_REQUESTED:
        return None
    try:
        from perfmonitor.capture import _speedups  # type: ignore[attr-defined]
    except ImportError:  # not built (no compiler at install time): the Python timer
        return None
    _speedups.configure(current, SUPPRESSED, _interned, _py_query_timer, _record, _count_error,
                        MAX_INTERNED_SQL, request_path)
    return _speedups.query_timer


query_timer: Any = _compiled_timer() or _py_query_timer
IMPLEMENTATION = "python" if query_timer is _py_query_timer else "compiled"


def install(connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """Put the timer first in a connection's execute wrappers, once."""
    wrappers = connection.execute_wrappers
    if not any(w is query_timer for w in wrappers):
        wrappers.insert(0, query_timer)


def install_on_existing_connections() -> None:
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        install(connection)
