"""The real flusher thread writes in the background, and rides out a database
that goes away: the site keeps serving, errors are counted, batches are retried
with backoff and written once the database is back."""

from __future__ import annotations

import random
import time

import pytest
from django.db import connection, transaction

from perfmonitor.analytics.sketch import RELATIVE_ACCURACY, merge_serialized
from perfmonitor.capture import buffer as buffer_module
from perfmonitor.capture.records import RequestRecord
from perfmonitor.models import MetricRollup, MonitorHealth, PerformanceMetric
from tests.capture.conftest import wait_for
from tests.testapp.models import Course

buffer = buffer_module.buffer
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stop_flusher")]


def requests_stored() -> int:
    return PerformanceMetric.objects.filter(metric_type="request").count()


def test_the_background_thread_writes_raw_and_rollup_rows(client, perf):
    perf(BACKGROUND_FLUSH=True, FLUSH_INTERVAL=0.05)
    course = Course.objects.create(title="Astronomy")

    for _ in range(3):
        assert client.get(f"/capture/courses/{course.pk}/").status_code == 200

    wait_for(lambda: buffer.flushed == 3)
    wait_for(lambda: requests_stored() == 3)
    assert buffer._thread.name == "perfmonitor-flusher" and buffer._thread.is_alive()
    wait_for(lambda: sum(MetricRollup.objects.filter(kind="request")
                         .values_list("count", flat=True)) == 3)
    assert MetricRollup.objects.filter(kind="query",
                                       dimension="GET /capture/courses/<int:pk>/").exists()
    health = wait_for(lambda: MonitorHealth.objects.filter(
        process=buffer_module.process_name(), flushed=3).first())
    assert health.flush_errors == 0 and health.last_flush_at is not None


def test_a_full_batch_wakes_the_flusher_before_its_interval(perf):
    perf(BACKGROUND_FLUSH=True, FLUSH_INTERVAL=60, BATCH_SIZE=5)
    records = [RequestRecord(method="GET", route="/r/", view="v", path="/r/", query_string="",
                             status=200, ts=time.time(), duration_ms=1.0, queries=[],
                             overflow={}) for _ in range(6)]
    buffer_module.push(records[0])  # starts the thread, which now sleeps for a minute
    for record in records[1:]:
        buffer_module.push(record)
    # The fifth record woke it: at least a batch is written long before the minute.
    # (What arrives after that wake-up waits for the next batch or the interval.)
    wait_for(lambda: requests_stored() >= 5, timeout=20)


def test_partial_rollups_of_several_flushes_merge_to_the_right_quantiles(perf):
    perf(BACKGROUND_FLUSH=True, FLUSH_INTERVAL=0.05)
    rng = random.Random(7)
    durations = [rng.lognormvariate(3.0, 1.0) for _ in range(3000)]
    minute = (time.time() // 60) * 60 + 1
    for wave in range(3):  # three flushes: three partial rows of one series and minute
        for value in durations[wave::3]:
            buffer_module.push(RequestRecord(
                method="GET", route="/report/", view="v", path="/report/", query_string="",
                status=200, ts=minute, duration_ms=value, queries=[], overflow={}))
        expected = 1000 * (wave + 1)
        wait_for(lambda: len(buffer) == 0 and buffer.flushed == expected)  # noqa: B023

    rows = list(MetricRollup.objects.filter(kind="request", name="/report/"))
    assert len(rows) >= 3
    assert sum(r.count for r in rows) == 3000
    assert min(r.min for r in rows) == pytest.approx(min(durations))
    assert max(r.max for r in rows) == pytest.approx(max(durations))
    sketch = merge_serialized(r.sketch for r in rows)
    ordered = sorted(durations)
    for q in (0.5, 0.75, 0.9, 0.95, 0.99):
        exact = ordered[int(q * (len(ordered) - 1))]
        assert sketch.quantile(q) == pytest.approx(exact, rel=RELATIVE_ACCURACY * 1.01)


def _backoff_gaps() -> list[float]:
    attempts = list(buffer.failed_attempts)
    return [b - a for a, b in zip(attempts, attempts[1:], strict=False)]


def _assert_outage_handled(client, url: str) -> None:
    """While the database refuses the flusher: the site serves, errors are counted,
    the records wait, and retries back off."""
    for _ in range(5):
        assert client.get(url).status_code == 200
    # Both counters: the flusher thread bumps them one after the other.
    wait_for(lambda: buffer.flush_errors >= 4 and buffer.consecutive_failures >= 4, timeout=20)
    assert buffer.flushed == 1
    assert len(buffer) == 5
    assert buffer.dropped == 0
    assert buffer.stats()["consecutive_failures"] >= 4
    gaps = _backoff_gaps()
    assert gaps[-1] > 2 * gaps[0], gaps  # exponential, not every interval


def _assert_recovered() -> None:
    wait_for(lambda: buffer.flushed == 6, timeout=30)
    wait_for(lambda: requests_stored() == 6)
    assert buffer.consecutive_failures == 0
    assert buffer.flushed == 6
    assert time.time() - buffer.last_flush_at < 30
    health = wait_for(lambda: MonitorHealth.objects.filter(
        process=buffer_module.process_name(), flushed=6).first(), timeout=15)
    assert health.flush_errors >= 4 and health.last_error


def admin_connection():
    """A connection to the server's maintenance database, outside Django."""
    import psycopg

    params = connection.get_connection_params()
    params["dbname"] = "postgres"
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


@pytest.mark.postgres
def test_postgres_refusing_connections_during_flush(client, perf):
    name = connection.settings_dict["NAME"]
    perf(BACKGROUND_FLUSH=True, FLUSH_INTERVAL=0.05)
    course = Course.objects.create(title="Biology")
    url = f"/capture/courses/{course.pk}/"
    assert client.get(url).status_code == 200
    wait_for(lambda: requests_stored() == 1)

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        own_pid = cursor.fetchone()[0]
    with admin_connection() as admin:
        # The server refuses new connections to the test database and drops the
        # flusher's open one; this test's own connection (serving the host's
        # requests) stays.
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s AND pid <> %s", [name, own_pid])
        try:
            _assert_outage_handled(client, url)
            assert "OperationalError" in buffer.last_error
        finally:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
    _assert_recovered()


def test_sqlite_locked_by_another_writer_during_flush(client, perf):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite locking")
    perf(BACKGROUND_FLUSH=True, FLUSH_INTERVAL=0.05)
    course = Course.objects.create(title="Ceramics")
    url = f"/capture/courses/{course.pk}/"
    assert client.get(url).status_code == 200
    wait_for(lambda: requests_stored() == 1)

    with transaction.atomic():  # this connection writes and holds the database
        Course.objects.create(title="Dance")
        _assert_outage_handled(client, url)
        assert "locked" in buffer.last_error
    _assert_recovered()


@pytest.mark.redis
def test_the_background_flusher_tells_live_dashboards_new_rows_arrived(client, perf, settings):
    """On the Redis layer: the in-memory layer's queue, filled from the flusher's own event
    loop, does not wake a receiver waiting in this thread's."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from perfmonitor import live
    from tests.dashboard.live_helpers import redis_channel_layers

    settings.CHANNEL_LAYERS = redis_channel_layers()
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(live.GROUP, channel)
    live.reset_throttle()
    perf(BACKGROUND_FLUSH=True, FLUSH_INTERVAL=0.05)

    assert client.get("/capture/plain/").status_code == 200

    async def receive() -> dict:
        import asyncio

        return await asyncio.wait_for(layer.receive(channel), timeout=15)

    message = async_to_sync(receive)()
    assert message["type"] == live.MESSAGE_TYPE
    assert message["topic"] == "metrics" and message["payload"]["rows"] >= 2


@pytest.mark.redis
def test_new_rows_are_announced_at_most_once_per_refresh_and_the_last_ones_still_are(
        client, perf, settings):
    """A process announces new rows at most every DASHBOARD_MIN_REFRESH_SECONDS (each
    publish costs it a round trip to the layer); the flush whose notice that held back
    is announced by the idle flusher once due, even though no flush follows it.

    On the Redis layer, as deployed: the in-memory layer's queues do not wake a
    receiver waiting in another thread's event loop."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from perfmonitor import live
    from tests.dashboard.live_helpers import redis_channel_layers

    settings.CHANNEL_LAYERS = redis_channel_layers()
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(live.GROUP, channel)
    live.reset_throttle()
    perf(BACKGROUND_FLUSH=True, FLUSH_INTERVAL=0.05, DASHBOARD_MIN_REFRESH_SECONDS=1.5)

    async def receive() -> tuple[dict, float]:
        import asyncio

        message = await asyncio.wait_for(layer.receive(channel), timeout=15)
        return message, time.monotonic()

    assert client.get("/capture/plain/").status_code == 200
    first, first_at = async_to_sync(receive)()
    assert first["topic"] == "metrics"
    wait_for(lambda: not len(buffer_module.buffer))
    assert client.get("/capture/plain/").status_code == 200  # flushed within 0.05 s
    wait_for(lambda: live._pending.get("metrics") is not None)  # held back, not dropped
    second, second_at = async_to_sync(receive)()
    assert second["topic"] == "metrics" and second["payload"]["rows"] >= 2
    assert second_at - first_at >= 1.5 - 0.1  # not before the refresh interval
    assert not live._pending


def test_other_topics_keep_their_one_second_throttle_and_forced_ones_none(settings):
    from perfmonitor import live

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.PERFMONITOR = {**settings.PERFMONITOR, "DASHBOARD_MIN_REFRESH_SECONDS": 30}
    live.reset_throttle()
    assert live._interval("metrics") == 30 and live._interval("journeys") == 1.0
    assert live.publish("journeys", {"n": 1}) and not live.publish("journeys", {"n": 2})
    assert live._pending == {"journeys": {"n": 2}}
    assert live.publish("alerts", {"a": 1}, force=True) and live.publish("alerts", {"a": 2},
                                                                        force=True)
    live.reset_throttle()
    assert not live._pending


@pytest.mark.postgres
@pytest.mark.parametrize("synchronous", [False, True])
def test_the_flusher_commits_asynchronously_on_its_own_connection_only(
        client, perf, monkeypatch, synchronous):
    from django.db import connections

    from perfmonitor.capture import writer

    seen = []
    real_write = writer.write_batch

    def write_and_look(prepared, own_connection=False):
        written = real_write(prepared, own_connection=own_connection)
        with connections["default"].cursor() as cursor:  # the flusher thread's connection
            cursor.execute("SHOW synchronous_commit")
            seen.append((own_connection, cursor.fetchone()[0]))
        return written

    monkeypatch.setattr(writer, "write_batch", write_and_look)
    perf(BACKGROUND_FLUSH=True, FLUSH_INTERVAL=0.05, FLUSH_SYNCHRONOUS_COMMIT=synchronous)
    assert client.get("/capture/plain/").status_code == 200
    wait_for(lambda: seen)
    assert seen[0] == (True, "on" if synchronous else "off")
    wait_for(lambda: requests_stored() == 1)

    # An explicit flush in the host's thread (exit, a command) leaves its session alone.
    assert client.get("/capture/plain/").status_code == 200
    buffer.stop()
    buffer_module.flush_now()
    assert seen[-1] == (False, "on")
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


@pytest.mark.postgres
def test_a_retry_writes_only_the_parts_that_did_not_commit(perf):
    """Outside a transaction each part of a flush commits on its own. When PostgreSQL
    refuses the rollups after the raw rows went in, the retry writes the rollups alone:
    no raw row twice, no rollup lost."""
    perf(BACKGROUND_FLUSH=False, SAMPLE_RATE=1.0)
    table = MetricRollup._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("CREATE FUNCTION pm_test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                       "$$ BEGIN RAISE EXCEPTION 'rollups refused for the test'; END $$")
        cursor.execute(f'CREATE TRIGGER pm_test_refuse BEFORE INSERT ON "{table}" '
                       "FOR EACH ROW EXECUTE FUNCTION pm_test_refuse()")
    try:
        for i in range(3):
            buffer_module.push(RequestRecord(
                method="GET", route="/courses/<int:pk>/", view="v", path=f"/courses/{i}/",
                query_string="", status=200, ts=1_700_000_000.0 + i, duration_ms=5.0 + i,
                queries=[("SELECT 1", 0.5, False)], overflow={}))
        assert connection.get_autocommit() and not connection.in_atomic_block
        assert buffer.flush(force=True) == 0
        assert "rollups refused for the test" in buffer.last_error
        assert requests_stored() == 3  # committed before the rollups were refused
        assert not MetricRollup.objects.exists()
        assert len(buffer) == 3  # held for the retry
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP TRIGGER pm_test_refuse ON "{table}"')
            cursor.execute("DROP FUNCTION pm_test_refuse()")
    assert buffer.flush(force=True) > 0
    assert requests_stored() == 3
    rollup = MetricRollup.objects.get(kind="request")
    assert (rollup.count, rollup.sum) == (3, 18.0)
    assert MetricRollup.objects.get(kind="query").count == 3
    assert len(buffer) == 0 and buffer.dropped == 0 and buffer.flushed == 3
