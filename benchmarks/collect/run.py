"""Collect benchmark: browser events per second accepted and written to PostgreSQL.

    flock /tmp/perfmonitor-bench.lock .venv/bin/python -m benchmarks.collect.run \
        [--seconds 15] [--rounds 3] [--servers gunicorn,granian] [--profile]

Measurements, each over several rounds (medians reported):

1. End to end, per WSGI server: the collect API on 127.0.0.1 (gunicorn gthread and/or
   granian, ``--workers`` x ``--threads``), wrk posting 50-event batches over keep-alive
   connections; each worker's flusher thread writes to PostgreSQL (COPY); the throttle
   counts in Redis. "accepted" counts events acknowledged with 202 during the load;
   "written" counts events in PostgreSQL (from the rollups, so that sampled-away detail
   rows do not hide events) divided by the time until the last one landed. CPU seconds
   per process group (server threads split into flusher and HTTP + request path,
   PostgreSQL backends of the benchmark database, Redis, wrk) say where the time went.
2. Baseline over HTTP: the same server and wrk posting to a plain view that parses the
   batch and bulk_creates one row per event in the request (``baseline.py``).
3. Flusher alone, in this process: the same events as records, expanded and written
   (raw rows + rollups) by ``flush_now``.
4. Baseline in process: the same raw rows written with a plain ``bulk_create``.

--profile adds cProfile tables of the request path and of the flusher.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
RESULTS = Path(os.environ.get("BENCH_RESULTS", HERE / "results"))
EVENTS_PER_BATCH = 50
TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_RATE = [1.0]  # the server's SAMPLE_RATE (--sample-rate)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.collect.settings")
os.environ["BENCH_BACKGROUND_FLUSH"] = "0"  # this process flushes explicitly
sys.path.insert(0, str(ROOT))

import django  # noqa: E402


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
                       "perfmonitor_metric_rollups")


def stored_rows() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM perfmonitor_performance_metrics) + "
                       "(SELECT count(*) FROM perfmonitor_web_vitals)")
        return int(cursor.fetchone()[0])


def stored_events() -> int:
    """Events written, counted in the rollups (each event feeds its series once; a resource
    event feeds five; a vital also feeds its per-device series ``vital:<device>``, not
    counted), so sampled-away detail rows do not hide events."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(CASE WHEN kind = 'resource' THEN count / 5.0 "
                       "ELSE count END), 0) FROM perfmonitor_metric_rollups "
                       "WHERE kind <> 'request' AND kind NOT LIKE 'vital:%%'")
        return int(cursor.fetchone()[0])


# -- CPU accounting from /proc -----------------------------------------------------------------
def _stat(pid: int, task: int | None = None) -> tuple[str, int, float] | None:
    path = f"/proc/{pid}/task/{task}/stat" if task is not None else f"/proc/{pid}/stat"
    try:
        data = Path(path).read_text()
    except OSError:
        return None
    comm = data[data.index("(") + 1:data.rindex(")")]
    fields = data[data.rindex(")") + 2:].split()
    return comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def _server_cpu(pids: set[int]) -> tuple[float, float]:
    """(flusher threads, everything else) CPU seconds of the server's processes: the
    flusher thread is named perfmonitor-flusher (comm keeps 15 characters)."""
    flusher = other = 0.0
    for pid in pids:
        try:
            tasks = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for task in tasks:
            stat = _stat(pid, task)
            if stat is None:
                continue
            if stat[0].startswith("perfmonitor-flu"):
                flusher += stat[2]
            else:
                other += stat[2]
    return flusher, other


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def cpu_by_group(server_pid: int, database: str) -> dict[str, float]:
    """CPU seconds so far of the server (its flusher threads apart), of PostgreSQL backends
    serving the benchmark's database (other databases' backends belong to other work), of
    Redis (shared with other work on the machine: an upper bound) and of wrk."""
    groups = {"server": 0.0, "flusher": 0.0, "postgres": 0.0, "redis": 0.0, "wrk": 0.0}
    stats = {int(p): _stat(int(p)) for p in os.listdir("/proc") if p.isdigit()}
    server = {server_pid}
    grew = True
    while grew:  # the server's process tree (granian's workers are grandchildren)
        more = {pid for pid, st in stats.items() if st and st[1] in server} - server
        grew = bool(more)
        server |= more
    groups["flusher"], groups["server"] = _server_cpu(server)
    for pid, stat in stats.items():
        if stat is None or pid in server:
            continue
        comm, _, cpu = stat
        if comm.startswith("postgres") and f" {database} " in _cmdline(pid):
            groups["postgres"] += cpu
        elif comm.startswith("redis-server"):
            groups["redis"] += cpu
        elif comm == "wrk":
            groups["wrk"] += cpu
    return groups


def machine_cpu() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(v) for i, v in enumerate(fields) if i not in (3, 4))  # minus idle, iowait
    return busy / TICKS


# -- end to end --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(server: str, port: int, workers: int, threads: int) -> list[str]:
    """Production-style settings of each server (no access log, keep-alive on)."""
    if server == "granian":
        # Rust HTTP front (hyper) calling the WSGI app in `threads` blocking threads.
        return [str(Path(sys.executable).parent / "granian"), "--interface", "wsgi",
                "benchmarks.collect.wsgi:application", "--host", "127.0.0.1",
                "--port", str(port), "--workers", str(workers), "--blocking-threads",
                str(threads), "--runtime-threads", "1", "--no-ws", "--log-level", "warning"]
    # gthread: the gunicorn worker that keeps connections alive (sync closes each one).
    return [sys.executable, "-m", "gunicorn", "benchmarks.collect.wsgi:application",
            "-b", f"127.0.0.1:{port}", "-w", str(workers), "--log-level", "warning",
            "--worker-class", "gthread", "--threads", str(threads), "--keep-alive", "30"]


def start_server(server_name: str, port: int, workers: int,
                 threads: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BENCH_BACKGROUND_FLUSH": "1", "PYTHONPATH": str(ROOT),
           "BENCH_SAMPLE_RATE": str(SAMPLE_RATE[0])}
    command = server_command(server_name, port, workers, threads)
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"{server_name} did not start")


COLLECT_PATH = "/perfmonitor/api/v1/collect"
BASELINE_PATH = "/baseline/collect"


def warm_up(port: int, template: str, path: str) -> None:
    import http.client

    for i in range(40):  # every worker process and thread sees a few requests
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", path, template.replace("__SESSION__", f"warm{i}"),
                     {"Content-Type": "text/plain"})
        assert conn.getresponse().status == 202
        conn.close()


def run_wrk(port: int, seconds: int, connections: int, template_path: Path,
            path: str) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk is reaped by run(): counted
    done = subprocess.run(
        ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
         "-s", str(HERE / "post.lua"), f"http://127.0.0.1:{port}{path}",
         "--", str(template_path)],
        capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {done.stderr or done.stdout}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(line.removeprefix("WRK_JSON "))
    result["cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return result


def end_to_end(args: argparse.Namespace, template: str, template_path: Path, server_name: str,
               plain: bool = False) -> dict[str, float]:
    """One round; ``plain``: the bulk_create view instead of the collect API."""
    port = free_port()
    truncate()
    server = start_server(server_name, port, args.workers, args.threads)
    path = BASELINE_PATH if plain else COLLECT_PATH
    count = (lambda: stored_rows()) if plain else stored_events
    try:
        warm_up(port, template, path)
        time.sleep(2)  # the warm-up rows are flushed...
        baseline_rows = count()  # ...and not counted
        from django.conf import settings

        database = settings.DATABASES["default"]["NAME"]
        cpu_before, machine_before = cpu_by_group(server.pid, database), machine_cpu()
        started = time.monotonic()
        result = run_wrk(port, args.seconds, args.connections, template_path, path)
        load_seconds = result["duration_us"] / 1e6
        accepted = (result["requests"] - result["status_errors"]) * EVENTS_PER_BATCH
        # Wait for the flushers: rows stop growing once the buffers are drained.
        last_rows, last_change = -1, time.monotonic()
        # (A flush of tens of thousands of rows is one COPY transaction: allow long gaps.)
        while time.monotonic() - last_change < 20 and time.monotonic() - started < 600:
            rows = count() - baseline_rows
            if rows != last_rows:
                last_rows, last_change = rows, time.monotonic()
            if rows >= accepted:
                break
            time.sleep(0.2)
        written_at = last_change - started
        cpu_after, machine_after = cpu_by_group(server.pid, database), machine_cpu()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    window = max(written_at, load_seconds)
    spent = {k: cpu_after[k] - cpu_before[k] for k in cpu_after}
    spent["wrk"] = result["cpu_s"]  # gone from /proc by now; measured by rusage
    events = max(last_rows, 1)
    return {
        "accepted_per_s": accepted / load_seconds,
        "written_per_s": last_rows / window,
        "written": last_rows, "accepted": accepted,
        # wrk does not count the requests still in flight when it stops: those are written
        # too, so only a shortfall is a loss.
        "lost": max(accepted - last_rows, 0),
        "non_2xx": result["status_errors"], "socket_errors": result["socket_errors"],
        "p50_ms": result["p50_us"] / 1000, "p99_ms": result["p99_us"] / 1000,
        "drain_s": max(written_at - load_seconds, 0.0),
        **{f"cpu_{k}": v / window for k, v in spent.items()},
        "cpu_machine": (machine_after - machine_before) / window,
        # CPU microseconds per event written: independent of what else runs on the machine.
        **{f"us_{k}": v / events * 1e6 for k, v in spent.items()},
        "us_total": sum(v for k, v in spent.items() if k != "wrk") / events * 1e6,
    }


# -- in process: flusher and bulk_create baseline ----------------------------------------------
def build_records(batches: int) -> list[Any]:
    from benchmarks.collect.beacons import batch
    from perfmonitor.beacons.records import BeaconContext, BrowserEvent
    from perfmonitor.beacons.schema import clean_event

    records = []
    for i in range(batches):
        body = batch(f"s{i}-{time.monotonic_ns()}")
        ctx = BeaconContext(session_id=body["session_id"], user_id="", device="desktop",
                            sample_rate=1.0, received_at=time.time(), page=body["page"])
        records.extend(BrowserEvent(ctx, clean_event(e)) for e in body["events"])
    return records


def flusher_rate(events: int, profile: cProfile.Profile | None = None) -> float:
    from perfmonitor.capture import buffer as buffer_module

    records = build_records(events // EVENTS_PER_BATCH)
    truncate()
    buffer_module.buffer.reset()
    for record in records:
        buffer_module.push(record)
    start = time.perf_counter()
    if profile:
        profile.enable()
    buffer_module.flush_now()
    if profile:
        profile.disable()
    elapsed = time.perf_counter() - start
    assert stored_events() == len(records), "the flusher lost events"
    return len(records) / elapsed


def bulk_create_rate(events: int) -> float:
    from django.conf import settings
    from django.db import transaction
    from django.test.utils import override_settings

    from perfmonitor.capture.writer import Sink
    from perfmonitor.models import PerformanceMetric, WebVital

    sink = Sink()
    # One raw row per event, whatever --sample-rate says: the baseline writes every event.
    with override_settings(PERFMONITOR={**settings.PERFMONITOR, "SAMPLE_RATE": 1.0}):
        for record in build_records(events // EVENTS_PER_BATCH):
            record.expand(sink)
    from datetime import UTC, datetime

    truncate()
    start = time.perf_counter()
    with transaction.atomic():
        for model, key in ((PerformanceMetric, "metric"), (WebVital, "vital")):
            model.objects.bulk_create(
                [model(timestamp=datetime.fromtimestamp(ts, tz=UTC), **fields)
                 for ts, fields in sink.rows[key]], batch_size=1000)
    elapsed = time.perf_counter() - start
    return stored_rows() / elapsed


def request_profile(batches: int, profile: cProfile.Profile) -> float:
    from django.test import Client

    from benchmarks.collect.beacons import batch
    from perfmonitor.capture import buffer as buffer_module

    client = Client()
    bodies = [json.dumps(batch(f"p{i}")) for i in range(batches)]
    for body in bodies[:20]:  # imports and first-request work stay out of the profile
        client.post("/perfmonitor/api/v1/collect", body, content_type="text/plain")
    start = time.perf_counter()
    profile.enable()
    for body in bodies:
        client.post("/perfmonitor/api/v1/collect", body, content_type="text/plain")
    profile.disable()
    elapsed = time.perf_counter() - start
    buffer_module.buffer.reset()
    return batches * EVENTS_PER_BATCH / elapsed


def top(profile: cProfile.Profile, title: str, limit: int = 18) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(limit)
    return f"\n### {title} (top {limit} by own time)\n" + out.getvalue()


def median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def e2e_lines(label: str, rows: list[dict[str, float]], baseline: float | None,
              plain: bool = False) -> list[str]:
    accepted, written = median(rows, "accepted_per_s"), median(rows, "written_per_s")
    ratio = (lambda v: f"{v / baseline:.2f}") if baseline else (lambda v: "1.00")
    what = "rows in PostgreSQL" if plain else "events in PostgreSQL (rows + rollups)"
    return [
        f"| {label}: HTTP accepted | {accepted:,.0f} | {ratio(accepted)} |",
        f"| {label}: end to end, posted -> {what} | {written:,.0f} | {ratio(written)} |",
    ]


def cpu_lines(label: str, rows: list[dict[str, float]]) -> list[str]:
    parts = ", ".join(f"{name} {median(rows, 'us_' + key):.1f}" for key, name in (
        ("server", "server HTTP + request path"), ("flusher", "flusher"),
        ("postgres", "postgres"), ("redis", "redis"), ("wrk", "wrk (load generator)")))
    total = median(rows, "us_total")
    cores = os.cpu_count() or 1
    with_wrk = cores * 1e6 / (total + median(rows, "us_wrk"))
    lost = sum(r["lost"] for r in rows)
    return [
        f"- {label}: CPU us per event written: {parts}; total without wrk {total:.1f} us "
        f"-> {cores} idle cores: ~{cores * 1e6 / total:,.0f} events/s "
        f"(with wrk on the same cores: ~{with_wrk:,.0f})",
        f"  latency p50 {median(rows, 'p50_ms'):.1f} ms, p99 {median(rows, 'p99_ms'):.1f} ms; "
        f"non-2xx {sum(r['non_2xx'] for r in rows):.0f}, socket errors "
        f"{sum(r['socket_errors'] for r in rows):.0f}, events lost {lost:.0f}; "
        f"drain after load {median(rows, 'drain_s'):.1f} s; whole machine busy "
        f"{median(rows, 'cpu_machine'):.2f} of {os.cpu_count()} cores",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--servers", default="gunicorn,granian",
                        help="comma-separated: gunicorn (gthread), granian")
    parser.add_argument("--workers", type=int, default=2, help="processes: one per core")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--events", type=int, default=50_000, help="events per in-process round")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-http", action="store_true", help="in-process measurements only")
    parser.add_argument("--no-http-baseline", action="store_true",
                        help="skip the bulk_create view over HTTP")
    parser.add_argument("--sample-rate", type=float, default=0.1,
                        help="server SAMPLE_RATE: 0.1 = the default, 1.0 = a raw row per event")
    args = parser.parse_args()
    SAMPLE_RATE[0] = args.sample_rate
    os.environ["BENCH_SAMPLE_RATE"] = str(args.sample_rate)
    servers = [] if args.no_http else [s.strip() for s in args.servers.split(",") if s.strip()]
    if "granian" in servers and not (Path(sys.executable).parent / "granian").exists():
        print("granian is not installed (pip install granian): measuring without it")
        servers.remove("granian")
    if servers and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk), and the HTTP measurements "
                         "need it: --no-http measures in process only")

    django.setup()
    ensure_database()
    RESULTS.mkdir(exist_ok=True)
    from benchmarks.collect.beacons import batch

    template = json.dumps(batch("__SESSION__"))
    template_path = RESULTS / "batch.json"
    template_path.write_text(template)
    print(f"batch: {EVENTS_PER_BATCH} events, {len(template)} bytes; SAMPLE_RATE "
          f"{args.sample_rate} (1.0: a raw row per event); machine: {os.cpu_count()} cores; "
          f"PostgreSQL on 127.0.0.1; servers {servers} with {args.workers} workers x "
          f"{args.threads} threads; wrk {args.connections} connections", flush=True)

    # Rounds interleave the configurations, so that a burst of other work on the machine
    # does not land on one of them only.
    e2e: dict[str, list[dict[str, float]]] = {}
    configs = [(name, False) for name in servers]
    if servers and not args.no_http_baseline:
        configs.append((servers[0], True))
    for n in range(args.rounds):
        for name, plain in configs:
            label = f"{name} bulk_create view" if plain else name
            row = end_to_end(args, template, template_path, name, plain)
            e2e.setdefault(label, []).append(row)
            print(f"  round {n + 1} {label}: " + ", ".join(
                f"{k}={v:,.1f}" for k, v in row.items()), flush=True)
    flush_rates = [flusher_rate(args.events) for _ in range(args.rounds)]
    bulk_rates = [bulk_create_rate(args.events) for _ in range(args.rounds)]

    baseline = statistics.median(bulk_rates)
    flushed = statistics.median(flush_rates)
    lines = [
        "",
        f"| measurement ({args.rounds} rounds, median) | events/s | vs bulk_create |",
        "|---|---:|---:|",
        f"| in process: plain bulk_create of the same raw rows (baseline) | {baseline:,.0f} "
        "| 1.00 |",
        f"| in process: flusher, expand + COPY rows + rollups | {flushed:,.0f} | "
        f"{flushed / baseline:.2f} |",
    ]
    plain_label = next((label for label in e2e if "bulk_create" in label), None)
    http_baseline = median(e2e[plain_label], "written_per_s") if plain_label else None
    if plain_label:
        lines += e2e_lines(f"{plain_label} (baseline over HTTP)", e2e[plain_label], None,
                           plain=True)
    for label, rows in e2e.items():
        if label != plain_label:
            lines += e2e_lines(f"{label} {args.workers}x{args.threads}", rows, http_baseline)
    if http_baseline:
        lines.append("")
        lines.append("(HTTP rows compare with the bulk_create view over HTTP; in-process rows "
                     "with the in-process bulk_create.)")
    if e2e:
        lines += ["", "CPU per event (medians):"]
        for label, rows in e2e.items():
            lines += cpu_lines(label, rows)
    load = os.getloadavg()[0]
    lines.append(f"load average at the end: {load:.1f} (other work on the machine skews the "
                 "rates; CPU per event does not depend on it)")
    report = "\n".join(lines)
    if args.profile:
        request_prof, flush_prof = cProfile.Profile(), cProfile.Profile()
        request_rate = request_profile(400, request_prof)
        flush_rate = flusher_rate(args.events, flush_prof)
        report += (f"\n\nprofiled in-process: request path {request_rate:,.0f} events/s "
                   f"(one thread, no network), flusher {flush_rate:,.0f} events/s")
        report += top(request_prof, "request path: 400 batches through the Django test client")
        report += top(flush_prof, f"flusher: {args.events} events")
    print(report)
    (RESULTS / "latest.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
