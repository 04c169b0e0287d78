"""The query layer's one hot statement, as SQL: rollup rows covering a window.

Built by hand because it runs several times per dashboard render with a
dozen OR-ed ranges, and building the equivalent ``Q`` tree cost more than
the query itself. The statement is the one :func:`query._rows_filter`
describes (``query.resolution_filter`` still returns it as a ``Q``); values
are always parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connections, router

from perfmonitor.models import MetricRollup

Names = str | Sequence[str] | None
ALL = "*"


def _in(column: str, value: Names, params: list[Any]) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        params.append(value)
        return f" AND {column} = %s"
    values = list(value)
    params.extend(values)
    return f" AND {column} IN ({', '.join(['%s'] * len(values))})"


def series_sql(kind: str, name: Names, dimension: Names, group_by: Sequence[str],
               ) -> tuple[tuple[str, list[Any]], tuple[str, list[Any]]]:
    """(coarse rows condition, minute rows condition), each with its parameters."""
    raw_params: list[Any] = [kind, ALL, ALL]
    raw = "kind = %s AND name <> %s AND dimension <> %s"
    raw += _in("name", name, raw_params) + _in("dimension", dimension, raw_params)
    if dimension is None and "dimension" not in group_by:
        from perfmonitor.analytics.query import NAME_TOTAL_KINDS

        if name is None and "name" not in group_by:
            return ("kind = %s AND name = %s AND dimension = %s", [kind, ALL, ALL]), \
                (raw, raw_params)
        if kind in NAME_TOTAL_KINDS:
            params: list[Any] = [kind, ALL, ALL]
            sql = "kind = %s AND dimension = %s AND name <> %s" + _in("name", name, params)
            return (sql, params), (raw, raw_params)
    return (raw, list(raw_params)), (raw, raw_params)


def select_rows(columns: Sequence[str], *, kind: str, name: Names, dimension: Names,
                group_by: Sequence[str], segments: list[tuple[int, datetime, datetime]],
                late: tuple[int, ...]) -> list[tuple]:
    """Rows of the series set over the segments (plus unfolded late minute rows)."""
    if (name is not None and not isinstance(name, str) and not list(name)) or (
            dimension is not None and not isinstance(dimension, str) and not list(dimension)):
        return []
    alias = router.db_for_read(MetricRollup)
    connection = connections[alias]
    adapt = connection.ops.adapt_datetimefield_value
    (coarse_sql, coarse_params), (fine_sql, fine_params) = series_sql(kind, name, dimension,
                                                                      group_by)
    coarse = [s for s in segments if s[0] != MetricRollup.MINUTE]
    fine = [s for s in segments if s[0] == MetricRollup.MINUTE]
    parts: list[str] = []
    params: list[Any] = []

    def ranges(items: list[tuple[int, datetime, datetime]], out: list[Any],
               with_resolution: bool = True) -> str:
        sql = []
        for res, start, end in items:
            if with_resolution:
                sql.append("(resolution = %s AND bucket_start >= %s AND bucket_start < %s)")
                out.extend([res, adapt(start), adapt(end)])
            else:
                sql.append("(bucket_start >= %s AND bucket_start < %s)")
                out.extend([adapt(start), adapt(end)])
        return " OR ".join(sql)

    if coarse:
        params.extend(coarse_params)
        parts.append(f"({coarse_sql} AND ({ranges(coarse, params)}))")
    if fine:
        params.extend(fine_params)
        parts.append(f"({fine_sql} AND ({ranges(fine, params)}))")
    if coarse and late:
        # Late rows count where their coarse row would have; "NOT compacted" is
        # re-checked here, so a row folded since the ids were read counts once.
        params.extend(fine_params)
        params.extend(late)
        params.append(MetricRollup.MINUTE)
        ids = ", ".join(["%s"] * len(late))
        parts.append(f"({fine_sql} AND id IN ({ids}) AND resolution = %s AND NOT compacted "
                     f"AND ({ranges(coarse, params, with_resolution=False)}))")
    if not parts:
        return []
    table = connection.ops.quote_name(MetricRollup._meta.db_table)
    sql = f"SELECT {', '.join(columns)} FROM {table} WHERE {' OR '.join(parts)}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def epoch_column(alias: str | None = None) -> str | None:
    """SQL for bucket_start as Unix seconds on this database, None when unknown."""
    vendor = connections[alias or router.db_for_read(MetricRollup)].vendor
    return {"postgresql": "EXTRACT(EPOCH FROM bucket_start)",
            "sqlite": "ROUND((julianday(bucket_start) - 2440587.5) * 86400.0, 3)",
            "mysql": "UNIX_TIMESTAMP(bucket_start)"}.get(vendor)


def latest_buckets(resolutions: Sequence[int], state_kind: str, state_name: str,
                   ) -> tuple[dict[int, Any], int]:
    """Newest bucket start per resolution and compaction's cursor, in one round trip
    (each a separate index lookup inside the statement)."""
    connection = connections[router.db_for_read(MetricRollup)]
    table = connection.ops.quote_name(MetricRollup._meta.db_table)
    columns = [f"(SELECT MAX(bucket_start) FROM {table} WHERE resolution = %s)"
               for _ in resolutions]
    columns.append(f"(SELECT count FROM {table} WHERE kind = %s AND name = %s "
                   f"ORDER BY id LIMIT 1)")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)}", [*resolutions, state_kind, state_name])
        row = cursor.fetchone()
    return dict(zip(resolutions, row[:-1], strict=True)), int(row[-1] or 0)
