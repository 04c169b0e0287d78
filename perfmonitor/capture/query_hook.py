"""SQL timing through Django's supported ``connection.execute_wrappers``.

Installed once per connection from ``connection_created`` and on connections
that already exist when the app is ready. The wrapper only times the call and
appends (sql, ms) to the current capture context; fingerprinting happens in
the flusher.
"""

from __future__ import annotations

import time
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

from perfmonitor.capture import buffer as buffer_module
from perfmonitor.capture.context import current, origin, process_origin, suppressed
from perfmonitor.capture.records import StandaloneQuery
from perfmonitor.conf import settings

_perf = time.perf_counter
_process_origin: list[str | None] = []


def _fallback_origin() -> str | None:
    if not _process_origin:
        _process_origin.append(process_origin())
    return _process_origin[0]


class QueryTimer:
    """The execute wrapper. One instance serves every connection."""

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if suppressed.get():
            return execute(sql, params, many, context)
        start = _perf()
        failed = True
        try:
            result = execute(sql, params, many, context)
            failed = False
            return result
        finally:
            ms = (_perf() - start) * 1000.0
            try:
                self._record(sql, ms, failed)
            except Exception as exc:
                buffer_module.buffer.count_internal_error("query hook", exc)

    @staticmethod
    def _record(sql: str, ms: float, failed: bool) -> None:
        ctx = current.get()
        if ctx is not None:
            ctx.add_query(sql, ms, failed)
            return
        if not settings.ENABLED:
            return
        where = origin.get() or _fallback_origin()
        if where is None:
            return
        buffer_module.push(StandaloneQuery(where, sql, ms, failed, time.time()))


query_timer = QueryTimer()


def install(connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """Add the timer to a connection's execute wrappers, once."""
    if not any(w is query_timer for w in connection.execute_wrappers):
        connection.execute_wrappers.append(query_timer)


def install_on_existing_connections() -> None:
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        install(connection)
