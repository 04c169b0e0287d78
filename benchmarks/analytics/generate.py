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
STATE_FILE = Path(__file__).with_name("dataset.json")
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


def sketch_bins(group: np.ndarray, keys: np.ndarray, weights: np.ndarray,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group, key, weight) summed per (group, key), sorted by group then key."""
    combo = np.stack([group, keys])
    uniq, inverse = np.unique(combo, axis=1, return_inverse=True)
    summed = np.bincount(inverse.ravel(), weights=weights)
    return uniq[0], uniq[1], summed


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


def rollup_rows(series_of_group: np.ndarray, bucket_of_group: np.ndarray, cols: dict,
                blobs: list[bytes], resolution: int, compacted: np.ndarray,
                names: list[tuple[str, str, str]], origin: datetime, step: int):
    for i in range(len(cols["group"])):
        kind, name, dim = names[series_of_group[i]]
        yield (kind, name, dim, origin + timedelta(seconds=int(bucket_of_group[i]) * step),
               resolution, int(cols["count"][i]), float(cols["sum"][i]), float(cols["min"][i]),
               float(cols["max"][i]), int(cols["errors"][i]), blobs[i], bool(compacted[i]))


def main() -> None:  # noqa: PLR0915
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--now-minute", type=int, default=55,
                        help="minute of the hour 'now' falls on: 55 leaves 55 minutes of "
                             "uncompacted partial rows in the open hour (the slow case)")
    args = parser.parse_args()
    started = time.monotonic()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from perfmonitor.analytics.query import ALL, NAME_TOTAL_KINDS
    from perfmonitor.analytics.sketch import _key

    rng = np.random.default_rng(args.seed)
    now = datetime.now(UTC).replace(minute=args.now_minute, second=15, microsecond=0)
    if now > datetime.now(UTC):
        now -= timedelta(hours=1)
    # Hour-aligned, so minute indices fall into clock hours and days.
    origin = (now - timedelta(days=DAYS)).replace(minute=0, second=0)
    open_hour = (now - timedelta(seconds=30)).replace(minute=0, second=0)
    today = now.replace(hour=0, minute=0, second=0)

    print(f"creating schema in {connection.settings_dict['NAME']} ...", flush=True)
    _recreate_database(connection.settings_dict["NAME"])
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
    agg_of = [[agg_index[(s.kind, ALL, ALL)]] + ([agg_index[(s.kind, s.name, ALL)]]
                                                 if s.kind in NAME_TOTAL_KINDS else [])
              for s in series]

    rows_out = []
    errors_f = errors.astype(np.float64)

    # -- minute rows (last 14 days) -------------------------------------------------
    first_minute = MINUTES - MINUTE_RETENTION_DAYS * 1440
    open_minute = int((open_hour - origin).total_seconds() // 60)
    m = minutes >= first_minute
    # The open hour: two worker processes each wrote a partial row per minute.
    worker = np.where(minutes[m] >= open_minute, rng.integers(0, 2, size=int(m.sum())), 0)
    mgroup = (ids[m].astype(np.int64) * MINUTES + minutes[m]) * 2 + worker
    cols = aggregate(mgroup, values[m], errors_f[m], keys[m])
    bg, bk, bw = sketch_bins(mgroup, keys[m], np.ones(int(m.sum())))
    blobs = serialize(cols["group"], bg, bk, bw)
    g = cols["group"] // 2
    sid, minute_of = g // MINUTES, g % MINUTES
    compacted = minute_of < open_minute
    rows_out.append(("minute", rollup_rows(sid, minute_of, cols, blobs, 60, compacted, names,
                                           origin, 60)))
    n_minute = len(blobs)
    print(f"{n_minute:,} minute rows ({time.monotonic() - started:.0f} s)", flush=True)

    # -- hour rows (closed hours) ---------------------------------------------------------
    hours = (minutes // 60).astype(np.int64)
    open_hour_index = open_minute // 60
    h = hours < open_hour_index
    hgroup = ids[h].astype(np.int64) * (MINUTES // 60) + hours[h]
    hb_g, hb_k, hb_w = sketch_bins(hgroup, keys[h], np.ones(int(h.sum())))
    hcols = aggregate(hgroup, values[h], errors_f[h], keys[h])
    # Aggregates: re-bucket the per-series hour rows and bins onto aggregate ids.
    hour_groups, hour_bins = [hcols], [(hb_g, hb_k, hb_w)]
    per_hour = MINUTES // 60
    for level in (0, 1):
        mapping = np.array([a[level] if len(a) > level else -1 for a in agg_of])
        src_sid = hcols["group"] // per_hour
        target = mapping[src_sid]
        ok = target >= 0
        agroup = target[ok] * per_hour + hcols["group"][ok] % per_hour
        acols = _combine(agroup, {k: v[ok] for k, v in hcols.items() if k != "group"})
        bsid = hb_g // per_hour
        bt = mapping[bsid]
        bok = bt >= 0
        ag, ak, aw = sketch_bins(bt[bok] * per_hour + hb_g[bok] % per_hour, hb_k[bok], hb_w[bok])
        hour_groups.append(acols)
        hour_bins.append((ag, ak, aw))
    n_hour = 0
    today_hour = int((today - origin).total_seconds() // 3600)
    for hc, (bg2, bk2, bw2) in zip(hour_groups, hour_bins, strict=True):
        blobs = serialize(hc["group"], bg2, bk2, bw2)
        sid, hour_of = hc["group"] // per_hour, hc["group"] % per_hour
        rows_out.append(("hour", rollup_rows(sid, hour_of, hc, blobs, 3600, hour_of < today_hour,
                                             names, origin.replace(minute=0), 3600)))
        n_hour += len(blobs)
        # Day rows from the same hour rows: closed days only.
        day_of = (hour_of + origin.hour) // 24
        dmask = hour_of < today_hour
        dgroup = sid[dmask] * 64 + day_of[dmask]
        dcols = _combine(dgroup, {k: v[dmask] for k, v in hc.items() if k != "group"})
        hour_sid_of_bin = bg2 // per_hour
        hour_of_bin = bg2 % per_hour
        bmask = hour_of_bin < today_hour
        dg, dk, dw = sketch_bins(hour_sid_of_bin[bmask] * 64
                                 + (hour_of_bin[bmask] + origin.hour) // 24,
                                 bk2[bmask], bw2[bmask])
        dblobs = serialize(dcols["group"], dg, dk, dw)
        rows_out.append(("day", rollup_rows(dcols["group"] // 64, dcols["group"] % 64, dcols,
                                            dblobs, 86400, np.ones(len(dblobs), bool), names,
                                            origin.replace(hour=0, minute=0), 86400)))
        rows_out[-1] = ("day", list(rows_out[-1][1]))
        rows_out[-2] = ("hour", list(rows_out[-2][1]))
    print(f"{n_hour:,} hour rows ({time.monotonic() - started:.0f} s)", flush=True)

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


def _recreate_database(name: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}"')
        c.execute(f'CREATE DATABASE "{name}"')


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
