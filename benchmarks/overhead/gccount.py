"""Garbage collections a request brings on, in one process: bare, capture off, capture on.

    benchmarks/overhead/.venv/bin/python benchmarks/overhead/gccount.py
        [--views one,ten] [--requests 2000] [--tree /path/to/other/checkout]

A young collection runs in whichever thread allocates past the threshold, so in a
server the collections a thread runs mix what its requests allocate with what other
threads (a flusher) and start-up (imports) left. This separates the request path:
it serves the benchmark site's WSGI handler in-process (Django's test client), each
variant in a process of its own, warms it, then counts with ``gc.callbacks`` the
collections of each generation while ``--requests`` requests are served:

- ``bare``: the benchmark site without perfmonitor;
- ``disabled``: perfmonitor installed, ``ENABLED`` off;
- ``capture``: perfmonitor at its defaults but for the flusher thread (off, so that
  only the request path allocates; the buffer is emptied every 200 requests).

Counts, not times: they are the same from run to run within a collection or two, on
a busy machine as on a quiet one. Needs the benchmark database (``paired.py``
prepares it).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from coldpath import LABELS, empty_buffer

HERE = Path(__file__).resolve().parent
VARIANTS = ("bare", "disabled", "capture")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", default="one,ten")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--tree", default="", help="serve perfmonitor from this checkout")
    parser.add_argument("--variant", default="", help=argparse.SUPPRESS)  # one child's
    parser.add_argument("--view", default="", help=argparse.SUPPRESS)
    return parser.parse_args()


def count(args: argparse.Namespace) -> dict[str, int]:
    """In a child process: serve the requests of one variant and view, count collections."""
    settings: dict[str, Any] = {"BACKGROUND_FLUSH": False}
    if args.variant == "disabled":
        settings["ENABLED"] = False
    if args.tree:
        os.environ["BENCH_PERFMONITOR_TREE"] = args.tree
    os.environ.update(DJANGO_SETTINGS_MODULE="benchproject.settings",
                      BENCH_PROFILE="bare" if args.variant == "bare" else "perfmonitor",
                      BENCH_PERFMONITOR_SETTINGS=json.dumps(settings))
    sys.path.insert(0, str(HERE))
    import django

    django.setup()
    from django.test import Client
    from servers import VIEWS

    if args.variant == "capture":  # what a flush takes, dropped: the buffer never fills
        from perfmonitor.capture.buffer import buffer

        def empty() -> None:
            empty_buffer(buffer)
    else:
        def empty() -> None:
            pass

    client = Client(HTTP_HOST="127.0.0.1")
    path = VIEWS[args.view]
    for _ in range(args.warmup):
        if client.get(path).status_code != 200:
            raise SystemExit(f"{path} did not answer 200")
    empty()
    gc.collect()
    counts = [0, 0, 0]

    def counted(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            counts[info["generation"]] += 1

    gc.callbacks.append(counted)
    for n in range(args.requests):
        client.get(path)
        if n % 200 == 199:
            empty()
    gc.callbacks.remove(counted)
    return {"young": counts[0], "middle": counts[1], "full": counts[2]}


def main() -> None:
    args = parse_args()
    if args.variant:
        print(json.dumps(count(args)))
        return
    if Path(sys.prefix).resolve() != (HERE / ".venv").resolve():
        from run import ensure_venv

        ensure_venv()
    python = str(HERE / ".venv" / "bin" / "python")
    print(f"collections per 1,000 requests ({args.requests} requests after {args.warmup} "
          "warm-up, each variant in its own process)\n")
    print("| view | variant | young | middle | full |")
    print("|---|---|---|---|---|")
    for view in [v.strip() for v in args.views.split(",") if v.strip()]:
        for variant in VARIANTS:
            out = subprocess.run(
                [python, str(Path(__file__).resolve()), "--variant", variant, "--view", view,
                 "--requests", str(args.requests), "--warmup", str(args.warmup),
                 "--tree", args.tree],
                check=True, capture_output=True, text=True).stdout
            counts = json.loads(out.strip().splitlines()[-1])
            per = [counts[g] * 1000 / args.requests for g in ("young", "middle", "full")]
            print(f"| {LABELS[view]} | {variant} | " + " | ".join(f"{v:.1f}" for v in per) + " |")


if __name__ == "__main__":
    main()
