"""Diagnostics: how much cyclic garbage collection each thread of a server pays.

Set ``BENCH_GC_STATS`` to a directory (any profile; ``benchapp.apps`` installs it when
Django starts): every process then counts, per thread and generation, the collections
it ran and their CPU time (the thread's CPU clock around each collection), and writes
``gc-<pid>.json`` there when it exits and whenever its totals are asked for with
SIGUSR2. A collection runs in whichever thread allocates past the threshold, and it
visits every young object, whoever made it: so a flusher that holds many objects
while request threads allocate makes them pay for collections it caused.

With ``BENCH_GC_PROMOTED=1`` it also names what each middle-generation collection
moved into the oldest generation (by type; a tuple by its length and first item's
type), which is what makes full collections come: slow (it lists the oldest
generation after each such collection), for finding the cause only.
"""

from __future__ import annotations

import atexit
import collections
import gc
import json
import os
import signal
import threading
import time
from typing import Any

_started: dict[int, int] = {}
# (thread name, generation) -> [collections, ns, objects collected]
_totals: dict[tuple[str, int], list[int]] = {}
_promoted: collections.Counter[str] = collections.Counter()
_known: set[int] = set()
_track_promotions = False


def _kind(obj: Any) -> str:
    if type(obj) is tuple:
        first = type(obj[0]).__name__ if obj else "-"
        return f"tuple[{len(obj)}, {first}]"
    if type(obj) is list:
        return f"list[{type(obj[0]).__name__ if obj else '-'}]"
    return type(obj).__name__


def _note_promotions(generation: int) -> None:
    global _known
    if generation == 0:
        return
    oldest = gc.get_objects(2)
    if generation == 1 and _known:
        _promoted.update(_kind(obj) for obj in oldest if id(obj) not in _known)
    _known = {id(obj) for obj in oldest}


def _callback(phase: str, info: dict[str, Any]) -> None:
    ident = threading.get_ident()
    if phase == "start":
        _started[ident] = time.thread_time_ns()
        return
    began = _started.pop(ident, None)
    if began is None:
        return
    thread = threading.current_thread()
    name = "main" if thread is threading.main_thread() else thread.name
    slot = _totals.setdefault((name, info["generation"]), [0, 0, 0])
    slot[0] += 1
    slot[1] += time.thread_time_ns() - began
    slot[2] += info["collected"]
    if _track_promotions:
        _note_promotions(info["generation"])


def snapshot() -> dict[str, Any]:
    return {"pid": os.getpid(), "at": time.time(),
            "totals": [[name, gen, *slot] for (name, gen), slot in sorted(_totals.items())],
            "promoted": _promoted.most_common(40)}


def _write(directory: str) -> None:
    path = os.path.join(directory, f"gc-{os.getpid()}.json")
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(snapshot(), handle)
    os.replace(path + ".tmp", path)


def install(directory: str) -> None:
    global _track_promotions
    _track_promotions = os.environ.get("BENCH_GC_PROMOTED") == "1"
    os.makedirs(directory, exist_ok=True)
    gc.callbacks.append(_callback)
    atexit.register(_write, directory)
    signal.signal(signal.SIGUSR2, lambda *_: _write(directory))


def install_from_environment() -> None:
    directory = os.environ.get("BENCH_GC_STATS")
    if directory:
        install(directory)
