"""Per-function difference between two callgrind dumps (``instructions.py --keep``).

    python3 benchmarks/overhead/cgdiff.py BASE.dump OTHER.dump [--requests N] [--sort ir|d1]

Prints, per function, what OTHER spends more than BASE per request: instructions
(``Ir``) and, for dumps made with ``--cache-sim``, first-level data-cache misses
(``D1mr + D1mw``) and last-level misses, instruction and data (``ILmr + DLmr + DLmw``:
with ``footprint.py``'s emptied cache, the lines a request fetches from memory). Costs are
exclusive (the function's own, not its callees').
Compare segment dumps of the same view and thread, e.g. bare's and perfmonitor's
``cg-<profile>-ten.<pid>.<thread>-<part>`` files from two ``--split-threads`` runs.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict

_NAME = re.compile(r"(c?fn)=\((\d+)\)(?: (.*))?")


def exclusive_costs(path: str) -> tuple[list[str], dict[str, list[int]]]:
    """(event names, function -> exclusive cost per event) of one callgrind dump."""
    names: dict[str, str] = {}
    costs: dict[str, list[int]] = defaultdict(lambda: [0] * 16)
    events: list[str] = []
    function = ""
    after_call = False
    with open(path, errors="replace") as handle:
        for line in handle:
            if line.startswith("events:"):
                events = line.split()[1:]
                continue
            match = _NAME.match(line)
            if match:
                kind, ident, name = match.groups()
                if name:
                    names[ident] = name
                if kind == "fn":
                    function = names.get(ident, ident)
                continue
            if line.startswith("calls="):
                after_call = True  # the next cost line is the call's inclusive cost
                continue
            if line[:1].isdigit() or line[:1] in "+-*":
                if after_call:
                    after_call = False
                    continue
                row = costs[function]
                for i, value in enumerate(line.split()[1:]):
                    row[i] += int(value)
    return events, costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base")
    parser.add_argument("other")
    parser.add_argument("--requests", type=float, default=100.0,
                        help="requests in each segment (instructions.py: 100 on /ten/)")
    parser.add_argument("--sort", choices=("ir", "d1", "ll"), default="d1")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    events, base = exclusive_costs(args.base)
    _, other = exclusive_costs(args.other)
    ir = events.index("Ir")
    d1 = [events.index(e) for e in ("D1mr", "D1mw") if e in events]
    ll = [events.index(e) for e in ("ILmr", "DLmr", "DLmw") if e in events]
    rows = []
    for function in set(base) | set(other):
        b, o = base.get(function, [0] * 16), other.get(function, [0] * 16)
        rows.append((o[ir] - b[ir], sum(o[i] - b[i] for i in d1),
                     sum(o[i] - b[i] for i in ll), function))
    column = {"ir": 0, "d1": 1 if d1 else 0, "ll": 2 if ll else 0}[args.sort]
    rows.sort(key=lambda r: r[column], reverse=True)
    n = args.requests
    print(f"per request: instructions {sum(r[0] for r in rows) / n:+.0f}"
          + (f", D1 data misses {sum(r[1] for r in rows) / n:+.0f}" if d1 else "")
          + (f", last-level misses {sum(r[2] for r in rows) / n:+.0f}" if ll else ""))
    print(f"{'Ir':>9} {'D1 miss':>8} {'LL miss':>8}  function")
    for extra_ir, extra_d1, extra_ll, function in rows[:args.top]:
        print(f"{extra_ir / n:+9.0f} {extra_d1 / n:+8.0f} {extra_ll / n:+8.0f}  {function[:100]}")


if __name__ == "__main__":
    main()
