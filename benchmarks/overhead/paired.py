"""Paired overhead benchmark: bare and one profile served side by side.

    python benchmarks/overhead/paired.py [--pairs 40] [--window 2] [--gap 1.2]

run.py serves one profile at a time, so a profile and bare are measured tens of
seconds apart, and this VM's speed drifts over such spans (by 30 % within
minutes, seen here). Here bare and the profile each run their own gunicorn (2
sync workers, different ports).

``--mode concurrent`` (default): wrk loads both at the same time, each server
with its own wrk, for a ``--window``; then a ``--gap`` of quiet (the monitor's
flusher writes the window's tail inside it, and it is counted). Whatever the
host does meanwhile, it does to both, so a pair's ratio keeps only their
difference. Each server (gunicorn tree and its PostgreSQL backends) runs in its
own cgroup with equal ``cpu.shares``: both get the same CPU when both want
more. ``--mode alternate``: wrk loads them in turns, a window each, in a random
order per pair (what this script did first; its pairs vary ~4x more).

Both servers are restarted (fresh processes on fresh ports, started in a random
order) every ``--restart-every`` pairs: a server instance has a speed of its
own, so pairs of one instance are not independent. The unit of the summary is
therefore the block (one pair of instances, its pairs averaged): the median
ratio over blocks with a distribution-free 95 % confidence interval (order
statistics of the binomial); ``placebo`` shows the noise floor.

CPU per request: from the start of the window to the end of the gap after it,
the server's cgroup ``cpuacct.usage`` (ns; equal to the sum below, threads that
exited included) or, without cgroups, ``/proc/<pid>/task/*/sched`` of the
gunicorn tree and of its PostgreSQL backends (told apart by
``application_name``); divided by the requests wrk completed in the window.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from loadgen import WrkRun, wrk_path
from procstat import CpuGroup, children_of, fault_counts, task_cpu_ns
from servers import VIEWS, Gunicorn, free_port

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
VENV_BIN = HERE / ".venv" / "bin"
PROFILES = ["placebo", "perfmonitor", "django-silk", "django-prometheus", "sentry-sdk", "busywork"]
TARGETS = {"one": (0.95, 1.05), "ten": (0.98, 1.02)}
VIEW_LABELS = {"one": "1-query", "ten": "10-query"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", default="placebo,perfmonitor,django-prometheus",
                        help="compared with bare, one at a time")
    parser.add_argument("--views", default="one,ten")
    parser.add_argument("--pairs", type=int, default=40, help="pairs per profile and view")
    parser.add_argument("--pairs-for", default="django-prometheus=16,django-silk=8,sentry-sdk=8",
                        help="per-profile pair counts (peers far from bare need few)")
    parser.add_argument("--mode", choices=("concurrent", "alternate"), default="concurrent",
                        help="load both servers at once (default) or in turns")
    parser.add_argument("--no-cgroups", action="store_true",
                        help="concurrent mode: do not put each server in its own cgroup")
    parser.add_argument("--window", type=int, default=2, help="seconds of load per window")
    parser.add_argument("--gap", type=float, default=1.2,
                        help="quiet seconds after each window (> perfmonitor's 1 s flush)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds per server first")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--think-ms", type=float, default=0.0,
                        help="each wrk connection pauses this long between requests: "
                             "measures CPU per request below saturation (0: saturate)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--restart-every", type=int, default=2,
                        help="pairs between restarts of both servers (fresh processes)")
    parser.add_argument("--hash-seed", type=int, default=0,
                        help="PYTHONHASHSEED of every server (the same for bare and profile)")
    parser.add_argument("--no-layout-jitter", action="store_true",
                        help="every process of a build gets the same heap layout (see README)")
    parser.add_argument("--no-gc-settle", action="store_true",
                        help="do not make every worker run a full garbage collection after "
                             "its warm-up (see README: start-up leaves one due)")
    parser.add_argument("--no-prepare", action="store_true",
                        help="keep the database (default: recreate and seed it)")
    parser.add_argument("--report", metavar="JSON[,JSON...]",
                        help="print saved results and exit; several files are pooled "
                             "(each run's blocks kept apart)")
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


def tree_cpu_ns(parent: int) -> tuple[int, int]:
    """(CPU of the gunicorn tree, CPU of its workers' threads other than the serving one)."""
    workers = children_of(parent)
    total = task_cpu_ns(parent) + sum(task_cpu_ns(pid) for pid in workers)
    return total, sum(task_cpu_ns(pid, main_thread=False) for pid in workers)


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def pg_cpu_ns(admin: Any, app_name: str) -> dict[int, tuple[int, str]]:
    rows = admin.execute(
        "SELECT pid, query FROM pg_stat_activity WHERE application_name = %s "
        "AND backend_type = 'client backend'", (app_name,)).fetchall()
    return {pid: (task_cpu_ns(pid), query or "") for pid, query in rows}


def window(servers: dict[str, Gunicorn], names: dict[str, str], view: str,
           args: argparse.Namespace, admin: Any, groups: dict[str, CpuGroup],
           order: list[str]) -> dict[str, dict[str, Any]]:
    """The servers in ``order`` loaded at the same time, each by its own wrk, then the gap.

    Both servers (the concurrent mode): whatever the host does meanwhile (a
    neighbour's burst, steal, a frequency change) it does to both, so the pair's
    ratio keeps only their difference. One server: the alternate mode's turn. With
    cgroups, CPU is the group's ``cpuacct.usage`` (the gunicorn tree and the
    server's PostgreSQL backends, exited threads included) and equal shares give
    each server the same CPU budget, so the rps ratio compares throughput at equal
    CPU; without, the /proc sums as in the alternate mode.
    """
    for name, group in groups.items():  # a backend opened since (a reconnect) joins
        group.add(pg_cpu_ns(admin, names[name]))
    tree0 = {name: tree_cpu_ns(servers[name].proc.pid) for name in order}
    workers = {name: children_of(servers[name].proc.pid) for name in order}
    faults0 = {name: fault_counts(workers[name]) for name in order}
    pg0 = {name: pg_cpu_ns(admin, names[name]) for name in order}
    group0 = {name: group.usage_ns() for name, group in groups.items()}
    runs = {name: WrkRun(servers[name].base_url + VIEWS[view], seconds=args.window,
                         connections=args.connections, threads=args.threads,
                         think_ms=args.think_ms) for name in order}
    loads = {name: run.result() for name, run in runs.items()}
    time.sleep(args.gap)
    group1 = {name: group.usage_ns() for name, group in groups.items()}
    out = {}
    for name in order:
        (web1, bg1), pg1 = tree_cpu_ns(servers[name].proc.pid), pg_cpu_ns(admin, names[name])
        faults, user, system = (b - a for a, b in zip(faults0[name],
                                                       fault_counts(workers[name]), strict=True))
        web, background = web1 - tree0[name][0], bg1 - tree0[name][1]
        pg = monitor_pg = 0
        for pid, (ns, query) in pg1.items():
            used = ns - pg0[name].get(pid, (0, ""))[0]
            pg += used
            if "benchapp_" not in query and "benchapp_" not in pg0[name].get(pid, (0, ""))[1]:
                monitor_pg += used
        load = loads[name]
        n = max(load.requests, 1)
        total = group1[name] - group0[name] if name in groups else web + pg
        out[name] = {"requests": load.requests, "rps": load.rps, "p50_ms": load.p50_ms,
                     "p99_ms": load.p99_ms, "non_2xx": load.non_2xx,
                     "socket_errors": load.socket_errors,
                     "cpu_us_per_request": total / 1000 / n,
                     "web_us_per_request": web / 1000 / n, "pg_us_per_request": pg / 1000 / n,
                     "monitor_pg_us_per_request": monitor_pg / 1000 / n,
                     # workers' threads other than the serving one (a flusher, a transport)
                     "background_us_per_request": background / 1000 / n,
                     "proc_cpu_us_per_request": (web + pg) / 1000 / n,
                     # the workers' minor page faults and user/system split (10 ms ticks)
                     "minflt_per_request": faults / n, "user_s": user, "system_s": system,
                     # the workers' resident memory at the end of the window, summed
                     "workers_rss_mb": sum(rss_mb(pid) for pid in workers[name])}
    return out


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
    groups: dict[str, CpuGroup] = {}

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
            if name == "perfmonitor":  # start() and the checks: /one/ twice, /ten/ once
                sent["one"] += 2
                sent["ten"] += 1
        # Warm-up: both at once in the concurrent mode (as they will be measured).
        groups_of_warmups = [order] if args.mode == "concurrent" else [[n] for n in order]
        for together in groups_of_warmups:
            runs = {name: WrkRun(servers[name].base_url + VIEWS[view], seconds=args.warmup,
                                 connections=args.connections, threads=args.threads,
                                 think_ms=args.think_ms)
                    for name in together}
            for name, run in runs.items():
                warm = run.result()
                if name == "perfmonitor":
                    sent[view] += warm.requests
        if not args.no_gc_settle:  # start-up's due full collection, before the windows
            for name in order:
                for pid in children_of(servers[name].proc.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGURG)
            time.sleep(0.5)
        if args.mode == "concurrent" and not args.no_cgroups:
            for name in order:
                group = CpuGroup.create(f"perfmonitor-bench-{name}-{os.getpid()}")
                if group is None:
                    continue
                groups[name] = group
                pid = servers[name].proc.pid
                group.add([pid, *children_of(pid)])
                group.add(pg_cpu_ns(admin, names[name]))

    def stop_servers() -> None:
        for server in servers.values():
            server.stop()
        servers.clear()
        for group in groups.values():
            group.remove()
        groups.clear()

    try:
        count = args.pairs_for.get(profile, args.pairs)
        for i in range(count):
            if i % max(args.restart_every, 1) == 0:
                stop_servers()
                start_servers(i // max(args.restart_every, 1))
            order = ["bare", profile]
            rng.shuffle(order)
            if args.mode == "concurrent":
                got = window(servers, names, view, args, admin, groups, order)
            else:
                got = {name: window(servers, names, view, args, admin, groups, [name])[name]
                       for name in order}
            if "perfmonitor" in got:
                sent[view] += got["perfmonitor"]["requests"]
            b, p = got["bare"], got[profile]
            pairs.append({"bare": b, "profile": p, "first": order[0], "cgroups": bool(groups),
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
        # The unit is a block (one pair of server instances): pairs of one block share
        # their instances' own speeds, so they are not independent samples. A block's
        # ratio is the mean of its pairs'; the interval is over blocks.
        blocks: dict[int, list[dict[str, Any]]] = {}
        for p in pairs:
            blocks.setdefault(p.get("block", len(blocks)), []).append(p)
        row["blocks"] = len(blocks)
        for key in ("rps_ratio", "cpu_ratio", "p99_ratio"):
            values = [statistics.fmean(v) for v in
                      ([p[key] for p in block if p[key] is not None] for block in blocks.values())
                      if v]
            row[key] = median_ci(values)
        for key in ("rps", "cpu_us_per_request", "p99_ms", "web_us_per_request",
                    "pg_us_per_request", "monitor_pg_us_per_request", "workers_rss_mb"):
            row[f"bare_{key}"] = statistics.median(p["bare"].get(key, 0) for p in pairs)
            row[f"profile_{key}"] = statistics.median(p["profile"].get(key, 0) for p in pairs)
        row["split_us"] = cpu_split(pairs)
        row["non_2xx"] = sum(p["profile"]["non_2xx"] + p["bare"]["non_2xx"] for p in pairs)
        row["socket_errors"] = sum(p["profile"]["socket_errors"] + p["bare"]["socket_errors"]
                                   for p in pairs)
        rows.append(row)
    return rows


# Where a profile's extra CPU per request goes: (label, the part of one server's window).
SPLIT_PARTS = (
    ("serving threads", lambda w: w["web_us_per_request"] - w["background_us_per_request"]),
    ("other threads", lambda w: w["background_us_per_request"]),
    ("PG, views' backends", lambda w: w["pg_us_per_request"] - w["monitor_pg_us_per_request"]),
    ("PG, other backends", lambda w: w["monitor_pg_us_per_request"]),
    ("user", lambda w: w["user_s"] * 1e6 / w["requests"]),
    ("kernel", lambda w: w["system_s"] * 1e6 / w["requests"]),
)


def cpu_split(pairs: list[dict[str, Any]]) -> dict[str, float] | None:
    """µs per request the profile spends over bare, part by part: the median over pairs of
    profile minus bare in the same pair. "other threads" are the workers' threads besides
    the serving one (perfmonitor's flusher, sentry-sdk's transport); "PG, other
    backends" the server's PostgreSQL backends that ran no view statement (perfmonitor's
    writer connection); "user" and "kernel" split the workers' time from 10 ms ticks, so only
    their medians over many windows mean anything. None for results without the split
    (older runs)."""
    try:
        return {label: statistics.median(part(p["profile"]) - part(p["bare"]) for p in pairs)
                for label, part in SPLIT_PARTS}
    except (KeyError, ZeroDivisionError):
        return None


def split_markdown(rows: list[dict[str, Any]]) -> str:
    """The summary's CPU split as a table (empty when no row has one)."""
    rows = [r for r in rows if r.get("split_us")]
    if not rows:
        return ""
    labels = [label for label, _ in SPLIT_PARTS]
    lines = ["| view | profile | " + " | ".join(labels) + " |", "|" + "---|" * (len(labels) + 2)]
    for r in rows:
        split = r["split_us"]
        lines.append(f"| {VIEW_LABELS.get(r['view'], r['view'])} | {r['profile']} | "
                     + " | ".join(f"{split[label]:+.0f}" for label in labels) + " |")
    lines.append("")
    lines.append("CPU µs per request over bare, median over pairs of the difference in the "
                 "same pair; user and kernel are the workers' (from 10 ms ticks).")
    return "\n".join(lines)


def pooled(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The comparisons of several runs, one per profile and view, with every block
    kept apart (a run's block numbers are offset past the previous runs')."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    offset = 0
    for result in results:
        last = offset
        for c in result["comparisons"]:
            merged = out.setdefault((c["profile"], c["view"]),
                                    {"profile": c["profile"], "view": c["view"], "pairs": []})
            for i, pair in enumerate(c["pairs"]):
                block = offset + pair.get("block", i)
                merged["pairs"].append({**pair, "block": block})
                last = max(last, block + 1)
        offset = last
    return list(out.values())


def _ci(value: tuple[float, float, float]) -> str:
    return f"{value[0]:.3f} [{value[1]:.3f}, {value[2]:.3f}]"


def markdown(rows: list[dict[str, Any]], diagnostic: bool = False) -> str:
    """The summary table, and the verdicts unless perfmonitor ran with changed settings
    or a diagnostic variant (the targets are for the defaults)."""
    lines = ["| view | profile | blocks x pairs | rps (bare) | CPU µs/req (bare) | "
             "rps ratio [95% CI] | CPU/req ratio [95% CI] | p99 ratio | errors |",
             "|" + "---|" * 9]
    for r in rows:
        blocks = r.get("blocks", r["pairs"])
        lines.append(
            f"| {VIEW_LABELS.get(r['view'], r['view'])} | {r['profile']} | "
            f"{blocks} x {r['pairs'] // max(blocks, 1)} | "
            f"{r['profile_rps']:.0f} ({r['bare_rps']:.0f}) | "
            f"{r['profile_cpu_us_per_request']:.0f} ({r['bare_cpu_us_per_request']:.0f}) | "
            f"{_ci(r['rps_ratio'])} | {_ci(r['cpu_ratio'])} | {r['p99_ratio'][0]:.2f} | "
            f"{r['non_2xx'] + r['socket_errors']} |")
    lines.append("")
    lines.append("Ratios: profile / bare within each pair, averaged per block (one pair of "
                 "server instances); median over blocks, 95 % confidence interval of the median "
                 "from order statistics. Values: medians over windows.")
    if diagnostic:
        lines.append("- perfmonitor ran with changed settings or a diagnostic variant: "
                     "no verdict against the targets")
        return "\n".join(lines)
    for r in rows:
        if r["profile"] == "perfmonitor" and r["view"] in TARGETS:
            want_rps, want_cpu = TARGETS[r["view"]]
            rps, cpu = r["rps_ratio"], r["cpu_ratio"]
            lines.append(f"- {VIEW_LABELS[r['view']]} perfmonitor: rps "
                         f"{_verdict(rps, want_rps, True)}; CPU/req "
                         f"{_verdict(cpu, want_cpu, False)}")
    return "\n".join(lines)


def tables(rows: list[dict[str, Any]], diagnostic: bool = False) -> str:
    """The summary table with its verdicts, then the CPU split (where the runs have it)."""
    split = split_markdown(rows)
    return markdown(rows, diagnostic) + (f"\n\n{split}" if split else "")


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
    # Stopped with SIGTERM: unwind, so servers stop and cgroups are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.report:
        runs = [json.loads(Path(path).read_text()) for path in args.report.split(",")]
        print(tables(summarize(pooled(runs)), any(run.get("perfmonitor_settings")
                                                   or run.get("perfmonitor_diagnostic")
                                                   for run in runs)))
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
    # ... but then every process of a build shares one heap layout, and its luck with
    # it; each process draws its own instead (benchproject/settings.py), and the
    # restarts every --restart-every pairs average over them.
    if not args.no_layout_jitter:
        env["BENCH_LAYOUT_JITTER"] = "1"
    if not args.no_gc_settle:
        env["BENCH_GC_SETTLE"] = "1"
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
                              "perfmonitor_settings": os.environ.get("BENCH_PERFMONITOR_SETTINGS"),
                              "perfmonitor_diagnostic": os.environ.get("BENCH_PERFMONITOR_DIAG"),
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
        # Health rows are per process and a run's processes are new ones: the difference
        # is this run's, not what earlier runs (or in-process experiments) left behind.
        health = {name: (value or 0) - (before["health"].get(name) or 0)
                  for name, value in after["health"].items()}
        result["perfmonitor_recorded"] = {"rollup_counts": counted, "sent": sent,
                                          "health": health}
    result["summary"] = summarize(result["comparisons"])
    out_path.write_text(json.dumps(result, indent=1, default=str))
    print()
    print(tables(result["summary"], bool(result["perfmonitor_settings"]
                                         or result["perfmonitor_diagnostic"])))
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
