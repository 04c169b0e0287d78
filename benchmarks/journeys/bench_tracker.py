"""Cost of the journeys API per call on PostgreSQL, side by side with bare statements.

Each row times one call of the public API against the least a database-backed
journey could cost for the same event:

* ``start``    vs a bare ``INSERT`` of the row (``UserJourney.objects.create``);
* ``step``     vs one ``UPDATE … SET steps = steps || %s::jsonb`` (no lock, no
  checks, no duration, no rollup);
* ``complete`` vs one ``UPDATE`` of the status columns.

Rounds are interleaved (API, baseline, API, ...); the table shows the median
per-call time over the rounds and the ratio. A last row runs two processes
marking steps on the same journey at once (the row lock serializes them).

    .venv/bin/python -m benchmarks.journeys.bench_tracker [--rounds 7] [--calls 100]

Creates (once) and migrates the ``bench_journeys`` database.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.journeys.settings")


def ensure_database() -> None:
    from django.conf import settings

    from benchmarks.database import create_database

    create_database(settings.DATABASES["default"])


def per_call_us(fn: Callable[[int], None], calls: int) -> float:
    started = time.perf_counter()
    for i in range(calls):
        fn(i)
    return (time.perf_counter() - started) / calls * 1e6


def two_processes(journey_id: str, calls: int) -> float:
    def worker(barrier: multiprocessing.synchronize.Barrier) -> None:
        from django.db import connections

        from perfmonitor import journeys

        barrier.wait()
        for i in range(calls):
            journeys.step(journey_id, "class_list_view", {"i": i})
        connections.close_all()

    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(3)
    procs = [context.Process(target=worker, args=(barrier,)) for _ in range(2)]
    for proc in procs:
        proc.start()
    barrier.wait()
    started = time.perf_counter()
    for proc in procs:
        proc.join()
    return 2 * calls / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    ensure_database()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from perfmonitor import journeys
    from perfmonitor.capture import buffer
    from perfmonitor.models import UserJourney

    call_command("migrate", verbosity=0)
    UserJourney.objects.all().delete()
    table = UserJourney._meta.db_table
    step_entry = json.dumps([{"name": "class_list_view", "index": 0, "duration_ms": 1.0}])
    results: dict[str, list[float]] = {}

    def record(label: str, value: float) -> None:
        results.setdefault(label, []).append(value)

    def one_round(ids: list[str]) -> None:
        record("start (API)", per_call_us(lambda i: journeys.start("class_booking"), args.calls))
        record("start (bare INSERT)", per_call_us(lambda i: UserJourney.objects.create(
            journey_id=f"b{time.perf_counter_ns()}", journey_type="class_booking",
            start_time=timezone.now()), args.calls))
        record("step (API)", per_call_us(
            lambda i: journeys.step(ids[i], "class_list_view"), args.calls))

        def bare_step(i: int) -> None:
            with connection.cursor() as cursor:
                cursor.execute(f"UPDATE {table} SET steps = steps || %s::jsonb "
                               "WHERE journey_id = %s", [step_entry, ids[i]])
        record("step (bare UPDATE append)", per_call_us(bare_step, args.calls))
        record("complete (API)", per_call_us(lambda i: journeys.complete(ids[i]), args.calls))
        record("complete (bare UPDATE)", per_call_us(
            lambda i: UserJourney.objects.filter(journey_id=ids[i]).update(
                status="completed", completed=True, end_time=timezone.now()), args.calls))

    for _ in range(args.rounds):
        one_round([journeys.start("class_booking") for _ in range(args.calls)])
        buffer.buffer.reset()  # the rollups are not part of what is timed here
        UserJourney.objects.all().delete()

    shared = journeys.start("class_booking")
    throughput = two_processes(shared, 90)
    kept = len(UserJourney.objects.get(journey_id=shared).steps)

    print(f"journeys API on PostgreSQL: {args.rounds} rounds x {args.calls} calls, "
          "median per-call time")
    print(f"{'operation':32} {'median us':>10} {'vs bare':>8}")
    for api, bare in (("start (API)", "start (bare INSERT)"),
                      ("step (API)", "step (bare UPDATE append)"),
                      ("complete (API)", "complete (bare UPDATE)")):
        a, b = statistics.median(results[api]), statistics.median(results[bare])
        print(f"{api:32} {a:10.0f} {a / b:7.2f}x")
        print(f"{bare:32} {b:10.0f} {1:7.2f}x")
    print(f"two processes, one journey: {throughput:.0f} steps/s, {kept}/180 steps kept")


if __name__ == "__main__":
    main()
