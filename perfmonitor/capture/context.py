"""Per-request (or per-task) capture state, held in a ContextVar.

The query hook appends to the current context; nothing here does I/O. A
ContextVar (not a thread-local) is what follows a request through
``sync_to_async`` / ``async_to_sync`` and into the thread that runs an async
view's ORM calls, so their queries land in the right request.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# Past MAX_QUERIES_TRACKED_PER_REQUEST, queries are summed per statement in at
# most this many slots (plus one for everything else).
OVERFLOW_SLOTS = 256
OTHER_SQL = "<other>"

_overflow_lock_guard = threading.Lock()


class CaptureContext:
    """Queries seen while serving one request or running one task.

    ``queries`` holds one ``(sql, ms, failed)`` tuple per query up to ``limit``;
    beyond it ``overflow`` (None until then) keeps ``sql -> [count, total_ms,
    failures]``. Counts
    and totals are computed from these when the record is expanded, off the
    request path, so no running sum can lose an update when two threads of one
    request (``asyncio.gather`` over ``sync_to_async``) run queries at once.
    """

    __slots__ = ("queries", "overflow", "limit", "exception", "_overflow_lock")

    def __init__(self, limit: int) -> None:
        # Created once per request: as little as it can be (the limit is an int, as
        # the system checks make sure; overflow only when a request needs it).
        self.queries: list[tuple[str, float, bool]] = []
        self.overflow: dict[str, list[float]] | None = None
        self.limit = limit
        self.exception: str = ""
        self._overflow_lock: threading.Lock | None = None

    def add_query(self, sql: str, ms: float, failed: bool) -> None:
        queries = self.queries
        if len(queries) < self.limit:
            queries.append((sql, ms, failed))  # list.append is atomic
            return
        self._add_overflow(sql, ms, failed)

    def _add_overflow(self, sql: str, ms: float, failed: bool) -> None:
        # Rare path (a request past the cap): a per-request lock keeps the sums
        # exact; no other request ever waits on it.
        lock = self._overflow_lock
        if lock is None:
            with _overflow_lock_guard:
                if self._overflow_lock is None:
                    self._overflow_lock = threading.Lock()
                lock = self._overflow_lock
        with lock:
            overflow = self.overflow
            if overflow is None:
                overflow = self.overflow = {}
            slot = overflow.get(sql)
            if slot is None:
                if len(overflow) >= OVERFLOW_SLOTS:
                    slot = overflow.setdefault(OTHER_SQL, [0, 0.0, 0])
                else:
                    slot = overflow[sql] = [0, 0.0, 0]
            slot[0] += 1
            slot[1] += ms
            if failed:
                slot[2] += 1

    @property
    def query_count(self) -> int:
        overflow = list((self.overflow or {}).values())
        return len(self.queries) + int(sum(slot[0] for slot in overflow))

    @property
    def query_time_ms(self) -> float:
        overflow = list((self.overflow or {}).values())
        total = sum(ms for _, ms, _ in list(self.queries))
        return total + sum(slot[1] for slot in overflow)


# The capture context of the request or task being served, None outside them, or
# SUPPRESSED where nothing is captured (perfmonitor's own work, ignored paths). One
# variable, so that the query hook reads one ContextVar per query, not two.
current: ContextVar[CaptureContext | None] = ContextVar("perfmonitor_capture", default=None)
origin: ContextVar[str | None] = ContextVar("perfmonitor_origin", default=None)
SUPPRESSED = CaptureContext(0)


@contextmanager
def capture_suppressed() -> Iterator[None]:
    """Queries run inside are not captured (perfmonitor's own reads and writes).

    A request served inside such a block captures its own queries (the middleware
    sets its context over this one); a unit of work (``track``, a Celery task) run
    inside it captures nothing.
    """
    token = current.set(SUPPRESSED)
    try:
        yield
    finally:
        current.reset(token)


# Commands whose queries say nothing about the site (schema work, tooling) and
# perfmonitor's own commands are not captured.
_IGNORED_COMMANDS = frozenset({
    "migrate", "makemigrations", "sqlmigrate", "showmigrations", "collectstatic", "check",
    "test", "shell", "dbshell", "createsuperuser", "flush", "squashmigrations", "help",
    "version", "diffsettings", "createcachetable", "inspectdb", "optimizemigration",
})
_DJANGO_ENTRY_POINTS = frozenset({"manage.py", "django-admin", "django-admin.py", "django"})


def process_origin(argv: list[str] | None = None) -> str | None:
    """Origin of queries run outside requests and tasks; None disables capture.

    ``manage.py <command>`` (and ``django-admin`` / ``python -m django``) gives
    ``command:<command>``; any other program ``process:<program>`` (``python -m
    celery`` gives ``process:celery``). Test runs give None: only their requests
    and tasks are meaningful.
    """
    argv = sys.argv if argv is None else argv
    path = argv[0] if argv else ""
    if "pytest" in path or "py.test" in path:
        return None
    name = os.path.basename(path)
    if name == "__main__.py":  # python -m <package>
        name = os.path.basename(os.path.dirname(path))
    if not name or name.startswith("-"):  # python -c / an interactive interpreter
        name = "python"
    if name in _DJANGO_ENTRY_POINTS:
        if len(argv) < 2:
            return None
        command = argv[1]
        if command in _IGNORED_COMMANDS or command.startswith(("perfmonitor_", "-")):
            return None
        return f"command:{command}"
    return f"process:{name}"
