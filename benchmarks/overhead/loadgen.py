"""Drive a URL with Debian's wrk (a separate process) and parse its report."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent / "report.lua"


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int  # responses with status >= 400, wrk's definition
    socket_errors: int  # connect, read, write errors and timeouts
    wrk_cpu_s: float  # the load generator's own CPU, for the machine-load bookkeeping


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    return path


class WrkRun:
    """A wrk process started in the background; ``result()`` waits for its report."""

    def __init__(self, url: str, *, seconds: float, connections: int, threads: int,
                 think_ms: float = 0.0) -> None:
        """``think_ms``: each connection pauses this long after a response before its next
        request (report.lua's ``delay``), so the server runs below saturation."""
        self.seconds = seconds
        self.before = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.proc = subprocess.Popen(
            [wrk_path(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
             "--timeout", "10s", "-s", str(LUA), url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "WRK_THINK_MS": str(int(think_ms))},
        )

    def result(self) -> LoadResult:
        try:
            stdout, stderr = self.proc.communicate(timeout=self.seconds + 60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        # Children's rusage: with two runs at once, each sees both (bookkeeping only).
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        line = next((ln for ln in stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
        if self.proc.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({self.proc.returncode}): {stderr or stdout}")
        data = json.loads(line.removeprefix("WRK_JSON "))
        errors = data["errors"]
        secs = data["duration_us"] / 1e6
        lat = data["latency_us"]
        before = self.before
        return LoadResult(
            requests=data["requests"], seconds=secs, rps=data["requests"] / secs,
            p50_ms=lat["p50"] / 1000, p90_ms=lat["p90"] / 1000, p99_ms=lat["p99"] / 1000,
            max_ms=lat["max"] / 1000, non_2xx=errors["status"],
            socket_errors=errors["connect"] + errors["read"] + errors["write"]
            + errors["timeout"],
            wrk_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        )


def run_wrk(url: str, *, seconds: float, connections: int, threads: int,
            think_ms: float = 0.0) -> LoadResult:
    return WrkRun(url, seconds=seconds, connections=connections, threads=threads,
                  think_ms=think_ms).result()
