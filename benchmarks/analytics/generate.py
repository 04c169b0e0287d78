"""Write 10 million events over 30 days as rollup rows into PostgreSQL ``bench_analytics``.

The events are generated the way capture sees them on a busy LMS — requests
with a daily rhythm and per-route log-normal latencies, their SQL queries,
Web Vitals per page, browser API calls, renders, JS errors, bundle sizes,
memory and journeys — and aggregated exactly as capture and compaction would:
one sketch per (series, bucket) with the same key mapping and serialized
format, aggregate ``*`` series, and the state compaction leaves behind
(minute rows for the minute retention of 14 days, hour rows for every closed
hour, day rows for every closed day, the open hour as uncompacted partial
minute rows from two worker processes). The rows go in with COPY.
``BENCH_DATABASE_URL`` and ``BENCH_STATE_FILE`` keep a second data set apart.

    DJANGO_SETTINGS_MODULE=benchmarks.analytics.settings \\
        .venv/bin/python -m benchmarks.analytics.generate [--events 10000000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import struct
import sys
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.analytics.settings")

DAYS = 30
MINUTES = DAYS * 24 * 60 + 60  # 30 days plus the hour 'now' falls in
MINUTE_RETENTION_DAYS = 14
# What the benchmarks read about the data set; BENCH_STATE_FILE keeps a second one apart.
STATE_FILE = Path(os.environ.get("BENCH_STATE_FILE", Path(__file__).with_name("dataset.json")))
HEADER = struct.Struct("<BBdI")


@dataclass
class Series:
    kind: str
    name: str
    dimension: str
    weight: float  # share of events
    median: float  # log-normal median of the value (ms or bytes)
    sigma: float
    error_rate: float = 0.0
    constant: float | None = None


def build_series(rng: np.random.Generator) -> list[Series]:
    series: list[Series] = []
    routes = [f"/courses/<int:pk>/{p}" for p in ("", "lessons/", "reviews/", "materials/")] + [
        "/", "/login/", "/logout/", "/dashboard/", "/courses/", "/classes/", "/classes/<int:pk>/",
        "/bookings/", "/bookings/<int:pk>/", "/payments/", "/payments/<int:pk>/receipt/",
        "/teachers/", "/teachers/<int:pk>/", "/reports/attendance/", "/reports/revenue/",
        "/api/v1/courses/", "/api/v1/bookings/", "/api/v1/search/", "/profile/", "/messages/",
        "/notifications/", "/calendar/", "/onboarding/<str:step>/", "/admin/",
    ]
    pages = ["/", "/courses/", "/courses/17/", "/dashboard/", "/classes/", "/bookings/",
             "/payments/", "/teachers/", "/reports/attendance/", "/profile/", "/messages/",
             "/calendar/", "/login/", "/onboarding/", "/search/"]
    zipf = 1 / np.arange(1, len(routes) + 1) ** 0.9
    zipf /= zipf.sum()
    request_share, query_share = 0.15, 0.60
    for i, route in enumerate(routes):
        method = "POST" if route in ("/login/", "/payments/", "/bookings/") else "GET"
        median = float(rng.uniform(25, 400)) * (6 if "reports" in route else 1)
        series.append(Series("request", route, method, request_share * zipf[i], median,
                             float(rng.uniform(0.5, 1.0)), error_rate=float(rng.choice(
                                 [0.0005, 0.002, 0.01, 0.06], p=[0.5, 0.3, 0.15, 0.05]))))
        for q in range(3 if i < 10 else 2):
            fp = f"{(i * 7 + q * 131) * 2654435761 % 2**64:016x}"
            series.append(Series("query", fp, f"{method} {route}", query_share * zipf[i] / 2.5,
                                 float(rng.uniform(0.3, 15)) * (20 if q == 2 else 1),
                                 float(rng.uniform(0.4, 1.1))))
    vitals = {"LCP": (2100, 0.5), "INP": (150, 0.7), "CLS": (0.05, 1.0), "FCP": (1500, 0.5),
              "TTFB": (500, 0.6)}
    for j, page in enumerate(pages):
        scale = 2.0 if j % 5 == 4 else 1.0  # a few slow pages
        for vital, (median, sigma) in vitals.items():
            series.append(Series("vital", vital, page, 0.12 / len(pages) / 5, median * scale,
                                 sigma))
        for dim, size in (("js_transfer", 900_000), ("css_transfer", 120_000),
                          ("js_decoded", 3_000_000), ("css_decoded", 500_000),
                          ("total_transfer", 1_400_000)):
            series.append(Series("resource", page, dim, 0.025 / len(pages) / 5,
                                 size * (3 if j == 7 else 1), 0.1))
        series.append(Series("memory", page, "", 0.005 / len(pages), 40e6, 0.3))
        series.append(Series("render", f"Component{j}", page, 0.03 / len(pages), 12, 0.9))
    for k in range(20):
        series.append(Series("api", f"/api/v1/endpoint{k}/", "GET", 0.06 / 20,
                             float(rng.uniform(60, 600)), 0.7, error_rate=0.01))
    for k in range(10):
        series.append(Series("error", f"TypeError:{k:04x}", pages[k], 0.003 / 10, 1, 0,
                             constant=1.0))
    journeys = ["student_registration", "class_booking", "login", "payment_processing",
                "teacher_onboarding", "dashboard_loading", "report_generation"]
    for name in journeys:
        for outcome, share in (("completed", 0.8), ("abandoned", 0.15), ("failed", 0.05)):
            series.append(Series("journey", name, outcome, 0.004 / len(journeys) * share,
                                 20_000, 0.8))
        for step in range(5):
            series.append(Series("journey_step", name, f"step_{step}",
                                 0.002 / len(journeys) / 5 * 5, 3000, 0.8))
    total = sum(s.weight for s in series)
    for s in series:
        s.weight /= total
    return series


def sketch_keys(values: np.ndarray) -> np.ndarray:
    """ddsketch LogarithmicMapping(0.01) keys, vectorized (checked against the scalar one)."""
    from perfmonitor.analytics.sketch import _MAPPING

    multiplier = _MAPPING._multiplier
    keys = np.ceil(np.log2(np.maximum(values, 1e-300)) * multiplier).astype(np.int64)
    return np.where(values > _MAPPING.min_possible, keys, np.iinfo(np.int64).min)


def generate_events(n: int, series: list[Series], rng: np.random.Generator,
                    ) -> tuple[np.ndarray, ...]:
    counts = rng.multinomial(n, [s.weight for s in series])
    # Daily rhythm: busy 9-18 h UTC, quiet at night; a weekly dip at weekends.
    minute = np.arange(MINUTES)
    hour = (minute // 60) % 24
    day = minute // 1440
    rhythm = 0.25 + np.exp(-((hour - 13.5) / 4.5) ** 2)
    rhythm = rhythm * np.where(day % 7 >= 5, 0.6, 1.0)
    rhythm /= rhythm.sum()
    ids, minutes, values, errors = [], [], [], []
    for sid, (s, c) in enumerate(zip(series, counts, strict=True)):
        if c == 0:
            continue
        ids.append(np.full(c, sid, dtype=np.int32))
        minutes.append(rng.choice(MINUTES, size=c, p=rhythm).astype(np.int32))
        if s.constant is not None:
            values.append(np.full(c, s.constant))
        else:
            values.append(rng.lognormal(math.log(s.median), s.sigma, size=c))
        errors.append(rng.random(c) < s.error_rate)
    return (np.concatenate(ids), np.concatenate(minutes), np.concatenate(values),
            np.concatenate(errors))


def aggregate(group: np.ndarray, values: np.ndarray, errors: np.ndarray, keys: np.ndarray,
              weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Rollup columns per group id: count, sum, min, max, errors and sketch bins."""
    w = np.ones_like(values) if weights is None else weights
    order = np.argsort(group, kind="stable")
    g = group[order]
    uniq, start = np.unique(g, return_index=True)
    count = np.add.reduceat(w[order], start)
    total = np.add.reduceat((values * w)[order], start)
    low = np.minimum.reduceat(values[order], start)
    high = np.maximum.reduceat(values[order], start)
    err = np.add.reduceat((errors * w)[order], start)
    return {"group": uniq, "count": count, "sum": total, "min": low, "max": high, "errors": err}


def serialize(groups: np.ndarray, bin_group: np.ndarray, bin_key: np.ndarray,
              bin_weight: np.ndarray) -> list[bytes]:
    """The QuantileSketch byte format, one blob per group (same order as ``groups``)."""
    zero_key = np.iinfo(np.int64).min
    starts = np.searchsorted(bin_group, groups, side="left")
    ends = np.searchsorted(bin_group, groups, side="right")
    blobs = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        k = bin_key[a:b]
        w = bin_weight[a:b]
        zero = float(w[k == zero_key].sum()) if k.size and k[0] == zero_key else 0.0
        if zero:
            k, w = k[1:], w[1:]
        deltas = np.diff(k, prepend=0).astype("<i4")
        counts = w.astype("<u4")
        blobs.append(zlib.compress(HEADER.pack(1, 1, zero, len(k)) + deltas.tobytes()
                                   + counts.tobytes(), 1))
    return blobs


def main() -> None:  # noqa: PLR0915
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--partials", choices=("recent", "all"), default="recent",
                        help="which open-hour minutes still have unmerged partial rows")
    parser.add_argument("--now-minute", type=int, default=55,
                        help="minute of the hour 'now' falls on: 55 leaves 55 minutes of "
                             "uncompacted partial rows in the open hour (the slow case)")
    args = parser.parse_args()
    started = time.monotonic()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from benchmarks.database import create_database
    from perfmonitor.analytics.query import ALL, LEVELS, NAME_TOTAL_KINDS
    from perfmonitor.analytics.sketch import _key

    rng = np.random.default_rng(args.seed)
    now = datetime.now(UTC).replace(minute=args.now_minute, second=15, microsecond=0)
    if now > datetime.now(UTC):
        now -= timedelta(hours=1)
    # Hour-aligned, so minute indices fall into clock hours and days.
    origin = (now - timedelta(days=DAYS)).replace(minute=0, second=0)

    print(f"creating schema in {connection.settings_dict['NAME']} ...", flush=True)
    create_database(connection.settings_dict, recreate=True)
    connection.close()
    call_command("migrate", verbosity=0)

    series = build_series(rng)
    ids, minutes, values, errors = generate_events(args.events, series, rng)
    # Events of the current minute and later do not exist yet.
    limit_minute = int((now - origin).total_seconds() // 60)
    keep = minutes < limit_minute
    ids, minutes, values, errors = ids[keep], minutes[keep], values[keep], errors[keep]
    n_events = len(ids)
    print(f"{n_events:,} events in {len(series)} series generated "
          f"({time.monotonic() - started:.0f} s)", flush=True)
    keys = sketch_keys(values)
    sample = rng.choice(n_events, size=2000, replace=False)
    mismatches = sum(int(keys[i]) != _key(float(values[i])) for i in sample
                     if values[i] > 1e-300)
    assert mismatches <= 2, f"vectorized sketch keys disagree with the scalar mapping: {mismatches}"

    names = [(s.kind, s.name, s.dimension) for s in series]
    # Aggregate series: kind totals and name totals, as compaction builds them.
    agg_index: dict[tuple[str, str, str], int] = {}
    for s in series:
        for key in [(s.kind, ALL, ALL)] + ([(s.kind, s.name, ALL)]
                                           if s.kind in NAME_TOTAL_KINDS else []):
            if key not in agg_index:
                agg_index[key] = len(names)
                names.append(key)
    agg_maps = [np.array([agg_index[(s.kind, ALL, ALL)] for s in series]),
                np.array([agg_index.get((s.kind, s.name, ALL), -1) for s in series])]

    closed = now - timedelta(seconds=30)
    abs_minute = int(origin.timestamp()) // 60 + minutes.astype(np.int64)
    minute_cutoff = int((now - timedelta(days=MINUTE_RETENTION_DAYS)).timestamp())
    built_end = {res: int(closed.timestamp()) // res * res for res in LEVELS}
    rows_out = []
    counts_by_level: dict[int, int] = {}

    # -- minute rows (the minute retention) ------------------------------------------
    m = abs_minute * 60 >= minute_cutoff
    # Two worker processes each write a partial row per series and minute;
    # compaction (every 60 s) has merged them for every closed minute, so only
    # the last two minutes still have partial rows ("--partials all": the
    # whole open 10-minute block has them).
    last_minute = int(now.timestamp()) // 60
    partial_from = (built_end[600] // 60) if args.partials == "all" else last_minute - 2
    worker = np.where(abs_minute[m] >= partial_from, rng.integers(0, 2, size=int(m.sum())), 0)
    rel = abs_minute[m] - abs_minute[m].min()
    base_minute = int(abs_minute[m].min())
    group = (ids[m].astype(np.int64) * (int(rel.max()) + 1) + rel) * 2 + worker
    level_rows = _level_rows(group, values[m], errors[m].astype(np.float64), keys[m],
                             np.ones(int(m.sum())))
    g = level_rows["group"] // 2
    sid, bucket = g // (int(rel.max()) + 1), g % (int(rel.max()) + 1) + base_minute
    compacted = (bucket * 60 + 60) <= built_end[600]  # folded into their 10-minute rows
    compacted &= (bucket * 60) // 600 * 600 + 600 <= built_end[600]
    rows_out.append(_emit(names, sid, bucket * 60, level_rows, 60, compacted))
    counts_by_level[60] = len(sid)
    print(f"{len(sid):,} minute rows ({time.monotonic() - started:.0f} s)", flush=True)

    # -- 10-minute rows from events, with the aggregates --------------------------------
    abs_ten = abs_minute // 10
    closed_ten = abs_ten * 600 + 600 <= built_end[600]
    base = int(abs_ten.min())
    span = int(abs_ten.max()) - base + 1
    group = ids[closed_ten].astype(np.int64) * span + (abs_ten[closed_ten] - base)
    level = _level_rows(group, values[closed_ten], errors[closed_ten].astype(np.float64),
                        keys[closed_ten], np.ones(int(closed_ten.sum())), keep_bins=True)
    level = _with_aggregates(level, agg_maps, span)
    previous = (600, base, span, level)
    for res in LEVELS[1:]:
        if res != 600:
            previous = _coarser(previous, res)
        _res, base, span, level = previous
        bucket = (level["group"] % span + base) * res
        level = _only(level, bucket + res <= built_end[res])  # closed buckets are built
        previous = (res, base, span, level)
        sid = level["group"] // span
        bucket = (level["group"] % span + base) * res
        up = LEVELS[LEVELS.index(res) + 1] if res != LEVELS[-1] else None
        compacted = (bucket // up * up + up <= built_end[up]) if up else \
            np.zeros(len(sid), dtype=bool)
        keep_rows = bucket >= minute_cutoff if res == 600 else np.ones(len(sid), dtype=bool)
        rows_out.append(_emit(names, sid[keep_rows], bucket[keep_rows], level, res,
                              compacted[keep_rows], keep_rows))
        counts_by_level[res] = int(keep_rows.sum())
        print(f"{counts_by_level[res]:,} rows at {res} s ({time.monotonic() - started:.0f} s)",
              flush=True)

    written = _copy_rows(connection, rows_out)
    _write_fingerprints(connection, series)
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(id) FROM perfmonitor_metric_rollups")
        newest = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO perfmonitor_metric_rollups (kind, name, dimension, bucket_start, "
            "resolution, count, sum, errors, sketch, compacted) VALUES "
            "('_state', 'compaction', '', %s, 0, %s, %s, 0, '', true)", [now, newest, newest])
        cursor.execute("VACUUM ANALYZE perfmonitor_metric_rollups")
        cursor.execute("SELECT resolution, count(*) FROM perfmonitor_metric_rollups "
                       "GROUP BY resolution ORDER BY resolution")
        by_resolution = dict(cursor.fetchall())
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size("
                       "'perfmonitor_metric_rollups'))")
        size = cursor.fetchone()[0]
    STATE_FILE.write_text(json.dumps({
        "now": now.isoformat(), "events": n_events, "series": len(series),
        "rows": written, "rows_by_resolution": {str(k): v for k, v in by_resolution.items()},
        "table_size": size}, indent=2))
    print(f"wrote {written:,} rollup rows for {n_events:,} events "
          f"(by resolution {by_resolution}; table {size}) in {time.monotonic() - started:.0f} s")


def _level_rows(group: np.ndarray, values: np.ndarray, errors: np.ndarray, keys: np.ndarray,
                weights: np.ndarray, keep_bins: bool = True) -> dict[str, np.ndarray]:
    """Rollup columns and sketch bins per group id, from events."""
    cols = aggregate(group, values, errors, keys)
    cols["bins"] = _bins(group, keys, weights)
    return cols


def _bins(group: np.ndarray, keys: np.ndarray, weights: np.ndarray,
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group, key, weight) summed per (group, key), sorted; zero-bucket key kept as min."""
    zero = keys == np.iinfo(np.int64).min
    shifted = np.where(zero, 0, keys + 4096)  # real keys span < 4096 either side of 0
    composite = group.astype(np.int64) * 8192 + shifted
    unique, inverse = np.unique(composite, return_inverse=True)
    summed = np.bincount(inverse.ravel(), weights=weights)
    g, k = unique // 8192, unique % 8192
    return g, np.where(k == 0, np.iinfo(np.int64).min, k - 4096), summed


def _with_aggregates(level: dict, agg_maps: list[np.ndarray], span: int) -> dict:
    """Add the aggregate series' rows (kind total, name total) to a level."""
    parts_cols = [level]
    bin_parts = [level["bins"]]
    for mapping in agg_maps:
        target = mapping[level["group"] // span]
        ok = target >= 0
        agroup = target[ok] * span + level["group"][ok] % span
        parts_cols.append(_combine(agroup, {k: v[ok] for k, v in level.items()
                                            if k not in ("group", "bins")}))
        bg, bk, bw = level["bins"]
        bt = mapping[bg // span]
        bok = bt >= 0
        bin_parts.append(_bins(bt[bok] * span + bg[bok] % span, bk[bok], bw[bok]))
    merged = {k: np.concatenate([c[k] for c in parts_cols])
              for k in ("group", "count", "sum", "min", "max", "errors")}
    order = np.argsort(merged["group"], kind="stable")
    merged = {k: v[order] for k, v in merged.items()}
    bg = np.concatenate([b[0] for b in bin_parts])
    bk = np.concatenate([b[1] for b in bin_parts])
    bw = np.concatenate([b[2] for b in bin_parts])
    order = np.lexsort((bk, bg))
    merged["bins"] = (bg[order], bk[order], bw[order])
    return merged


def _only(level: dict, mask: np.ndarray) -> dict:
    kept = {k: v[mask] for k, v in level.items() if k != "bins"}
    bg, bk, bw = level["bins"]
    inside = np.isin(bg, kept["group"])
    kept["bins"] = (bg[inside], bk[inside], bw[inside])
    return kept


def _coarser(previous: tuple, res: int) -> tuple:
    """Fold one level's rows into the next coarser level (aggregates fold like any series)."""
    prev_res, base, span, level = previous
    factor = res // prev_res
    sid = level["group"] // span
    abs_bucket = (level["group"] % span + base) // factor
    new_base = int(abs_bucket.min())
    new_span = int(abs_bucket.max()) - new_base + 1
    group = sid * new_span + (abs_bucket - new_base)
    cols = _combine(group, {k: v for k, v in level.items() if k not in ("group", "bins")})
    bg, bk, bw = level["bins"]
    bgroup = (bg // span) * new_span + ((bg % span + base) // factor - new_base)
    cols["bins"] = _bins(bgroup, bk, bw)
    return res, new_base, new_span, cols


def _emit(names: list, sid: np.ndarray, bucket_seconds: np.ndarray, level: dict, res: int,
          compacted: np.ndarray, keep: np.ndarray | None = None) -> tuple[str, list]:
    groups = level["group"] if keep is None else level["group"][keep]
    bg, bk, bw = level["bins"]
    blobs = serialize(groups, bg, bk, bw)
    pick = np.arange(len(level["group"])) if keep is None else np.flatnonzero(keep)
    rows = []
    for i, j in enumerate(pick.tolist()):
        kind, name, dim = names[int(sid[i])]
        rows.append((kind, name, dim, datetime.fromtimestamp(int(bucket_seconds[i]), UTC), res,
                     int(level["count"][j]), float(level["sum"][j]), float(level["min"][j]),
                     float(level["max"][j]), int(level["errors"][j]), blobs[i],
                     bool(compacted[i])))
    return str(res), rows


def _combine(group: np.ndarray, cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    order = np.argsort(group, kind="stable")
    g = group[order]
    uniq, start = np.unique(g, return_index=True)
    return {"group": uniq,
            "count": np.add.reduceat(cols["count"][order], start),
            "sum": np.add.reduceat(cols["sum"][order], start),
            "min": np.minimum.reduceat(cols["min"][order], start),
            "max": np.maximum.reduceat(cols["max"][order], start),
            "errors": np.add.reduceat(cols["errors"][order], start)}


def _copy_rows(connection, parts) -> int:  # noqa: ANN001
    columns = ("kind, name, dimension, bucket_start, resolution, count, sum, min, max, errors, "
               "sketch, compacted")
    written = 0
    connection.ensure_connection()
    raw = connection.connection
    with raw.cursor() as cursor, \
            cursor.copy(f"COPY perfmonitor_metric_rollups ({columns}) FROM STDIN") as copy:
        for _label, rows in parts:
            for row in rows:
                copy.write_row(row)
                written += 1
    raw.commit()
    return written


def _write_fingerprints(connection, series: list[Series]) -> None:  # noqa: ANN001
    with connection.cursor() as cursor:
        for s in series:
            if s.kind == "query":
                cursor.execute(
                    "INSERT INTO perfmonitor_query_fingerprints (fingerprint, sql, first_seen) "
                    "VALUES (%s, %s, now()) ON CONFLICT DO NOTHING",
                    [s.name, f"SELECT ... FROM lms_table WHERE id = ? /* {s.dimension} */"])


if __name__ == "__main__":
    sys.exit(main())
