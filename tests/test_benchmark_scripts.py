"""Every benchmark script still runs: a rename in perfmonitor cannot break one unnoticed.

Each script starts as its docstring says (``python -m benchmarks...``) with tiny sizes,
on a database of its own that is dropped afterwards, and must exit 0 with its table.
The numbers mean nothing here. Scripts that need PostgreSQL run in the PostgreSQL pass;
``--help`` checks every script's imports in both passes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["alerting.generate", "alerting.bench_rules", "analytics.generate",
           "analytics.bench_summary", "dashboard.bench_overview", "journeys.bench_tracker",
           "flusher.run", "collect.run", "query_hook.run"]


# script: (arguments, the data set it reads, a line of its output)
BENCHMARKS = {
    "analytics.bench_summary": (["--rounds", "1"], "analytics", "summary 24h: median"),
    "dashboard.bench_overview": (["--rounds", "1"], "analytics", "overview 24h (default)"),
    "alerting.bench_rules": (["--rounds", "1"], "alerting", "evaluate_rules, steady state"),
    "journeys.bench_tracker": (["--rounds", "1", "--calls", "5"], None,
                               "two processes, one journey"),
    "flusher.run": (["--rounds", "1", "--records", "100"], None,
                    "| records | SAMPLE_RATE | rows/record | writer |"),
    "collect.run": (["--no-http", "--rounds", "1", "--events", "100"], None,
                    "| in process: flusher, expand + COPY rows + rollups |"),
}


def run(script: str, *args: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{script}", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, \
        f"{script} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def postgres_url(name: str) -> str:
    """A database on the server this test run uses."""
    s = connection.settings_dict
    user = s["USER"] or "postgres"
    auth = f"{user}:{s['PASSWORD']}" if s["PASSWORD"] else user
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{name}"


@pytest.fixture(scope="module")
def bench_env(tmp_path_factory: pytest.TempPathFactory,
              ) -> Iterator[Callable[[str | None], dict[str, str]]]:
    """env(database) -> a script's environment: its own settings module, results in a
    temporary directory, and ``database`` (created by the script) dropped at the end."""
    tmp = tmp_path_factory.mktemp("bench")
    created: list[str] = []

    def env(database: str | None = None) -> dict[str, str]:
        # The scripts choose their settings module; the test run's would win over it.
        values = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        values.update(BENCH_RESULTS=str(tmp / "results"), BENCH_CACHE="locmem")
        if database:
            name = f"perfmonitor_smoke_{os.getpid()}_{database}"
            created.append(name)
            values.update(BENCH_DATABASE_URL=postgres_url(name),
                          BENCH_STATE_FILE=str(tmp / f"{database}.json"))
        return values

    yield env
    if created:
        import psycopg

        with psycopg.connect(postgres_url("postgres"), autocommit=True) as conn:
            for name in created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def analytics_data(bench_env) -> tuple[dict[str, str], str]:
    env = bench_env("analytics")
    return env, run("analytics.generate", "--events", "2000", env=env)


@pytest.fixture(scope="module")
def alerting_data(bench_env) -> tuple[dict[str, str], str]:
    env = bench_env("alerting")
    return env, run("alerting.generate", "--events", "2000", env=env)


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_starts(script, bench_env):
    assert "usage:" in run(script, "--help", env=bench_env())


@pytest.mark.postgres
@pytest.mark.parametrize("data", ["analytics", "alerting"])
def test_generator_writes_its_data_set(data, request):
    env, output = request.getfixturevalue(f"{data}_data")
    assert "rollup rows for" in output
    assert Path(env["BENCH_STATE_FILE"]).exists()


@pytest.mark.postgres
@pytest.mark.parametrize("script", BENCHMARKS)
def test_benchmark_runs(script, bench_env, request):
    args, data, expected = BENCHMARKS[script]
    if data:
        env, _ = request.getfixturevalue(f"{data}_data")
    else:
        env = bench_env(script.split(".")[0])
    assert expected in run(script, *args, env=env)


@pytest.mark.postgres
def test_collect_benchmark_over_http(bench_env):
    if shutil.which("wrk") is None:
        pytest.skip("wrk not installed: the collect benchmark's HTTP measurements need it")
    # The bulk_create view over HTTP would double the time: urls.py imports it, that will do.
    output = run("collect.run", "--servers", "gunicorn", "--no-http-baseline", "--rounds", "1",
                 "--seconds", "1", "--workers", "1", "--threads", "1", "--connections", "1",
                 "--events", "100", env=bench_env("collect_http"))
    assert "| gunicorn 1x1: end to end, posted -> events in PostgreSQL" in output


def test_query_hook_benchmark(bench_env):
    postgres = connection.vendor == "postgresql"
    url = postgres_url(connection.settings_dict["NAME"]) if postgres else ""  # "": SQLite only
    output = run("query_hook.run", "--rounds", "1", "--sqlite-queries", "20",
                 "--postgres-queries", "20", "--postgres-url", url, env=bench_env())
    assert "backend    variant        us/query" in output
    assert "sqlite     request" in output
    assert ("postgres   request" in output) is postgres


def _window(requests: int, web: float, background: float, pg: float, monitor_pg: float,
            user_s: float, system_s: float) -> dict[str, float]:
    return {"requests": requests, "rps": requests / 3, "p99_ms": 10.0, "non_2xx": 0,
            "socket_errors": 0, "cpu_us_per_request": web + pg, "web_us_per_request": web,
            "pg_us_per_request": pg, "monitor_pg_us_per_request": monitor_pg,
            "background_us_per_request": background, "user_s": user_s, "system_s": system_s,
            "workers_rss_mb": 100.0}


def test_overhead_report_pools_runs_and_splits_the_cpu(tmp_path):
    """``paired.py --report``: ratios per block, pooled over runs, and where the CPU went."""
    def pair(block: int, extra_serving: float) -> dict:
        bare = _window(1000, 5000.0, 0.0, 1300.0, 0.0, 4.6, 0.4)
        profile = _window(1000, 5000.0 + extra_serving + 30.0, 30.0, 1310.0, 9.0,
                          4.6 + extra_serving / 1000, 0.4)
        cpu = profile["cpu_us_per_request"] / bare["cpu_us_per_request"]
        return {"bare": bare, "profile": profile, "block": block, "rps_ratio": 1.0,
                "cpu_ratio": cpu, "p99_ratio": 1.0}

    runs = []
    for n, extras in enumerate(([100.0, 140.0, 120.0, 120.0], [200.0, 200.0])):
        pairs = [pair(i // 2, extra) for i, extra in enumerate(extras)]
        path = tmp_path / f"run{n}.json"
        path.write_text(json.dumps({"comparisons": [
            {"profile": "perfmonitor", "view": "ten", "pairs": pairs, "problems": []}]}))
        runs.append(str(path))
    done = subprocess.run([sys.executable, "benchmarks/overhead/paired.py", "--report",
                           ",".join(runs)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # Three blocks (two from the first run, one from the second), each its pairs' mean:
    # extra serving time 120, 120 and 200 µs. The median block: that, the flusher's 30 and
    # PostgreSQL's 10 more (the writer's 9 included) over bare's 6300.
    row = next(line for line in lines if line.startswith("| 10-query | perfmonitor | 3 x 2"))
    assert f"| {(6300 + 120 + 30 + 10) / 6300:.3f} [" in row
    assert "CPU/req x" in done.stdout and "vs <= 1.02: not met" in done.stdout
    split = next(line for line in lines
                 if line.startswith("| 10-query | perfmonitor | +") and "x" not in line)
    # Medians over the six pairs: serving +130 (100, 120, 120, 140, 200, 200), the flusher's
    # thread +30, the views' backends +1, the writer's backend +9, user time +130.
    assert split == "| 10-query | perfmonitor | +130 | +30 | +1 | +9 | +130 | +0 |"


def test_overhead_report_reads_results_without_the_split(tmp_path):
    old = {"bare": {"requests": 10, "rps": 5.0, "p99_ms": 1.0, "non_2xx": 0,
                    "socket_errors": 0, "cpu_us_per_request": 100.0},
           "rps_ratio": 1.0, "cpu_ratio": 1.01, "p99_ratio": 1.0}
    old["profile"] = dict(old["bare"])
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"comparisons": [
        {"profile": "placebo", "view": "one", "pairs": [old], "problems": []}]}))
    done = subprocess.run([sys.executable, "benchmarks/overhead/paired.py", "--report", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "| 1-query | placebo | 1 x 1 |" in done.stdout
    assert "serving threads" not in done.stdout
