"""What one flush costs, stage by stage, against the records it carries.

    python benchmarks/overhead/flushcost.py [--view ten] [--sizes 1,5,20,75,300]

perfmonitor's flusher runs once a second in every process that served a request,
whatever the traffic. Part of what a flush costs is per record, part is per flush
(waking up, numpy's set-up for the sketches, a COPY round trip per table, the
database's statement and commit): at low traffic the second part dominates.

This serves the benchmark site's view in-process (Django's test client, perfmonitor
at its defaults but for the background thread) and, for each batch size, lets that
many requests buffer their records, then runs the flush's stages one after the
other in this thread, timing each with the thread's CPU clock: ``expand`` (records
into a sink), ``prepare`` (rollups, their sketches and the COPY data) and ``write``
(the COPY statements). ``pg`` is the CPU the database backend spent meanwhile (its
``/proc/<pid>/schedstat``). Requests run between two flushes, as in a worker, so the
flush finds its code and data as cold as a real one does.

Prints per size the medians in µs per flush and per record, and a least-squares fit
``cost = per flush + per record x records`` of each stage. Needs the database of
``paired.py`` (seeded; ``--prepare`` there) and runs in its venv. No locking: a
single thread, CPU time only; still, keep other load off the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STAGES = ("expand", "prepare", "write", "pg")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--view", default="ten", choices=("one", "ten"))
    parser.add_argument("--sizes", default="1,5,20,75,300",
                        help="records per flush (requests between two flushes)")
    parser.add_argument("--flushes", type=int, default=30, help="measured flushes per size")
    parser.add_argument("--settings", default="{}",
                        help="PERFMONITOR settings (JSON) on top of the defaults")
    parser.add_argument("--db-host", default="127.0.0.1")
    parser.add_argument("--db-port", default="5432")
    parser.add_argument("--db-user", default="postgres")
    parser.add_argument("--db-name", default="bench_overhead")
    return parser.parse_args()


def backend_cpu_ns(pid: int) -> int:
    with open(f"/proc/{pid}/schedstat") as handle:
        return int(handle.read().split()[0])


def fit(sizes: list[int], costs: list[float]) -> tuple[float, float]:
    """(per flush, per record) of ``cost = a + b * size``, least squares."""
    mean_x, mean_y = statistics.fmean(sizes), statistics.fmean(costs)
    spread = sum((x - mean_x) ** 2 for x in sizes)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(sizes, costs, strict=True)) / spread
    return mean_y - slope * mean_x, slope


def take_batch(buf: Any) -> list[Any]:
    """Every record waiting in the buffer, as a flush takes them (requests packed into
    frames, frames decoded), without writing them."""
    buf._pack_requests()
    batch: list[Any] = []
    buf._take_frames(buf._frames, buf._marks, batch, sys.maxsize)
    batch.extend(buf._items)
    buf._items.clear()
    buf._held = 0
    return batch


def main() -> None:
    args = parse_args()
    if Path(sys.prefix).resolve() != (HERE / ".venv").resolve():
        from run import ensure_venv

        ensure_venv()
        python = str(HERE / ".venv" / "bin" / "python")
        os.execv(python, [python, str(Path(__file__).resolve()), *sys.argv[1:]])
    sys.path.insert(0, str(HERE))
    os.environ.update(DJANGO_SETTINGS_MODULE="benchproject.settings", BENCH_PROFILE="perfmonitor",
                      BENCH_DB_HOST=args.db_host, BENCH_DB_PORT=args.db_port,
                      BENCH_DB_USER=args.db_user, BENCH_DB_NAME=args.db_name,
                      BENCH_PERFMONITOR_SETTINGS=json.dumps(
                          {**json.loads(args.settings), "BACKGROUND_FLUSH": False}))
    import django

    django.setup()
    from django.db import connections
    from django.test import Client
    from servers import VIEWS

    from perfmonitor.capture import buffer, records, writer

    client = Client(HTTP_HOST="127.0.0.1")  # an allowed host, as gunicorn's requests have
    path = VIEWS[args.view]
    for _ in range(100):  # warm: imports, caches, the route cache, fingerprints known
        response = client.get(path)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
    probe = take_batch(buffer.buffer)[-1]
    if len(probe) <= records.FIRST_SQL:
        raise SystemExit(f"{path}: the record holds no query; is perfmonitor capturing?")
    buffer.flush_now()
    connection = connections["default"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    sizes = [int(s) for s in args.sizes.split(",")]
    medians: dict[str, list[float]] = {stage: [] for stage in STAGES}
    print(f"view {args.view}: µs per flush (per record), medians of {args.flushes} flushes\n")
    print("| records | expand | prepare | write | flusher total | PostgreSQL |")
    print("|---|---|---|---|---|---|")
    for size in sizes:
        spent: dict[str, list[float]] = {stage: [] for stage in STAGES}
        for _ in range(args.flushes + 2):
            for _ in range(size):
                client.get(path)
            records = take_batch(buffer.buffer)
            t0 = time.thread_time()
            sink, _, _ = writer.expand_records(records)
            t1 = time.thread_time()
            prepared = writer.prepare(sink)
            t2 = time.thread_time()
            pg0 = backend_cpu_ns(backend)
            writer.write_batch(prepared, own_connection=True)
            t3 = time.thread_time()
            pg = (backend_cpu_ns(backend) - pg0) / 1e9
            for stage, seconds in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, pg), strict=True):
                spent[stage].append(seconds * 1e6)
        cells = []
        for stage in STAGES:
            value = statistics.median(spent[stage][2:])  # the first two: set-up
            medians[stage].append(value)
            cells.append(value)
        flusher = sum(cells[:3])
        shown = [*cells[:3], flusher, cells[3]]
        print(f"| {size} | " + " | ".join(f"{v:.0f} ({v / size:.1f})" for v in shown) + " |")
    print("\nfit: cost = per flush + per record x records")
    totals = [sum(medians[s][i] for s in STAGES[:3]) for i in range(len(sizes))]
    for name, costs in [*((s, medians[s]) for s in STAGES), ("flusher total", totals)]:
        fixed, per_record = fit(sizes, costs)
        print(f"  {name:14} {fixed:7.0f} µs per flush + {per_record:5.2f} µs per record")


if __name__ == "__main__":
    main()
