"""Every benchmark script still runs: a rename in perfmonitor cannot break one unnoticed.

Each script starts as its docstring says (``python -m benchmarks...``) with tiny sizes,
on a database of its own that is dropped afterwards, and must exit 0 with its table.
The numbers mean nothing here. Scripts that need PostgreSQL run in the PostgreSQL pass;
``--help`` checks every script's imports in both passes.
"""

from __future__ import annotations

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
