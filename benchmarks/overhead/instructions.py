"""Instruction count: what each monitor adds per request, in instructions, under callgrind.

    python benchmarks/overhead/instructions.py [--profiles bare,placebo,perfmonitor]

Wall-clock ratios on a shared VM drift with the host; instruction counts do not.
For each profile and view this serves the benchmark site with one gunicorn sync
worker under ``valgrind --tool=callgrind``, sends ``--warmup`` requests, then
``--segments`` segments of ``--per-flush`` requests each. Every segment ends with
``/_cg/mark/`` (benchapp/callgrind.py): the monitor writes what it buffered (its
flush is inside the segment), then callgrind dumps and zeroes the instructions of
all the worker's threads. Instructions per request = a segment's instructions /
its requests. A segment also holds one control request (the mark), the same for
every profile.

PostgreSQL runs natively, outside valgrind: its side is measured as CPU time
(``/proc/<pid>/sched``, nanoseconds) of the benchmark database's backends over
each segment, split into the request thread's connection (the views' queries)
and perfmonitor's writer connection (everything else).

Needs gcc and the valgrind headers (``valgrind/callgrind.h``). No timing, so no
benchmark lock; it takes a few minutes per profile and view.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from procstat import task_cpu_ns
from servers import VIEWS, free_port, http_get, padded_env

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
VENV_BIN = HERE / ".venv" / "bin"
PROFILES = ["bare", "placebo", "perfmonitor", "django-silk", "django-prometheus", "sentry-sdk"]
# Requests per flush: what one of the two workers serves per second (perfmonitor's
# FLUSH_INTERVAL) at full speed, so each flush carries a production-sized batch.
PER_FLUSH = {"one": 300, "ten": 100}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", default="bare,placebo,perfmonitor")
    parser.add_argument("--views", default="one,ten")
    parser.add_argument("--warmup", type=int, default=60, help="unmeasured requests first")
    parser.add_argument("--segments", type=int, default=3, help="measured segments")
    parser.add_argument("--per-flush", type=int, default=None,
                        help="requests per segment (default: 300 for one, 100 for ten)")
    parser.add_argument("--prepare", action="store_true",
                        help="recreate and seed the database first (as run.py does)")
    parser.add_argument("--keep", action="store_true", help="keep the callgrind files")
    parser.add_argument("--layouts", type=int, default=1,
                        help="serve each profile in this many heap layouts (seeded "
                             "BENCH_LAYOUT_JITTER, the same seeds for every profile) and "
                             "report the median over layouts: one layout's luck moves a "
                             "count by more than a small change does (README)")
    parser.add_argument("--split-threads", action="store_true",
                        help="count the serving thread alone (valgrind --separate-threads): "
                             "the request path without the flusher's thread")
    parser.add_argument("--cache-sim", action="store_true",
                        help="also simulate the caches: data-cache misses per request (D1, LL)")
    parser.add_argument("--report", metavar="JSON", help="print a saved result and exit")
    parser.add_argument("--paired", metavar="JSON", action="append", default=[],
                        help="with --report: a paired.py result (bare's CPU split) to "
                             "estimate CPU-per-request ratios from")
    parser.add_argument("--db-host", default="127.0.0.1")
    parser.add_argument("--db-port", default="5432")
    parser.add_argument("--db-user", default="postgres")
    parser.add_argument("--db-name", default="bench_overhead")
    args = parser.parse_args()
    args.profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    if "bare" not in args.profiles:
        args.profiles.insert(0, "bare")
    unknown = sorted(set(args.profiles) - set(PROFILES))
    if unknown:
        parser.error(f"unknown profiles {unknown}")
    args.views = [v.strip() for v in args.views.split(",") if v.strip()]
    return args


def build_library(out_dir: Path) -> Path:
    lib = out_dir / "libcgctl.so"
    source = HERE / "cgctl" / "cgctl.c"
    if not lib.exists() or lib.stat().st_mtime < source.stat().st_mtime:
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(lib), str(source)],
                       check=True)
    return lib


def backend_cpu(admin: Any, app_name: str) -> dict[int, tuple[str, int]]:
    """The server's database backends: pid -> (last statement, CPU ns)."""
    rows = admin.execute(
        "SELECT pid, query FROM pg_stat_activity "
        "WHERE application_name = %s AND backend_type = 'client backend'",
        (app_name,)).fetchall()
    return {pid: (query or "", task_cpu_ns(pid)) for pid, query in rows}


def pg_split(before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]],
             ) -> tuple[float, float]:
    """(ns of the views' connection, ns of every other connection) between two readings."""
    view = other = 0
    for pid, (query, ns) in after.items():
        used = ns - before.get(pid, ("", 0))[1]
        if "benchapp_" in query or "benchapp_" in before.get(pid, ("", 0))[0]:
            view += used
        else:
            other += used
    return view, other


def get(url: str) -> None:
    status, _ = http_get(url, timeout=600)
    if status != 200:
        raise RuntimeError(f"{url}: status {status}")


def run_profile(profile: str, view: str, args: argparse.Namespace, env: dict[str, str],
                out_dir: Path, admin: Any, layout: int | None = None) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    prefix = out_dir / f"cg-{profile}-{view}" if layout is None else \
        out_dir / f"cg-{profile}-{view}-layout{layout}"
    if layout is not None:
        # The heap (seeded objects allocated first) and the stack (the environment's
        # size moves where the stack starts; one more variable moved a count by 50 k).
        env = {**env, "BENCH_LAYOUT_JITTER": f"layout-{layout}",
               "BENCH_STACK_PAD": "x" * (8 + 56 * layout)}
    per_flush = args.per_flush or PER_FLUSH[view]
    cmd = ["valgrind", "--tool=callgrind", "--dump-instr=no",
           *(["--separate-threads=yes"] if args.split_threads else []),
           *(["--cache-sim=yes"] if args.cache_sim else []),
           f"--callgrind-out-file={prefix}.%p", str(VENV_BIN / "python"),
           str(VENV_BIN / "gunicorn"), "benchproject.wsgi:application", "--workers", "1",
           "--worker-class", "sync", "--bind", f"127.0.0.1:{port}", "--timeout", "0",
           "--log-level", "warning", "--error-logfile", str(prefix) + ".log"]
    app_name = prefix.name  # tells its backends apart (settings.py)
    proc = subprocess.Popen(cmd, cwd=HERE,
                            env=padded_env({**env, "BENCH_PROFILE": profile,
                                            "BENCH_APP_NAME": app_name},
                                           profile, app_name, str(prefix), str(prefix)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    segments: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn under valgrind exited; see {prefix}.log")
            try:
                if http_get(base + VIEWS[view], timeout=600)[0] == 200:
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        for _ in range(args.warmup):
            get(base + VIEWS[view])
        get(f"{base}/_cg/mark/?label=warmup")
        for n in range(1, args.segments + 1):
            pg0 = backend_cpu(admin, app_name)
            t0 = time.monotonic()
            for _ in range(per_flush):
                get(base + VIEWS[view])
            get(f"{base}/_cg/mark/?label=segment{n}")
            pg_view, pg_other = pg_split(pg0, backend_cpu(admin, app_name))
            segments.append({"label": f"segment{n}", "requests": per_flush,
                             "seconds": time.monotonic() - t0,
                             "pg_view_ns": pg_view, "pg_other_ns": pg_other})
            print(f"  {profile:18} {view} {'' if layout is None else f'layout {layout} '}"
                  f"segment {n}: {per_flush} requests in "
                  f"{segments[-1]['seconds']:.0f} s", flush=True)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    dumps = read_dumps(prefix)
    for seg in segments:
        threads = dumps.get(seg["label"])
        if threads is None:
            raise RuntimeError(f"no callgrind dump for {seg['label']} of {profile} {view}")
        ir = sum(events["Ir"] for events in threads.values())
        seg["instructions"] = ir
        seg["ir_per_request"] = ir / seg["requests"]
        seg["events_per_request"] = {
            name: sum(events.get(name, 0) for events in threads.values()) / seg["requests"]
            for name in threads[min(threads)]}
        if args.split_threads:  # a client request dumps its own thread: the serving one
            serving = threads.get(1, {})
            seg["serving_ir_per_request"] = serving.get("Ir", 0) / seg["requests"]
            seg["serving_events_per_request"] = {
                name: count / seg["requests"] for name, count in serving.items()}
        seg["pg_view_us_per_request"] = seg["pg_view_ns"] / 1000 / seg["requests"]
        seg["pg_other_us_per_request"] = seg["pg_other_ns"] / 1000 / seg["requests"]
    if not args.keep:
        for path in out_dir.glob(prefix.name + ".*"):
            if not path.name.endswith(".log"):
                path.unlink()
    return {"profile": profile, "view": view, "layout": layout, "per_flush": per_flush,
            "segments": segments}


_DESC = re.compile(r"^desc: Trigger: Client Request: (.*)$", re.M)
_SUMMARY = re.compile(r"^summary: ([\d ]+)$", re.M)
_EVENTS = re.compile(r"^events: (.*)$", re.M)
_THREAD = re.compile(r"^thread: (\d+)$", re.M)


def read_dumps(prefix: Path) -> dict[str, dict[int, dict[str, int]]]:
    """label -> {thread: {event: count}}, from the worker's client-request dumps (one file
    per dump, or per dump and thread with --separate-threads; thread 0: all of them).
    The events are ``Ir`` (instructions), plus the cache simulator's with --cache-sim."""
    out: dict[str, dict[int, dict[str, int]]] = {}
    for path in prefix.parent.glob(prefix.name + ".*"):
        if path.name.endswith(".log"):
            continue
        text = path.read_text(errors="replace")
        head = text[:4000]
        label, total, thread = _DESC.search(head), _SUMMARY.search(text), _THREAD.search(head)
        names = _EVENTS.search(head)
        if label and total:
            threads = out.setdefault(label.group(1).strip(), {})
            counts = [int(v) for v in total.group(1).split()]
            keys = names.group(1).split() if names else ["Ir"]
            threads[int(thread.group(1)) if thread else 0] = dict(zip(keys, counts, strict=False))
    return out


def _over_layouts(runs: list[dict[str, Any]], value: Any) -> tuple[float, float, float]:
    """(median over layouts of each layout's median over its segments, min and max over
    every segment): with one layout, the median and spread of its segments."""
    per_layout = [statistics.median(value(s) for s in r["segments"]) for r in runs]
    every = [value(s) for r in runs for s in r["segments"]]
    return statistics.median(per_layout), min(every), max(every)


def summarize(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["profile"], r["view"]), []).append(r)
    rows = []
    for (profile, view), runs in groups.items():
        ir, ir_min, ir_max = _over_layouts(runs, lambda s: s["ir_per_request"])
        bare = groups.get(("bare", view))
        base = _over_layouts(bare, lambda s: s["ir_per_request"])[0] if bare else None
        rows.append({
            "profile": profile, "view": view, "layouts": len(runs),
            "segments": sum(len(r["segments"]) for r in runs),
            "ir_per_request": ir, "ir_min": ir_min, "ir_max": ir_max,
            "ir_ratio": ir / base if base else None,
            "ir_ratio_min": ir_min / base if base else None,
            "ir_ratio_max": ir_max / base if base else None,
            "pg_view_us_per_request": _over_layouts(
                runs, lambda s: s["pg_view_us_per_request"])[0],
            "pg_other_us_per_request": _over_layouts(
                runs, lambda s: s["pg_other_us_per_request"])[0],
        })
        first = runs[0]["segments"][0]
        if "serving_ir_per_request" in first:
            rows[-1]["serving_ir_per_request"] = _over_layouts(
                runs, lambda s: s["serving_ir_per_request"])[0]
        for scope in ("events_per_request", "serving_events_per_request"):
            if first.get(scope, {}).get("D1mr") is not None:
                # data-cache misses (reads + writes), first level and last level
                rows[-1][scope.replace("events", "d1_misses")] = _over_layouts(
                    runs, lambda s, scope=scope: s[scope]["D1mr"] + s[scope]["D1mw"])[0]
                rows[-1][scope.replace("events", "ll_misses")] = _over_layouts(
                    runs, lambda s, scope=scope: s[scope]["DLmr"] + s[scope]["DLmw"])[0]
    return rows


def _runs(row: dict[str, Any]) -> str:
    layouts = row.get("layouts", 1)
    return f"{layouts} x {row['segments'] // layouts}"


def markdown(rows: list[dict[str, Any]]) -> str:
    if any("d1_misses_per_request" in r for r in rows):
        return markdown_caches(rows)
    lines = ["| view | profile | layouts x segments | instructions / request | "
             "ratio to bare (segments min-max) | PostgreSQL: views' connection µs/req | "
             "other connections µs/req |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = (f"{r['ir_ratio']:.4f} ({r['ir_ratio_min']:.4f}-{r['ir_ratio_max']:.4f})"
                 if r["ir_ratio"] else "-")
        lines.append(f"| {r['view']} | {r['profile']} | {_runs(r)} | "
                     f"{r['ir_per_request'] / 1e6:.3f} M | "
                     f"{ratio} | {r['pg_view_us_per_request']:.0f} | "
                     f"{r['pg_other_us_per_request']:.1f} |")
    return "\n".join(lines)


def markdown_caches(rows: list[dict[str, Any]]) -> str:
    """The table with the cache simulator's data misses (all threads; serving thread)."""
    lines = ["| view | profile | layouts x segments | instructions / request | ratio to bare | "
             "D1 data misses / request | LL data misses / request | serving thread: "
             "instructions, D1, LL misses / request |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['ir_ratio']:.4f}" if r["ir_ratio"] else "-"
        serving = (f"{r['serving_ir_per_request'] / 1e6:.3f} M, "
                   f"{r['serving_d1_misses_per_request']:.0f}, "
                   f"{r['serving_ll_misses_per_request']:.0f}"
                   if "serving_d1_misses_per_request" in r else "-")
        lines.append(f"| {r['view']} | {r['profile']} | {_runs(r)} | "
                     f"{r['ir_per_request'] / 1e6:.3f} M | "
                     f"{ratio} | {r.get('d1_misses_per_request', 0):.0f} | "
                     f"{r.get('ll_misses_per_request', 0):.0f} | {serving} |")
    return "\n".join(lines)


def estimate(rows: list[dict[str, Any]], paired: list[dict[str, Any]]) -> str:
    """CPU-per-request ratio from instructions: 1 + (web_bare (I - 1) + pg_monitor) / cpu_bare.

    bare's gunicorn and total CPU per request come from paired.py (median over its
    bare windows); pg_monitor is the profile's writer connection time per request
    measured here.
    """
    bare: dict[str, dict[str, list[float]]] = {}
    for result in paired:
        for c in result["comparisons"]:
            split = bare.setdefault(c["view"], {"web": [], "cpu": []})
            for pair in c["pairs"]:
                split["web"].append(pair["bare"]["web_us_per_request"])
                split["cpu"].append(pair["bare"]["cpu_us_per_request"])
    lines = ["| view | profile | instruction ratio | bare web / total µs/req | "
             "monitor's PostgreSQL µs/req | estimated CPU/req ratio |", "|---|---|---|---|---|---|"]
    for r in rows:
        split = bare.get(r["view"])
        if not split or r["ir_ratio"] is None or r["profile"] == "bare":
            continue
        web, cpu = statistics.median(split["web"]), statistics.median(split["cpu"])
        extra = web * (r["ir_ratio"] - 1) + r["pg_other_us_per_request"]
        lines.append(f"| {r['view']} | {r['profile']} | {r['ir_ratio']:.4f} | "
                     f"{web:.0f} / {cpu:.0f} | {r['pg_other_us_per_request']:.1f} | "
                     f"{1 + extra / cpu:.3f} |")
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    if args.report:
        rows = []
        for path in args.report.split(","):
            rows += summarize(json.loads(Path(path).read_text())["results"])
        print(markdown(rows))
        if args.paired:
            print()
            print(estimate(rows, [json.loads(Path(p).read_text()) for p in args.paired]))
        return
    if Path(sys.prefix).resolve() != (HERE / ".venv").resolve():
        from run import ensure_venv

        ensure_venv()
        python = str(VENV_BIN / "python")
        os.execv(python, [python, str(Path(__file__).resolve()), *sys.argv[1:]])
    import psycopg
    from run import base_env, environment, prepare_database

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = RESULTS / f"callgrind-{stamp}"
    out_dir.mkdir(parents=True)
    env = base_env(args)
    env.update(BENCH_CALLGRIND_LIB=str(build_library(out_dir)), PYTHONHASHSEED="0")
    admin = psycopg.connect(host=args.db_host, port=args.db_port, user=args.db_user,
                            dbname="postgres", autocommit=True)
    if args.prepare:  # every profile's tables, so later runs may pick any profile
        prepare_database(argparse.Namespace(**{**vars(args), "profiles": PROFILES}), admin, env)
    config = {k: v for k, v in vars(args).items()}
    result: dict[str, Any] = {"config": config, "environment": environment(args),
                              "started": stamp, "results": []}
    out_path = RESULTS / f"instructions-{stamp}.json"
    layouts: list[int | None] = list(range(args.layouts)) if args.layouts > 1 else [None]
    for view in args.views:
        for layout in layouts:  # profiles interleaved, layout by layout
            for profile in args.profiles:
                result["results"].append(run_profile(profile, view, args, env, out_dir, admin,
                                                     layout))
                out_path.write_text(json.dumps(result, indent=1, default=str))
    result["summary"] = summarize(result["results"])
    out_path.write_text(json.dumps(result, indent=1, default=str))
    print()
    print(markdown(result["summary"]))
    print(f"\nresults: {out_path}")


if __name__ == "__main__":
    main()
