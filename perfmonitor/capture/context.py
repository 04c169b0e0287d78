"""Per-request (or per-task) capture state, held in a ContextVar.

The query hook appends to the current context; nothing here does I/O.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class CaptureContext:
    """Queries seen while serving one request or running one task."""

    __slots__ = ("queries", "overflow", "overflow_count", "query_time_ms", "limit", "exception")

    def __init__(self, limit: int) -> None:
        self.queries: list[tuple[str, float, bool]] = []
        self.overflow: dict[str, list[float]] = {}
        self.overflow_count = 0
        self.query_time_ms = 0.0
        self.limit = limit
        self.exception: str = ""

    def add_query(self, sql: str, ms: float, failed: bool) -> None:
        self.query_time_ms += ms
        if len(self.queries) < self.limit:
            self.queries.append((sql, ms, failed))
            return
        # Past the cap, keep per-statement sums only, in a bounded dict.
        self.overflow_count += 1
        slot = self.overflow.get(sql)
        if slot is None:
            if len(self.overflow) >= 256:
                sql = "<other>"
                slot = self.overflow.setdefault(sql, [0, 0.0])
            else:
                slot = self.overflow[sql] = [0, 0.0]
        slot[0] += 1
        slot[1] += ms

    @property
    def query_count(self) -> int:
        return len(self.queries) + self.overflow_count


current: ContextVar[CaptureContext | None] = ContextVar("perfmonitor_capture", default=None)
origin: ContextVar[str | None] = ContextVar("perfmonitor_origin", default=None)
suppressed: ContextVar[bool] = ContextVar("perfmonitor_suppressed", default=False)


@contextmanager
def capture_suppressed() -> Iterator[None]:
    """Queries run inside are not captured (perfmonitor's own reads and writes)."""
    token = suppressed.set(True)
    try:
        yield
    finally:
        suppressed.reset(token)


_IGNORED_COMMANDS = frozenset({
    "migrate", "makemigrations", "sqlmigrate", "showmigrations", "collectstatic", "check",
    "test", "shell", "dbshell", "createsuperuser", "flush", "squashmigrations",
})


def process_origin() -> str | None:
    """Origin of queries run outside requests and tasks; None disables capture."""
    argv = sys.argv
    path = argv[0] if argv else "python"
    if "pytest" in path or "py.test" in path:
        return None  # test processes: only requests and tasks are meaningful
    name = path.rsplit("/", 1)[-1]
    django_main = path.endswith("django/__main__.py")
    if (name in {"manage.py", "django-admin", "django-admin.py"} or django_main) and len(argv) > 1:
        command = argv[1]
        if command in _IGNORED_COMMANDS:
            return None
        return f"command:{command}"
    return f"process:{name}"
