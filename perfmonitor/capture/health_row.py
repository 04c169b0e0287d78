"""Each process's health row (``MonitorHealth``), written by its flusher every few seconds.

A process that hands its records to another (``SHARED_WRITER``) hands its health row
over too, and the writer writes it with its own, in one statement; such a process
opens no database connection and never loads the writer's numpy and sketches. When
its writer refuses or cannot be reached, it writes the row itself.
"""

from __future__ import annotations

import marshal
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings as django_settings
from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone

from perfmonitor.capture.context import capture_suppressed
from perfmonitor.capture.rows import clean_text
from perfmonitor.models import MonitorHealth


def db_datetime(ts: float) -> datetime:
    """A Unix timestamp as the datetime Django stores: aware with USE_TZ, local naive without."""
    moment = datetime.fromtimestamp(ts, tz=UTC)
    if not django_settings.USE_TZ:
        return timezone.make_naive(moment, timezone.get_default_timezone())
    return moment


_HEALTH_COLUMNS = ("process", "started_at", "updated_at", "captured", "flushed", "dropped",
                   "flush_errors", "internal_errors", "buffer_size", "last_flush_at",
                   "last_error")
_health_statements: dict[tuple[str, int], str] = {}
# Rows per statement: 11 parameters each, well inside every backend's limit.
MAX_ROWS_PER_STATEMENT = 50

# A sender's row travels to its writer (perfmonitor.capture.sharing) as one marshalled
# tuple of the row's columns, in _HEALTH_COLUMNS' order; ``updated_at`` is when the
# sender reported, not when the writer wrote it.
_COUNTERS = ("captured", "flushed", "dropped", "flush_errors", "internal_errors", "buffer_size")
MAX_PROCESS_CHARS = 255  # MonitorHealth.process
MAX_ERROR_CHARS = 2000


def pack_for_writer(stats: dict[str, Any], now: float) -> bytes:
    """This process's health row for its writer to write (see unpack_from_sender)."""
    values = {**stats, "updated_at": now}
    return marshal.dumps(tuple(values[field] for field in _HEALTH_COLUMNS))


def _timestamp(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value) and 0 <= value < 1e11


def unpack_from_sender(data: bytes | bytearray) -> dict[str, Any] | None:
    """A sender's health row as ``write_health`` takes it, or None when the message is
    not one (it is then counted and not written: one bad row would fail the statement
    that carries the others)."""
    try:
        values = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        return None
    if type(values) is not tuple or len(values) != len(_HEALTH_COLUMNS):
        return None
    stats = dict(zip(_HEALTH_COLUMNS, values, strict=True))
    process, error = stats["process"], stats["last_error"]
    if (type(process) is not str or not process or len(process) > MAX_PROCESS_CHARS
            or "\x00" in process or type(error) is not str):
        return None
    if not (_timestamp(stats["started_at"]) and _timestamp(stats["updated_at"])
            and (stats["last_flush_at"] is None or _timestamp(stats["last_flush_at"]))):
        return None
    if not all(type(stats[c]) is int and 0 <= stats[c] < 2 ** 62 for c in _COUNTERS):
        return None
    stats["last_error"] = error[:MAX_ERROR_CHARS]
    return stats


def _health_upsert(connection: Any, rows: int) -> str:
    """One INSERT ... ON CONFLICT DO UPDATE of ``rows`` health rows (PostgreSQL, SQLite)."""
    statement = _health_statements.get((connection.alias, rows))
    if statement is None:
        quote = connection.ops.quote_name
        columns = ", ".join(quote(c) for c in _HEALTH_COLUMNS)
        updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in _HEALTH_COLUMNS[1:])
        row = f"({', '.join(['%s'] * len(_HEALTH_COLUMNS))})"
        statement = (f"INSERT INTO {quote(MonitorHealth._meta.db_table)} ({columns}) VALUES "
                     f"{', '.join([row] * rows)} ON CONFLICT "
                     f"({quote('process')}) DO UPDATE SET {updates}")
        _health_statements[(connection.alias, rows)] = statement
    return statement


def _row_values(stats: dict[str, Any], now: float) -> dict[str, Any]:
    updated = stats.get("updated_at") or now
    return {
        "process": clean_text(stats["process"]),
        "started_at": db_datetime(stats["started_at"]),
        "updated_at": db_datetime(updated),
        "captured": stats["captured"], "flushed": stats["flushed"],
        "dropped": stats["dropped"], "flush_errors": stats["flush_errors"],
        "internal_errors": stats["internal_errors"], "buffer_size": stats["buffer_size"],
        "last_flush_at": db_datetime(stats["last_flush_at"]) if stats["last_flush_at"] else None,
        "last_error": clean_text(stats["last_error"]),
    }


def write_health(stats: dict[str, Any], peers: Iterable[dict[str, Any]] = ()) -> None:
    """Upsert this process's MonitorHealth row, and those of the processes that hand
    their records to this one (``peers``, as ``unpack_from_sender`` gives them).

    Every flusher does this every few seconds: on PostgreSQL and SQLite it is one
    prepared upsert statement for all the rows instead of an ORM update (and a create
    the first time) each.
    """
    alias = router.db_for_write(MonitorHealth)
    now = datetime.now(tz=UTC).timestamp()
    rows = [_row_values(stats, now)]
    seen = {rows[0]["process"]}
    for peer in peers:  # one statement may not touch a row twice
        values = _row_values(peer, now)
        if values["process"] not in seen:
            seen.add(values["process"])
            rows.append(values)
    rows.sort(key=lambda row: row["process"])  # two writers never lock rows in turn
    connection = connections[alias]
    with capture_suppressed():
        if connection.vendor in ("postgresql", "sqlite"):
            adapt = connection.ops.adapt_datetimefield_value
            dates = ("started_at", "updated_at", "last_flush_at")
            with connection.cursor() as cursor:
                for at in range(0, len(rows), MAX_ROWS_PER_STATEMENT):
                    part = rows[at:at + MAX_ROWS_PER_STATEMENT]
                    params = [adapt(row[c]) if c in dates else row[c]
                              for row in part for c in _HEALTH_COLUMNS]
                    cursor.execute(_health_upsert(connection, len(part)), params)
            return
        for values in rows:
            _write_with_orm(alias, values)


def _write_with_orm(alias: str, values: dict[str, Any]) -> None:
    rows = MonitorHealth.objects.using(alias)
    process = values.pop("process")
    if rows.filter(process=process).update(**values):
        return
    try:
        with transaction.atomic(using=alias):
            rows.create(process=process, **values)
    except IntegrityError:  # created meanwhile (same host:pid after a restart)
        rows.filter(process=process).update(**values)
