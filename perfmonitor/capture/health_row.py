"""Each process's health row (``MonitorHealth``), written by its flusher every few seconds.

Apart from :mod:`perfmonitor.capture.writer` because every process writes it, also
one that hands its records to another (``SHARED_WRITER``) and so never writes a
batch: such a process never loads the writer's numpy and sketches.
"""

from __future__ import annotations

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
_health_statements: dict[str, str] = {}


def _health_upsert(connection: Any) -> str:
    """One INSERT ... ON CONFLICT DO UPDATE for the health row (PostgreSQL and SQLite)."""
    statement = _health_statements.get(connection.alias)
    if statement is None:
        quote = connection.ops.quote_name
        columns = ", ".join(quote(c) for c in _HEALTH_COLUMNS)
        updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in _HEALTH_COLUMNS[1:])
        statement = (f"INSERT INTO {quote(MonitorHealth._meta.db_table)} ({columns}) VALUES "
                     f"({', '.join(['%s'] * len(_HEALTH_COLUMNS))}) ON CONFLICT "
                     f"({quote('process')}) DO UPDATE SET {updates}")
        _health_statements[connection.alias] = statement
    return statement


def write_health(stats: dict[str, Any]) -> None:
    """Upsert this process's MonitorHealth row.

    Every flusher does this every few seconds: on PostgreSQL and SQLite it is one
    prepared upsert statement instead of an ORM update (and a create the first time).
    """
    alias = router.db_for_write(MonitorHealth)
    values = {
        "started_at": db_datetime(stats["started_at"]),
        "updated_at": db_datetime(datetime.now(tz=UTC).timestamp()),
        "captured": stats["captured"], "flushed": stats["flushed"],
        "dropped": stats["dropped"], "flush_errors": stats["flush_errors"],
        "internal_errors": stats["internal_errors"], "buffer_size": stats["buffer_size"],
        "last_flush_at": db_datetime(stats["last_flush_at"]) if stats["last_flush_at"] else None,
        "last_error": clean_text(stats["last_error"]),
    }
    connection = connections[alias]
    with capture_suppressed():
        if connection.vendor in ("postgresql", "sqlite"):
            adapt = connection.ops.adapt_datetimefield_value
            params = [stats["process"]] + [
                adapt(values[c]) if c in ("started_at", "updated_at", "last_flush_at")
                else values[c] for c in _HEALTH_COLUMNS[1:]]
            with connection.cursor() as cursor:
                cursor.execute(_health_upsert(connection), params)
            return
        rows = MonitorHealth.objects.using(alias)
        if rows.filter(process=stats["process"]).update(**values):
            return
        try:
            with transaction.atomic(using=alias):
                rows.create(process=stats["process"], **values)
        except IntegrityError:  # created meanwhile (same host:pid after a restart)
            rows.filter(process=stats["process"]).update(**values)
