"""Paired overhead benchmark: bare and one profile served at once, loaded in turns.

    python benchmarks/overhead/paired.py [--pairs 30] [--window 2] [--gap 1.2]

run.py serves one profile at a time, so a profile and bare are measured tens of
seconds apart, and this VM's speed drifts over such spans. Here bare and the
profile each run their own gunicorn (2 sync workers, different ports) for the
whole comparison, and wrk loads them in turns: a ``--window`` of load on one, a
``--gap`` of quiet (the monitor's flusher writes that window's tail inside it and
it is counted), then the other, in a random order per pair. Each pair gives the
profile's ratio to bare from windows seconds apart, so slow drift cancels. The
summary is the median ratio over pairs with a distribution-free 95 % confidence
interval (order statistics of the binomial); ``placebo`` shows the noise floor.

CPU per request: ``/proc/<pid>/task/*/sched`` (ns) of the server's gunicorn tree
and of its PostgreSQL backends (told apart by ``application_name``), from the
start of its window to the end of the gap after it, divided by the requests wrk
completed in the window.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from loadgen import run_wrk, wrk_path
from procstat import children_of, task_cpu_ns
from servers import VIEWS, Gunicorn, free_port

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
VENV_BIN = HERE / ".venv" / "bin"
PROFILES = ["placebo", "perfmonitor", "django-silk", "django-prometheus", "sentry-sdk"]
TARGETS = {"one": (0.95, 1.05), "ten": (0.98, 1.02)}
VIEW_LABELS = {"one": "1-query", "ten": "10-query"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", default="placebo,perfmonitor,django-prometheus",
                        help="compared with bare, one at a time")
    parser.add_argument("--views", default="one,ten")
    parser.add_argument("--pairs", type=int, default=30, help="pairs per profile and view")
    parser.add_argument("--pairs-for", default="django-silk=8,sentry-sdk=8",
                        help="per-profile pair counts (peers far from bare need few)")
    parser.add_argument("--window", type=int, default=2, help="seconds of load per window")
    parser.add_argument("--gap", type=float, default=1.2,
                        help="quiet seconds after each window (> perfmonitor's 1 s flush)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds per server first")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--restart-every", type=int, default=4,
                        help="pairs between restarts of both servers (fresh processes)")
    parser.add_argument("--hash-seed", type=int, default=0,
                        help="PYTHONHASHSEED of every server (the same for bare and profile)")
    parser.add_argument("--no-prepare", action="store_true",
                        help="keep the database (default: recreate and seed it)")
    parser.add_argument("--report", metavar="JSON", help="print a saved result and exit")
    parser.add_argument("--db-host", default="127.0.0.1")
    parser.add_argument("--db-port", default="5432")
    parser.add_argument("--db-user", default="postgres")
    parser.add_argument("--db-name", default="bench_overhead")
    args = parser.parse_args()
    args.profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    unknown = sorted(set(args.profiles) - set(PROFILES))
    if unknown:
        parser.error(f"unknown profiles {unknown}; choose from {PROFILES}")
    args.views = [v.strip() for v in args.views.split(",") if v.strip()]
    args.pairs_for = dict((k, int(v)) for k, v in
                          (item.split("=") for item in args.pairs_for.split(",") if item))
    return args


def tree_cpu_ns(parent: int) -> int:
    return task_cpu_ns(parent) + sum(task_cpu_ns(pid) for pid in children_of(parent))


def pg_cpu_ns(admin: Any, app_name: str) -> dict[int, tuple[int, str]]:
    rows = admin.execute(
        "SELECT pid, query FROM pg_stat_activity WHERE application_name = %s "
        "AND backend_type = 'client backend'", (app_name,)).fetchall()
    return {pid: (task_cpu_ns(pid), query or "") for pid, query in rows}


def window(server: Gunicorn, app_name: str, view: str, args: argparse.Namespace,
           admin: Any) -> dict[str, Any]:
    assert server.proc is not None
    web0, pg0 = tree_cpu_ns(server.proc.pid), pg_cpu_ns(admin, app_name)
    load = run_wrk(server.base_url + VIEWS[view], seconds=args.window,
                   connections=args.connections, threads=args.threads)
    time.sleep(args.gap)
    web1, pg1 = tree_cpu_ns(server.proc.pid), pg_cpu_ns(admin, app_name)
    pg = monitor_pg = 0
    for pid, (ns, query) in pg1.items():
        used = ns - pg0.get(pid, (0, ""))[0]
        pg += used
        if "benchapp_" not in query and "benchapp_" not in pg0.get(pid, (0, ""))[1]:
            monitor_pg += used  # a connection that ran no view statement: the flusher's
    n = max(load.requests, 1)
    return {"requests": load.requests, "rps": load.rps, "p50_ms": load.p50_ms,
            "p99_ms": load.p99_ms, "non_2xx": load.non_2xx,
            "socket_errors": load.socket_errors,
            "cpu_us_per_request": (web1 - web0 + pg) / 1000 / n,
            "web_us_per_request": (web1 - web0) / 1000 / n, "pg_us_per_request": pg / 1000 / n,
            "monitor_pg_us_per_request": monitor_pg / 1000 / n}


def median_ci(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Median and a distribution-free confidence interval (binomial order statistics)."""
    xs = sorted(values)
    n = len(xs)
    median = statistics.median(xs)
    if n < 6:
        return median, xs[0], xs[-1]
    alpha = (1 - level) / 2
    cumulative, k = 0.0, 0
    while True:  # largest k with P(Binomial(n, 1/2) < k) <= alpha
        p = math.comb(n, k) / 2 ** n
        if cumulative + p > alpha:
            break
        cumulative += p
        k += 1
    k = max(k, 1)
    return median, xs[k - 1], xs[n - k]


def compare(profile: str, view: str, args: argparse.Namespace, env: dict[str, str],
            admin: Any, rng: random.Random, logs: Path, sent: dict[str, int],
            expected: dict[str, str]) -> dict[str, Any]:
    from run import check_responses

    names = {"bare": "bench-bare", profile: f"bench-{profile}"}
    pairs: list[dict[str, Any]] = []
    problems: list[str] = []
    servers: dict[str, Gunicorn] = {}

    def start_servers(generation: int) -> None:
        # Fresh processes on fresh ports, started in a random order: a server instance's
        # own speed (placebo showed up to 11 % between two identical ones) then varies
        # between blocks of pairs instead of biasing the whole comparison.
        order = list(names)
        rng.shuffle(order)
        for name in order:
            server = Gunicorn(name, free_port(), args.workers,
                              {**env, "BENCH_APP_NAME": names[name]},
                              logs / f"{view}-{name}-{generation}.log")
            servers[name] = server
            server.start()
            problems.extend(f"{view} {name}: {p}" for p in check_responses(server, expected))
            warm = run_wrk(server.base_url + VIEWS[view], seconds=args.warmup,
                           connections=args.connections, threads=args.threads)
            if name == "perfmonitor":  # start() and the checks: /one/ twice, /ten/ once
                sent["one"] += 2
                sent["ten"] += 1
                sent[view] += warm.requests

    def stop_servers() -> None:
        for server in servers.values():
            server.stop()
        servers.clear()

    try:
        count = args.pairs_for.get(profile, args.pairs)
        for i in range(count):
            if i % max(args.restart_every, 1) == 0:
                stop_servers()
                start_servers(i // max(args.restart_every, 1))
            order = ["bare", profile]
            rng.shuffle(order)
            got = {}
            for name in order:
                got[name] = window(servers[name], names[name], view, args, admin)
                if name == "perfmonitor":
                    sent[view] += got[name]["requests"]
            b, p = got["bare"], got[profile]
            pairs.append({"bare": b, "profile": p, "first": order[0],
                          "block": i // max(args.restart_every, 1),
                          "rps_ratio": p["rps"] / b["rps"],
                          "cpu_ratio": p["cpu_us_per_request"] / b["cpu_us_per_request"],
                          "p99_ratio": p["p99_ms"] / b["p99_ms"] if b["p99_ms"] else None})
            print(f"  {view} {profile:18} pair {i + 1:2}/{count}: rps x{pairs[-1]['rps_ratio']:.3f}"
                  f"  cpu/req x{pairs[-1]['cpu_ratio']:.3f}  (bare {b['rps']:.0f} rps, "
                  f"{b['cpu_us_per_request']:.0f} us/req)", flush=True)
    finally:
        stop_servers()
    return {"profile": profile, "view": view, "pairs": pairs, "problems": problems}


def summarize(comparisons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for c in comparisons:
        pairs = c["pairs"]
        if not pairs:
            continue
        row: dict[str, Any] = {"profile": c["profile"], "view": c["view"], "pairs": len(pairs)}
        for key in ("rps_ratio", "cpu_ratio", "p99_ratio"):
            values = [p[key] for p in pairs if p[key] is not None]
            row[key] = median_ci(values)
        for key in ("rps", "cpu_us_per_request", "p99_ms", "web_us_per_request",
                    "pg_us_per_request", "monitor_pg_us_per_request"):
            row[f"bare_{key}"] = statistics.median(p["bare"][key] for p in pairs)
            row[f"profile_{key}"] = statistics.median(p["profile"][key] for p in pairs)
        row["non_2xx"] = sum(p["profile"]["non_2xx"] + p["bare"]["non_2xx"] for p in pairs)
        row["socket_errors"] = sum(p["profile"]["socket_errors"] + p["bare"]["socket_errors"]
                                   for p in pairs)
        rows.append(row)
    return rows


def _ci(value: tuple[float, float, float]) -> str:
    return f"{value[0]:.3f} [{value[1]:.3f}, {value[2]:.3f}]"


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| view | profile | pairs | rps (bare) | CPU µs/req (bare) | rps ratio [95% CI] | "
             "CPU/req ratio [95% CI] | p99 ratio | errors |", "|" + "---|" * 9]
    for r in rows:
        lines.append(
            f"| {VIEW_LABELS.get(r['view'], r['view'])} | {r['profile']} | {r['pairs']} | "
            f"{r['profile_rps']:.0f} ({r['bare_rps']:.0f}) | "
            f"{r['profile_cpu_us_per_request']:.0f} ({r['bare_cpu_us_per_request']:.0f}) | "
            f"{_ci(r['rps_ratio'])} | {_ci(r['cpu_ratio'])} | {r['p99_ratio'][0]:.2f} | "
            f"{r['non_2xx'] + r['socket_errors']} |")
    lines.append("")
    lines.append("Ratios: profile / bare within each pair; median over pairs, 95 % confidence "
                 "interval of the median from order statistics. Values: medians over windows.")
    for r in rows:
        if r["profile"] == "perfmonitor" and r["view"] in TARGETS:
            want_rps, want_cpu = TARGETS[r["view"]]
            rps, cpu = r["rps_ratio"], r["cpu_ratio"]
            lines.append(f"- {VIEW_LABELS[r['view']]} perfmonitor: rps "
                         f"{_verdict(rps, want_rps, True)}; CPU/req "
                         f"{_verdict(cpu, want_cpu, False)}")
    return "\n".join(lines)


def _verdict(value: tuple[float, float, float], target: float, at_least: bool) -> str:
    median, low, high = value
    if at_least:
        state = ("met (whole CI above)" if low >= target else
                 "not met (whole CI below)" if high < target else "unresolved (CI spans it)")
        return f"x{median:.3f} vs >= {target}: {state}"
    state = ("met (whole CI below)" if high <= target else
             "not met (whole CI above)" if low > target else "unresolved (CI spans it)")
    return f"x{median:.3f} vs <= {target}: {state}"


def main() -> None:
    args = parse_args()
    if args.report:
        result = json.loads(Path(args.report).read_text())
        print(markdown(summarize(result["comparisons"])))
        return
    if Path(sys.prefix).resolve() != (HERE / ".venv").resolve():
        from run import ensure_venv

        ensure_venv()
        python = str(VENV_BIN / "python")
        os.execv(python, [python, str(Path(__file__).resolve()), *sys.argv[1:]])
    import psycopg
    from run import PROFILES as ALL_PROFILES
    from run import base_env, environment, manage, prepare_database

    wrk_path()
    rng = random.Random(args.seed)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logs = RESULTS / f"paired-logs-{stamp}"
    logs.mkdir(parents=True)
    out_path = RESULTS / f"paired-{stamp}.json"
    env = base_env(args)
    # One hash seed for every server: with a random seed per process, dict and set
    # layouts differ between two identically configured servers, and so does their
    # speed, by more than the margins measured here (placebo showed it).
    env["PYTHONHASHSEED"] = str(args.hash_seed)
    admin = psycopg.connect(host=args.db_host, port=args.db_port, user=args.db_user,
                            dbname="postgres", autocommit=True)
    if not args.no_prepare:
        prepare_database(argparse.Namespace(**{**vars(args), "profiles": ALL_PROFILES}),
                         admin, env)
    before = None
    if "perfmonitor" in args.profiles:
        before = json.loads(manage(env, "perfmonitor", "perfmonitor_totals").splitlines()[-1])
    sink_port = free_port()
    sink = subprocess.Popen([sys.executable, str(HERE / "sink.py"), str(sink_port)],
                            stdout=subprocess.DEVNULL)
    env["BENCH_SENTRY_DSN"] = f"http://public@127.0.0.1:{sink_port}/1"
    result: dict[str, Any] = {"config": {k: v for k, v in vars(args).items()},
                              "environment": environment(args), "started": stamp,
                              "comparisons": []}
    sent = {view: 0 for view in VIEWS}
    expected: dict[str, str] = {}
    try:
        time.sleep(0.5)
        for view in args.views:
            order = args.profiles[:]
            rng.shuffle(order)
            for profile in order:
                result["comparisons"].append(
                    compare(profile, view, args, env, admin, rng, logs, sent, expected))
                out_path.write_text(json.dumps(result, indent=1, default=str))
    finally:
        sink.terminate()
        sink.wait()
    if before is not None:
        after = json.loads(manage(env, "perfmonitor", "perfmonitor_totals").splitlines()[-1])
        counted = {route: after["request_rollup_counts"].get(route, 0)
                   - before["request_rollup_counts"].get(route, 0) for route in ("/one/", "/ten/")}
        result["perfmonitor_recorded"] = {"rollup_counts": counted, "sent": sent,
                                          "health": after["health"]}
    result["summary"] = summarize(result["comparisons"])
    out_path.write_text(json.dumps(result, indent=1, default=str))
    print()
    print(markdown(result["summary"]))
    if before is not None:
        rec = result["perfmonitor_recorded"]
        print(f"- perfmonitor rollups counted {rec['rollup_counts']} requests; wrk and checks "
              f"completed {sent}; health {rec['health']}")
    for c in result["comparisons"]:
        for problem in c["problems"]:
            print(f"- PROBLEM: {problem}")
    print(f"\nresults: {out_path}")


if __name__ == "__main__":
    main()
