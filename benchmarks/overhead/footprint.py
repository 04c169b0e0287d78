"""Cold footprint of capture, under callgrind: the cache lines a cold request touches.

    benchmarks/overhead/.venv/bin/python benchmarks/overhead/footprint.py
        [--views one,ten] [--requests 40] [--tree /path/to/other/checkout]

``coldpath.py`` times requests that start with cold caches; on this machine its
medians move by several microseconds from run to run. This counts instead. It
serves the benchmark site's WSGI handler in one process under ``valgrind
--tool=callgrind`` with a simulated cache whose last level is one core's L2 (1 MB),
reads ``--evict-mb`` of memory before every request (not counted), and counts only
the requests themselves (callgrind's collection switched on around each handler
call, ``cgctl.c``). Per request it reports instructions, first-level data misses
and **last-level misses** (instruction and data): with the cache emptied before
each request, these are the distinct cache lines the request touches, which a
worker on a busy host fetches from memory. Variants as in ``coldpath.py``:
``capture``, ``disabled`` (``ENABLED`` off, the query hook installed), ``bare``
(no hook) and ``passthrough`` (as ``bare``, with ``operator.call`` as the execute
wrapper: what Django's wrapper machinery costs with a wrapper that does nothing),
each in its own process; ``--variants`` picks them (the first three by default).
The process layout moves the counts (by up to ±100 lines on the 1-query view, and
up to ±150 on the 10-query view, mostly through the interpreter's type attribute
cache, whose slots depend on where names lie in memory): ``--layouts N`` serves
each variant in N seeded heap layouts (``BENCH_LAYOUT_JITTER``, the same seeds as
``instructions.py``) with the environment padded to one size
(``servers.padded_env``), and reports medians.

Counts are deterministic for one build, environment and input, so two commits can
be compared in two runs (``--tree``). Needs gcc and valgrind's headers; no timing,
so no benchmark lock.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = ("capture", "disabled", "bare", "passthrough")
LABELS = {"one": "1-query", "ten": "10-query"}
EVENTS = ("Ir", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", default="one,ten")
    parser.add_argument("--requests", type=int, default=40, help="counted requests per run")
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--evict-mb", type=int, default=8)
    parser.add_argument("--layouts", type=int, default=2,
                        help="runs per variant, each in its own seeded heap layout")
    parser.add_argument("--tree", help="serve perfmonitor from this checkout")
    parser.add_argument("--variants", default="capture,disabled,bare")
    parser.add_argument("--keep", metavar="DIR", help="keep the callgrind files here "
                        "(for cgdiff.py; divide by --requests)")
    parser.add_argument("--serve", nargs=2, metavar=("VARIANT", "VIEW"), help=argparse.SUPPRESS)
    return parser.parse_args()


def serve(args: argparse.Namespace) -> None:
    """Inside valgrind: warm up, then count --requests cold requests of one variant."""
    import ctypes

    variant, view = args.serve
    os.environ["BENCH_PROFILE"] = "perfmonitor"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproject.settings")
    sys.path.insert(0, str(HERE))
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.test.client import RequestFactory
    from servers import VIEWS

    from perfmonitor import conf
    from perfmonitor.capture import buffer as buffer_module
    from perfmonitor.capture import query_hook
    from perfmonitor.conf import settings as monitor_settings

    lib = ctypes.CDLL(os.environ["BENCH_CALLGRIND_LIB"])
    handler = WSGIHandler()
    evict = bytearray(args.evict_mb << 20)
    environ = RequestFactory().get(VIEWS[view], HTTP_HOST="127.0.0.1").environ

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        pass

    for _ in range(args.warmup):  # with capture on: every path of it has run
        handler(dict(environ), start_response).close()
    buffer_module.buffer.stop()
    monitor_settings.__dict__["ENABLED"] = variant == "capture"
    hot = getattr(conf, "request_path", None)  # (not in older checkouts)
    if hot is not None:
        hot.loaded = False
    if variant in ("bare", "passthrough"):
        connection.execute_wrappers.remove(query_hook.query_timer)
    if variant == "passthrough":  # what any execute wrapper costs: Django's part of the hook
        import operator

        connection.execute_wrappers.append(operator.call)
    for _ in range(5):
        handler(dict(environ), start_response).close()
    for _ in range(args.requests):
        bytes(evict)
        request_environ = dict(environ)
        lib.cg_toggle()
        handler(request_environ, start_response).close()
        lib.cg_toggle()


def totals(path: Path) -> dict[str, int]:
    events: list[str] = []
    for line in path.read_text().splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith(("summary:", "totals:")):
            return dict(zip(events, (int(v) for v in line.split()[1:]), strict=False))
    raise RuntimeError(f"no totals in {path}")


def run(args: argparse.Namespace, variant: str, view: str, layout: int, lib: Path,
        out_dir: Path) -> dict[str, int]:
    out = out_dir / f"cg-{view}-{variant}-{layout}.out"
    from servers import padded_env

    env = dict(os.environ, BENCH_CALLGRIND_LIB=str(lib), PYTHONHASHSEED="0",
               BENCH_LAYOUT_JITTER=f"layout-{layout}")
    if args.tree:
        env["BENCH_PERFMONITOR_TREE"] = args.tree
    env = padded_env(env, args.tree or "")
    command = ["valgrind", "--tool=callgrind", "--collect-atstart=no", "--cache-sim=yes",
               "--LL=1048576,16,64", f"--callgrind-out-file={out}",
               sys.executable, __file__, "--requests", str(args.requests),
               "--warmup", str(args.warmup), "--evict-mb", str(args.evict_mb),
               "--serve", variant, view]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return totals(out)


def main() -> None:
    args = parse_args()
    if args.serve:
        serve(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(args.keep or tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        lib = out_dir / "libcgctl.so"
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(lib),
                        str(HERE / "cgctl" / "cgctl.c")], check=True)
        results: dict[str, dict[str, list[dict[str, float]]]] = {}
        for view in [v.strip() for v in args.views.split(",") if v.strip()]:
            results[view] = {}
            for variant in [v for v in VARIANTS if v in args.variants.split(",")]:
                runs = []
                for layout in range(args.layouts):
                    counts = run(args, variant, view, layout, lib, out_dir)
                    runs.append({k: counts.get(k, 0) / args.requests for k in EVENTS})
                results[view][variant] = runs
    print(f"perfmonitor from {args.tree or 'this checkout'}; {args.requests} requests per run, "
          f"{args.evict_mb} MB read before each; medians over {args.layouts} layouts")
    for view, variants in results.items():
        print(f"\n{LABELS.get(view, view)} view, per request")
        print("| variant | instructions | D1 misses | LL misses (lines from memory) "
              "| over bare: instructions, LL misses |")
        print("|---|---|---|---|---|")
        base = variants.get("bare") or next(iter(variants.values()))
        for variant, runs in variants.items():
            ir = statistics.median(r["Ir"] for r in runs)
            d1 = statistics.median(r["D1mr"] + r["D1mw"] for r in runs)
            ll = statistics.median(r["ILmr"] + r["DLmr"] + r["DLmw"] for r in runs)
            ir0 = statistics.median(r["Ir"] for r in base)
            ll0 = statistics.median(r["ILmr"] + r["DLmr"] + r["DLmw"] for r in base)
            print(f"| {variant} | {ir:,.0f} | {d1:,.0f} | {ll:,.0f} | "
                  f"{ir - ir0:+,.0f}, {ll - ll0:+,.0f} |")
    print("\n" + json.dumps(results))


if __name__ == "__main__":
    main()
