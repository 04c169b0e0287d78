"""What the flusher writes: on hosts without time zones, with odd input, and on
the database the host's router picks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import override_settings
from django.utils import timezone

from perfmonitor.capture import buffer as buffer_module
from perfmonitor.capture.records import Measurement, RequestRecord
from perfmonitor.capture.writer import db_datetime
from perfmonitor.models import MetricRollup, MonitorHealth, PerformanceMetric
from tests.testapp.models import Course

pytestmark = pytest.mark.django_db


def test_a_host_without_time_zone_support_gets_naive_local_times(client, settings, flush):
    settings.USE_TZ = False
    settings.TIME_ZONE = "America/Chicago"
    course = Course.objects.create(title="Hiking")
    before = timezone.now()  # naive, local

    assert client.get(f"/capture/courses/{course.pk}/").status_code == 200
    assert flush(health=True) > 0

    row = PerformanceMetric.objects.get(metric_type="request")
    assert timezone.is_naive(row.timestamp)
    assert abs((row.timestamp - before).total_seconds()) < 120
    rollup = MetricRollup.objects.get(kind="request")
    assert rollup.bucket_start <= row.timestamp
    health = MonitorHealth.objects.get(process=buffer_module.process_name())
    assert timezone.is_naive(health.updated_at)


def test_db_datetime_follows_use_tz():
    moment = 1_700_000_000.0
    assert db_datetime(moment) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    with override_settings(USE_TZ=False, TIME_ZONE="Europe/Paris"):
        assert db_datetime(moment) == datetime(2023, 11, 14, 23, 13, 20)


def test_odd_input_cannot_make_a_batch_the_database_refuses(client, flush):
    long_route = "/" + "segment/" * 60  # 481 characters: longer than metric_name's 255
    record = RequestRecord(method="GET", route=long_route, view="v\x00iew",
                           path="/odd\x00path/", query_string="", status=200, ts=1_700_000_000.0,
                           duration_ms=float("nan"), queries=[], overflow={},
                           extra={"note": "nul \x00 inside", "ratio": float("inf")})
    buffer_module.push(record)
    assert client.get("/capture/plain/%00x").status_code == 404  # a NUL in a real path
    flush()
    assert buffer_module.buffer.flush_errors == 0
    odd = PerformanceMetric.objects.get(url="/oddpath/")
    assert len(odd.metric_name) == 255
    assert odd.metadata["view"] == "view" and odd.metadata["note"] == "nul  inside"
    assert odd.metadata["ratio"] is None
    assert PerformanceMetric.objects.filter(url="/capture/plain/x").exists()


class RecordingRouter:
    """Sends perfmonitor's writes to an alias of the host's choosing."""

    alias = "default"
    asked: list[str] = []

    def db_for_write(self, model, **hints):
        if model._meta.app_label == "perfmonitor":
            RecordingRouter.asked.append(model.__name__)
            return RecordingRouter.alias
        return None


def test_writes_go_where_the_hosts_router_says(settings, flush):
    RecordingRouter.asked = []
    settings.DATABASE_ROUTERS = [f"{__name__}.RecordingRouter"]
    buffer_module.push(Measurement(kind="custom", name="routed", value=1.0, ts=1_700_000_000.0))
    flush(health=True)
    assert {"MetricRollup", "MonitorHealth"} <= set(RecordingRouter.asked)
    assert MetricRollup.objects.filter(name="routed").exists()


def test_a_router_pointing_nowhere_is_a_counted_flush_error_not_a_crash(client, settings, flush):
    settings.DATABASE_ROUTERS = [f"{__name__}.RecordingRouter"]
    RecordingRouter.alias = "monitoring"  # no such database
    try:
        course = Course.objects.create(title="Ice skating")
        assert client.get(f"/capture/courses/{course.pk}/").status_code == 200
        assert flush() == 0
        assert buffer_module.buffer.flush_errors == 1
        assert "monitoring" in buffer_module.buffer.last_error
        assert len(buffer_module.buffer) == 1  # kept for a retry
    finally:
        RecordingRouter.alias = "default"
