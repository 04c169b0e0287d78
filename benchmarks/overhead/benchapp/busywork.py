"""The ``busywork`` profile (diagnostics): interpreter work, and nothing else, where a
monitor's request path runs.

A middleware and a query wrapper that only count (~24 k instructions of counting in
the middleware, ~4.8 k per query), touching no buffer, no context variable and no
dictionary of statements. By callgrind the profile adds 130-190 k instructions per
10-query request (Django's wrapper machinery and the process layout included):
somewhat more than perfmonitor's ~88 k request path. Its wall-clock ratio to bare, next to
perfmonitor's, tells whether perfmonitor's serving threads cost more than their
instruction count because of what they touch or because any code there would.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.signals import connection_created

MIDDLEWARE_STEPS = 46  # ~530 instructions a step (small-int arithmetic, 3.11)
QUERY_STEPS = 9


def _count(steps: int) -> int:
    total = 0
    for i in range(steps):
        total += i * 1000
    return total


def busy_wrapper(execute: Any, sql: Any, params: Any, many: bool, context: Any) -> Any:
    _count(QUERY_STEPS)
    return execute(sql, params, many, context)


def install(connection: Any, **kwargs: Any) -> None:
    if busy_wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, busy_wrapper)


connection_created.connect(install)


class BusyworkMiddleware:
    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        _count(MIDDLEWARE_STEPS // 2)
        response = self.get_response(request)
        _count(MIDDLEWARE_STEPS - MIDDLEWARE_STEPS // 2)
        return response
