"""Overhead benchmark: what each monitor costs a Django site, side by side with bare.

    python benchmarks/overhead/run.py [--rounds 7] [--duration 10] [--warmup 3]

Creates benchmarks/overhead/.venv (perfmonitor from this checkout plus the peers),
re-runs itself inside it, recreates the PostgreSQL database ``bench_overhead``, and
then, round after round, serves each profile with gunicorn (2 sync workers) on
127.0.0.1 and loads it with wrk. Each round visits every profile once, in a shuffled
order. See README.md for the method.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Sibling modules (stdlib only); psycopg is imported once inside the benchmark's venv.
from loadgen import run_wrk, wrk_path
from procstat import (
    PidSetSnapshot,
    TreeSnapshot,
    machine_busy,
    pidset_cpu_between,
    thread_cpu_between,
    tree_cpu_between,
)
from report import markdown, summarize
from servers import VIEWS, Gunicorn, free_port, http_get, sink_envelopes

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VENV = HERE / ".venv"
VENV_BIN = VENV / "bin"
RESULTS = HERE / "results"
PROFILES = ["bare", "placebo", "perfmonitor", "django-silk", "django-prometheus", "sentry-sdk"]
STARTUP_SECONDS = 5  # rough gunicorn start + checks + stop, for the time estimate only


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=12, help="interleaved rounds (>= 1)")
    parser.add_argument("--duration", type=float, default=6.0,
                        help="seconds measured per profile, view and round")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of unmeasured load right before each measured window")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--profiles", default=",".join(PROFILES),
                        help="comma-separated subset (bare is always included)")
    parser.add_argument("--max-minutes", type=float, default=35.0,
                        help="start no new round after this many minutes")
    parser.add_argument("--report", metavar="JSON", default=None,
                        help="print the table of a saved results file and exit")
    parser.add_argument("--seed", type=int, default=None, help="shuffle seed (default: random)")
    parser.add_argument("--db-host", default="127.0.0.1")
    parser.add_argument("--db-port", default="5432")
    parser.add_argument("--db-user", default="postgres")
    parser.add_argument("--db-name", default="bench_overhead")
    args = parser.parse_args()
    chosen = [p.strip() for p in args.profiles.split(",") if p.strip()]
    unknown = sorted(set(chosen) - set(PROFILES))
    if unknown:
        parser.error(f"unknown profiles {unknown}; choose from {PROFILES}")
    if args.rounds < 1 or args.duration < 1 or args.warmup < 0:
        parser.error("--rounds and --duration must be >= 1, --warmup >= 0")
    args.profiles = [p for p in PROFILES if p in chosen or p == "bare"]
    return args


# -- the benchmark's own venv ------------------------------------------------------
def _install_stamp() -> str:
    digest = hashlib.sha256()
    for path in (HERE / "requirements.txt", REPO / "pyproject.toml"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_venv() -> None:
    stamp_file = VENV / ".bench-installed"
    stamp = _install_stamp()
    if stamp_file.exists() and stamp_file.read_text() == stamp:
        return
    print(f"creating {VENV} (perfmonitor from {REPO} + peers)", flush=True)
    if not (VENV_BIN / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV_BIN / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{REPO}[binary]", "-r", str(HERE / "requirements.txt")],
                   check=True)
    stamp_file.write_text(stamp)


def inside_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


# -- database ------------------------------------------------------------------------
def base_env(args: argparse.Namespace) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTHONPATH")}
    env.update(DJANGO_SETTINGS_MODULE="benchproject.settings", BENCH_DB_HOST=args.db_host,
               BENCH_DB_PORT=args.db_port, BENCH_DB_USER=args.db_user,
               BENCH_DB_NAME=args.db_name, PYTHONDONTWRITEBYTECODE="1")
    return env


def manage(env: dict[str, str], profile: str, *command: str) -> str:
    done = subprocess.run([str(VENV_BIN / "python"), "manage.py", *command], cwd=HERE,
                          env={**env, "BENCH_PROFILE": profile}, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(command)} ({profile}) failed:\n{done.stderr}")
    return done.stdout


def prepare_database(args: argparse.Namespace, admin: Any, env: dict[str, str]) -> None:
    name = args.db_name
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{name}"')
    for profile in args.profiles:  # each profile migrates the apps it installs
        manage(env, profile, "migrate", "--noinput", "-v0")
    manage(env, "bare", "seed_bench")


def backends(admin: Any, dbname: str) -> dict[int, str]:
    """Client backends of the benchmark database: pid -> their last statement."""
    rows = admin.execute(
        "SELECT pid, query FROM pg_stat_activity "
        "WHERE datname = %s AND backend_type = 'client backend'", (dbname,)).fetchall()
    return {pid: query or "" for pid, query in rows}


def is_view_backend(query: str) -> bool:
    """A connection that last ran one of the views' statements (a request thread's)."""
    return "benchapp_" in query


# -- one measured window ---------------------------------------------------------------
def measure(server: Gunicorn, view: str, args: argparse.Namespace, admin: Any,
            sink_port: int) -> dict[str, Any]:
    assert server.proc is not None
    envelopes0 = sink_envelopes(sink_port)
    pg_start = backends(admin, args.db_name)
    tree0, pg0, busy0 = TreeSnapshot.take(server.proc.pid), PidSetSnapshot.take(set(pg_start)), \
        machine_busy()
    t0 = time.monotonic()
    load = run_wrk(server.base_url + VIEWS[view], seconds=args.duration,
                   connections=args.connections, threads=args.threads)
    t1 = time.monotonic()
    tree1, busy1 = TreeSnapshot.take(server.proc.pid), machine_busy()
    pg_now = backends(admin, args.db_name)
    pg_end = {**pg_start, **pg_now}
    pg1 = PidSetSnapshot.take(set(pg_end))
    envelopes1 = sink_envelopes(sink_port)
    web_cpu = tree_cpu_between(tree0, tree1)
    pg_cpu, pg_vanished = pidset_cpu_between(pg0, pg1)
    # Backends that served no view statement at either end belong to another thread of
    # the workers: perfmonitor's flusher (other monitors write on the request's connection).
    monitor_pids = {pid for pid in pg_end if not (is_view_backend(pg_start.get(pid, ""))
                                                  or is_view_backend(pg_now.get(pid, "")))}
    monitor_pg_cpu, _ = pidset_cpu_between(
        PidSetSnapshot({p: v for p, v in pg0.own.items() if p in monitor_pids}),
        PidSetSnapshot({p: v for p, v in pg1.own.items() if p in monitor_pids}))
    n = max(load.requests, 1)
    window = t1 - t0
    return {
        "profile": server.profile, "view": view, "requests": load.requests,
        "seconds": load.seconds, "rps": load.rps, "p50_ms": load.p50_ms,
        "p90_ms": load.p90_ms, "p99_ms": load.p99_ms, "max_ms": load.max_ms,
        "non_2xx": load.non_2xx, "socket_errors": load.socket_errors,
        "web_cpu_s": web_cpu, "pg_cpu_s": pg_cpu, "pg_backends": len(pg1.own),
        "pg_backends_vanished": pg_vanished,
        "workers_replaced": sorted(set(tree0.own) ^ set(tree1.own)),
        "cpu_ms_per_request": (web_cpu + pg_cpu) * 1000 / n,
        "web_cpu_ms_per_request": web_cpu * 1000 / n, "pg_cpu_ms_per_request": pg_cpu * 1000 / n,
        # Worker threads besides the one serving requests (perfmonitor's flusher,
        # sentry's transport): work done off the request path, still paid by the host.
        "bg_thread_cpu_ms_per_request": thread_cpu_between(tree0, tree1) * 1000 / n,
        # perfmonitor's flusher writes on its own connection: that backend's share.
        "monitor_pg_cpu_ms_per_request": monitor_pg_cpu * 1000 / n,
        "wrk_cpu_s": load.wrk_cpu_s,
        "others_cores": (busy1 - busy0 - web_cpu - pg_cpu - load.wrk_cpu_s) / window,
        "sink_envelopes": envelopes1 - envelopes0,
        "loadavg": os.getloadavg()[0],
    }


def check_responses(server: Gunicorn, expected: dict[str, str]) -> list[str]:
    """Same status and bytes as bare: a monitor must not change what users get."""
    problems = []
    for view, path in VIEWS.items():
        status, body = http_get(server.base_url + path)
        digest = hashlib.sha256(body).hexdigest()
        if status != 200:
            problems.append(f"{view}: status {status}")
        elif expected.setdefault(view, digest) != digest:
            problems.append(f"{view}: body differs from bare")
    return problems


# -- the run -----------------------------------------------------------------------------
def environment(args: argparse.Namespace) -> dict[str, Any]:
    from importlib.metadata import version

    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], cwd=REPO, capture_output=True, text=True,
                              check=False)
        return done.stdout.strip()

    packages = {name: version(name) for name in (
        "django", "gunicorn", "psycopg", "django-perfmonitor", "django-silk",
        "django-prometheus", "sentry-sdk")}
    return {"python": platform.python_version(), "machine": platform.platform(),
            "cpus": os.cpu_count(), "packages": packages, "git_commit": git("rev-parse", "HEAD"),
            # The benchmark measures the working tree: note uncommitted capture changes.
            "perfmonitor_uncommitted": git("status", "--porcelain", "--", "perfmonitor"),
            "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True,
                                  check=False).stdout.splitlines()[:1]}


def run(args: argparse.Namespace) -> None:
    import psycopg

    wrk_path()
    rng = random.Random(args.seed)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(exist_ok=True)
    logs = RESULTS / f"logs-{stamp}"
    logs.mkdir()
    out_path = RESULTS / f"overhead-{stamp}.json"
    per_profile = len(VIEWS) * (args.duration + args.warmup) + STARTUP_SECONDS
    estimate = args.rounds * len(args.profiles) * per_profile / 60
    print(f"{args.rounds} rounds x {len(args.profiles)} profiles x {len(VIEWS)} views, "
          f"{args.duration:g} s each: about {estimate:.0f} min", flush=True)

    env = base_env(args)
    admin = psycopg.connect(host=args.db_host, port=args.db_port, user=args.db_user,
                            dbname="postgres", autocommit=True)
    prepare_database(args, admin, env)
    sink_port, port = free_port(), free_port()
    sink = subprocess.Popen([sys.executable, str(HERE / "sink.py"), str(sink_port)],
                            stdout=subprocess.DEVNULL)
    env["BENCH_SENTRY_DSN"] = f"http://public@127.0.0.1:{sink_port}/1"
    result: dict[str, Any] = {
        "config": {k: v for k, v in vars(args).items()}, "environment": environment(args),
        "started": stamp, "measurements": [], "problems": [], "requests_sent": {},
    }
    expected: dict[str, str] = {}
    measurements = result["measurements"]
    try:
        time.sleep(0.5)
        reference = Gunicorn("bare", port, args.workers, env, logs / "reference.log")
        try:  # what every profile must answer, byte for byte
            reference.start()
            check_responses(reference, expected)
        finally:
            reference.stop()
        began = time.monotonic()
        for rnd in range(1, args.rounds + 1):
            if rnd > 1 and time.monotonic() - began > args.max_minutes * 60:
                result["problems"].append(f"stopped after {rnd - 1} rounds (--max-minutes)")
                break
            order = args.profiles[:]
            rng.shuffle(order)
            print(f"round {rnd}/{args.rounds}: {' '.join(order)}", flush=True)
            for profile in order:
                server = Gunicorn(profile, port, args.workers, env, logs / f"{profile}.log")
                sent = result["requests_sent"].setdefault(profile, {v: 0 for v in VIEWS})
                try:
                    server.start()
                    sent["one"] += 1
                    for problem in check_responses(server, expected):
                        result["problems"].append(f"round {rnd} {profile}: {problem}")
                    for view in VIEWS:
                        sent[view] += 1
                    views = list(VIEWS)
                    rng.shuffle(views)
                    for view in views:
                        # Warm-up right before the window: caches and connections ready, and
                        # the background work a window inherits is from this same view.
                        if args.warmup:
                            warm = run_wrk(server.base_url + VIEWS[view], seconds=args.warmup,
                                           connections=args.connections, threads=args.threads)
                            sent[view] += warm.requests
                        m = measure(server, view, args, admin, sink_port)
                        m["round"] = rnd
                        sent[view] += m["requests"]
                        measurements.append(m)
                        print(f"  {profile:18} {view}: {m['rps']:7.0f} rps  "
                              f"p50 {m['p50_ms']:6.2f}  p99 {m['p99_ms']:7.2f} ms  "
                              f"cpu {m['cpu_ms_per_request']:.3f} ms/req "
                              f"(bg threads {m['bg_thread_cpu_ms_per_request']:.3f}, "
                              f"monitor db {m['monitor_pg_cpu_ms_per_request']:.3f})  "
                              f"others {m['others_cores']:.2f} cores", flush=True)
                finally:
                    server.stop()
            _write(out_path, result)
    finally:
        sink.terminate()
        sink.wait()
    if "perfmonitor" in args.profiles:
        result["perfmonitor_recorded"] = json.loads(
            manage(env, "perfmonitor", "perfmonitor_totals").strip().splitlines()[-1])
    result["summary"] = summarize(measurements, args.profiles, list(VIEWS))
    _write(out_path, result)
    print()
    print(markdown(result["summary"]))
    _print_checks(result)
    print(f"\nresults: {out_path}")


def _print_checks(result: dict[str, Any]) -> None:
    ms = result["measurements"]
    others = [m["others_cores"] for m in ms]
    print(f"- background load from other processes during windows: median "
          f"{statistics.median(others):.2f} cores (max {max(others):.2f}) of "
          f"{result['environment']['cpus']}")
    sentry = [m for m in ms if m["profile"] == "sentry-sdk"]
    if sentry:
        per_req = sum(m["sink_envelopes"] for m in sentry) / max(
            sum(m["requests"] for m in sentry), 1)
        print(f"- sentry-sdk sent {per_req:.2f} envelopes per measured request to the sink")
    for view in VIEWS:  # measured directly, so not subject to the bare-vs-profile noise
        pm = [m for m in ms if m["profile"] == "perfmonitor" and m["view"] == view]
        if pm:
            share = statistics.median(
                (m["bg_thread_cpu_ms_per_request"] + m["monitor_pg_cpu_ms_per_request"])
                / m["cpu_ms_per_request"] for m in pm)
            print(f"- perfmonitor /{view}/: flusher thread + its database connection used "
                  f"{share * 100:.2f}% of the CPU per request (median over windows)")
    recorded = result.get("perfmonitor_recorded")
    if recorded:
        sent = result["requests_sent"]["perfmonitor"]
        counts = recorded["request_rollup_counts"]
        print(f"- perfmonitor rollups count {counts.get('/one/', 0)} / {counts.get('/ten/', 0)} "
              f"requests for /one/ and /ten/; wrk and checks completed {sent['one']} / "
              f"{sent['ten']} (in-flight requests at each stop make the rollups slightly higher)"
              f"; health {recorded['health']}")
    replaced = [m for m in ms if m["workers_replaced"] or m["pg_backends_vanished"]]
    if replaced:
        print(f"- {len(replaced)} windows saw a worker or a database backend come or go")
    for problem in result["problems"]:
        print(f"- PROBLEM: {problem}")


def _write(path: Path, result: dict[str, Any]) -> None:
    path.write_text(json.dumps(result, indent=1, default=str))


def main() -> None:
    args = parse_args()
    if args.report:
        result = json.loads(Path(args.report).read_text())
        result["summary"] = summarize(result["measurements"], result["config"]["profiles"],
                                      list(VIEWS))
        print(markdown(result["summary"]))
        _print_checks(result)
        return
    if not inside_venv():
        ensure_venv()
        python = str(VENV_BIN / "python")
        os.execv(python, [python, str(Path(__file__).resolve()), *sys.argv[1:]])
    run(args)


if __name__ == "__main__":
    main()
