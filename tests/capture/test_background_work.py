"""Queries outside requests: Celery tasks, blocks wrapped in track(), management
commands. Each is attributed to its unit of work; perfmonitor's own work never."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.db import connection

from perfmonitor.capture import track
from perfmonitor.models import MetricRollup, PerformanceMetric
from tests.testapp import tasks
from tests.testapp.models import Course, Lesson

ROOT = Path(__file__).resolve().parents[2]


def rollups(kind: str) -> dict[tuple[str, str], tuple[int, int]]:
    """{(name, dimension): (count, errors)} of a kind's rollups, summed over partial rows."""
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for r in MetricRollup.objects.filter(kind=kind):
        count, errors = out.get((r.name, r.dimension), (0, 0))
        out[(r.name, r.dimension)] = (count + r.count, errors + r.errors)
    return out


def query_dimensions() -> dict[str, int]:
    out: dict[str, int] = {}
    for (_, dimension), (count, _) in rollups("query").items():
        out[dimension] = out.get(dimension, 0) + count
    return out


@pytest.mark.django_db(transaction=True)
def test_tasks_run_by_a_celery_worker_are_timed_and_own_their_queries(flush):
    from celery import Celery
    from celery.contrib.testing.worker import start_worker

    app = Celery("perfmonitor-tests", set_as_current=False)
    app.conf.update(broker_url="memory://", result_backend="cache+memory://",
                    broker_transport_options={"polling_interval": 0.01},
                    worker_hijack_root_logger=False)
    app.loader.import_module(tasks.__name__)  # the shared tasks, bound to this app too
    Course.objects.create(title="Archery")

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        assert app.send_task("testapp.count_courses").get(timeout=30) == 1
        with pytest.raises(LookupError):
            app.send_task("testapp.failing_task").get(timeout=30)
        assert app.send_task("perfmonitor.testapp_own_work").get(timeout=30) == 1
    flush()

    assert rollups("task") == {("testapp.count_courses", ""): (1, 0),
                               ("testapp.failing_task", ""): (1, 1)}
    assert query_dimensions() == {"task:testapp.count_courses": 2,
                                  "task:testapp.failing_task": 1}
    failed = PerformanceMetric.objects.get(metric_type="task", metric_name="testapp.failing_task")
    assert failed.error_details == {"exception": "LookupError"}
    assert failed.metadata["query_count"] == 1


@pytest.mark.django_db
def test_task_apply_goes_through_the_same_signals(flush):
    Course.objects.create(title="Baking")
    assert tasks.count_courses.apply().get() == 1
    assert tasks.failing_task.apply().failed()
    tasks.own_work.apply()
    flush()
    assert rollups("task") == {("testapp.count_courses", ""): (1, 0),
                               ("testapp.failing_task", ""): (1, 1)}
    assert query_dimensions() == {"task:testapp.count_courses": 2,
                                  "task:testapp.failing_task": 1}


@pytest.mark.django_db
def test_track_measures_blocks_functions_and_coroutines(flush):
    with track("nightly-import"):
        Course.objects.count()
        Lesson.objects.count()

    @track("rebuild-index")
    def rebuild() -> int:
        return Course.objects.count()

    @track("async-sync")
    async def sync_async() -> int:
        return await Course.objects.acount()

    assert rebuild() == 0
    assert async_to_sync(sync_async)() == 0
    with pytest.raises(KeyError), track("broken"):
        Course.objects.count()
        raise KeyError("missing")
    with track("perfmonitor.housekeeping"):  # perfmonitor's own: nothing captured
        Course.objects.count()
    flush()

    assert rollups("task") == {("nightly-import", ""): (1, 0), ("rebuild-index", ""): (1, 0),
                               ("async-sync", ""): (1, 0), ("broken", ""): (1, 1)}
    assert query_dimensions() == {"task:nightly-import": 2, "task:rebuild-index": 1,
                                  "task:async-sync": 1, "task:broken": 1}


def _database_url_for_a_child(tmp_path: Path) -> str:
    """A URL another process can open, holding this test's (committed) data."""
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        user = settings["USER"] or "postgres"
        auth = f"{user}:{settings['PASSWORD']}" if settings["PASSWORD"] else user
        return f"postgres://{auth}@{settings['HOST'] or '127.0.0.1'}:" \
               f"{settings['PORT'] or 5432}/{settings['NAME']}"
    target = tmp_path / "child.sqlite3"
    connection.ensure_connection()
    with sqlite3.connect(target) as copy:
        connection.connection.backup(copy)
    return f"sqlite:///{target}"


def _read_back(url: str, sql: str) -> list[tuple]:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            return db.execute(sql).fetchall()
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


@pytest.mark.django_db(transaction=True)
def test_a_management_command_owns_its_queries_and_flushes_at_exit(tmp_path):
    course = Course.objects.create(title="Chess")
    Lesson.objects.create(course=course, title="Openings")
    url = _database_url_for_a_child(tmp_path)

    # A separate process: `python -m django testapp_report`. The test settings turn
    # the background flusher off, so what it captured is written by the exit flush.
    done = subprocess.run(
        [sys.executable, "-m", "django", "testapp_report"], cwd=ROOT, capture_output=True,
        text=True, timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": url})

    assert done.returncode == 0, done.stderr
    assert "1 courses, 1 lessons" in done.stdout
    query_rows = _read_back(url, "SELECT dimension, count FROM perfmonitor_metric_rollups "
                                 "WHERE kind = 'query'")
    assert {d for d, _ in query_rows} == {"command:testapp_report"}  # its own flush: not there
    assert sum(c for _, c in query_rows) == 2
    [(captured, flushed, dropped)] = _read_back(
        url, "SELECT captured, flushed, dropped FROM perfmonitor_monitor_health")
    assert (captured, flushed, dropped) == (2, 2, 0)


@pytest.mark.parametrize("argv, origin", [
    (["manage.py", "import_courses", "--all"], "command:import_courses"),
    (["/usr/bin/django-admin", "send_reminders"], "command:send_reminders"),
    (["/venv/lib/python3.11/site-packages/django/__main__.py", "rebuild"], "command:rebuild"),
    (["manage.py", "migrate"], None),  # schema work says nothing about the site
    (["manage.py", "perfmonitor_prune"], None),  # perfmonitor's own
    (["manage.py"], None),
    (["/venv/bin/gunicorn", "site.wsgi"], "process:gunicorn"),
    (["/venv/lib/python3.11/site-packages/celery/__main__.py", "-A", "lms", "worker"],
     "process:celery"),
    (["-c"], "process:python"),
    (["/venv/bin/pytest", "tests"], None),
    (["/venv/lib/python3.11/site-packages/pytest/__main__.py", "tests"], None),
])
def test_queries_outside_requests_are_attributed_by_program(argv, origin):
    from perfmonitor.capture.context import process_origin

    assert process_origin(argv) == origin
