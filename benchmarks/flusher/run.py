"""Flusher benchmark: µs per record of the shared write path, old writer beside the new one.

    flock /tmp/perfmonitor-bench.lock .venv/bin/python -m benchmarks.flusher.run [--rounds 5]

For each record type (server requests with their queries, standalone queries, browser
beacon events) and detail sampling (the default SAMPLE_RATE 0.1, and 1.0: every record a
raw row), the same records go through both writers in interleaved rounds:

- expand:  records -> Sink (``Sink.measure`` / ``Sink.row``),
- prepare: the Sink's rollups (count, sum, min, max, sketch) and raw rows made ready to
  write (for the new writer: COPY text; for the old one: cleaned row dicts),
- write:   one transaction of COPY into PostgreSQL, this process's share,
- pg:      the PostgreSQL backend's share of the write (from /proc).

Every column is CPU time (this thread, then the backend), not wall time: the machine
is shared, and CPU time is what the flusher takes from the requests beside it. Medians
over the rounds, in µs per record; total = expand + prepare + write + pg.
``legacy_writer.py`` is the writer as it was before the bulk path, frozen so that the
comparison stays reproducible.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TICKS = os.sysconf("SC_CLK_TCK")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.flusher.settings")
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

ROUTES = [f"/courses/<int:pk>/lessons/<int:n>/section{i}/" for i in range(20)]
SQL = [
    'SELECT "courses_course"."id", "courses_course"."title" FROM "courses_course" '
    f'WHERE "courses_course"."id" = {i} LIMIT 21' for i in range(10)
] + [
    f'SELECT "t{i}"."id", "t{i}"."name", "t{i}"."created" FROM "t{i}" INNER JOIN "u" ON '
    f'("t{i}"."u_id" = "u"."id") WHERE "u"."id" IN (1, 2, 3) ORDER BY "t{i}"."created" DESC'
    for i in range(20)
] + [f'UPDATE "sessions" SET "seen" = now() WHERE "key" = \'k{i}\'' for i in range(5)]


# -- records -----------------------------------------------------------------------------------
def request_records(n: int, rng: random.Random) -> list[Any]:
    from perfmonitor.capture.records import RequestRecord

    now = time.time()
    records = []
    for i in range(n):
        queries = [(rng.choice(SQL), rng.lognormvariate(0.5, 1.0), rng.random() < 0.01)
                   for _ in range(rng.randint(1, 10))]
        status = 500 if rng.random() < 0.02 else 200
        records.append(RequestRecord(
            method=rng.choice(("GET", "GET", "GET", "POST")), route=rng.choice(ROUTES),
            view="lms.views.lesson", path=f"/courses/{i % 97}/lessons/{i % 13}/",
            query_string="", status=status, ts=now + i * 0.0007,
            duration_ms=rng.lognormvariate(3.0, 0.8), queries=queries, overflow={},
            user_id=str(i % 500), url_name="lesson"))
    return records


def standalone_records(n: int, rng: random.Random) -> list[Any]:
    now = time.time()
    return [(f"command:import_{i % 3}", rng.choice(SQL), rng.lognormvariate(0.5, 1.5),
             rng.random() < 0.01, now + i * 0.0001) for i in range(n)]


def beacon_records(n: int, rng: random.Random) -> list[Any]:
    from benchmarks.collect.beacons import batch
    from perfmonitor.beacons.records import BeaconContext, BrowserEvent
    from perfmonitor.beacons.schema import clean_event

    records = []
    for i in range(n // 50):
        body = batch(f"s{i}-{rng.random()}")
        ctx = BeaconContext(session_id=body["session_id"], user_id="", device="desktop",
                            sample_rate=1.0, received_at=time.time(), page=body["page"])
        records.extend(BrowserEvent(ctx, clean_event(e)) for e in body["events"])
    return records


RECORDS: dict[str, Callable[[int, random.Random], list[Any]]] = {
    "server requests": request_records,
    "standalone queries": standalone_records,
    "beacon events": beacon_records,
}


# -- database --------------------------------------------------------------------------------
def ensure_database() -> None:
    from django.conf import settings
    from django.core.management import call_command

    from benchmarks.database import create_database

    create_database(settings.DATABASES["default"])
    call_command("migrate", verbosity=0, interactive=False)


def truncate() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE perfmonitor_performance_metrics, perfmonitor_web_vitals, "
                       "perfmonitor_metric_rollups, perfmonitor_query_fingerprints")
        cursor.execute("SELECT pg_backend_pid()")
        BACKEND[0] = cursor.fetchone()[0]


BACKEND = [0]


def _cpu() -> float:
    return time.thread_time()


def backend_cpu() -> float:
    try:
        fields = Path(f"/proc/{BACKEND[0]}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


# -- one round of one writer ---------------------------------------------------------------------
def old_round(records: list[Any]) -> dict[str, float]:
    from django.db import connection, transaction
    from django.utils import timezone

    from benchmarks.flusher import legacy_writer as legacy

    legacy.forget_known_fingerprints()
    start = _cpu()
    sink, _, _ = legacy.expand_records(records)
    expanded = _cpu()
    rollups = legacy._rollup_rows(sink)
    raw = legacy._raw_rows(sink, timezone.now())
    prepared = _cpu()
    cpu = backend_cpu()
    with transaction.atomic():
        for key, rows in raw.items():
            if rows:
                legacy._insert(connection, "default", legacy.ROW_MODELS[key], rows)
        if rollups:
            legacy._insert(connection, "default", legacy.MetricRollup, rollups)
    written = _cpu()
    return {"expand": expanded - start, "prepare": prepared - expanded,
            "write": written - prepared, "pg": backend_cpu() - cpu,
            "rows": sum(len(r) for r in raw.values())}


def new_round(records: list[Any]) -> dict[str, float]:
    from perfmonitor.capture import writer

    writer.forget_known_fingerprints()
    start = _cpu()
    sink, _, _ = writer.expand_records(records)
    expanded = _cpu()
    prepared_batch = writer.prepare(sink, "default")
    prepared = _cpu()
    cpu = backend_cpu()
    writer.write_prepared(prepared_batch, "default")
    written = _cpu()
    return {"expand": expanded - start, "prepare": prepared - expanded,
            "write": written - prepared, "pg": backend_cpu() - cpu,
            "rows": sink.row_count}


def run_case(kind: str, sample_rate: float, n: int, rounds: int) -> dict[str, dict[str, float]]:
    from django.test.utils import override_settings

    rng = random.Random(42)
    results: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    with override_settings(PERFMONITOR={"BACKGROUND_FLUSH": False, "BUFFER_SIZE": 1_000_000,
                                        "SAMPLE_RATE": sample_rate}):
        for r in range(rounds):
            order = [("old", old_round), ("new", new_round)]
            if r % 2:
                order.reverse()
            for name, func in order:
                records = RECORDS[kind](n, rng)
                truncate()
                results[name].append(func(records))
    out = {}
    for name, rows in results.items():
        med = {key: statistics.median(row[key] for row in rows) * 1e6 / n
               for key in ("expand", "prepare", "write", "pg")}
        med["total"] = med["expand"] + med["prepare"] + med["write"] + med["pg"]
        med["rows"] = statistics.median(row["rows"] for row in rows) / n
        out[name] = med
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--records", type=int, default=10_000, help="records per round")
    parser.add_argument("--only", choices=sorted(RECORDS), action="append")
    args = parser.parse_args()
    django.setup()
    ensure_database()
    lines = [
        f"{args.records:,} records per round, {args.rounds} rounds, medians; µs per record "
        f"of CPU time (pg: the PostgreSQL backend's); "
        f"load average {os.getloadavg()[0]:.1f}",
        "",
        "| records | SAMPLE_RATE | rows/record | writer | expand | prepare | write | pg | "
        "total | new vs old |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in args.only or list(RECORDS):
        for sample_rate in (0.1, 1.0):
            if kind == "standalone queries" and sample_rate == 1.0:
                continue  # no sampled rows: every slow query is kept, the rest never
            res = run_case(kind, sample_rate, args.records, args.rounds)
            for name in ("old", "new"):
                m = res[name]
                ratio = (f"{res['old']['total'] / m['total']:.1f}x faster" if name == "new"
                         else "")
                lines.append(
                    f"| {kind} | {sample_rate} | {m['rows']:.2f} | {name} | {m['expand']:.1f} | "
                    f"{m['prepare']:.1f} | {m['write']:.1f} | {m['pg']:.1f} | "
                    f"{m['total']:.1f} | {ratio} |")
            print("\n".join(lines[-2:]), flush=True)
    lines.append(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    report = "\n".join(lines)
    print("\n" + report)
    results = Path(os.environ.get("BENCH_RESULTS", Path(__file__).resolve().parent / "results"))
    results.mkdir(exist_ok=True)
    (results / "latest.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
