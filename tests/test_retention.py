"""Old data goes away on schedule, in batches, and nothing younger than its retention."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from perfmonitor.models import MetricRollup, MonitorHealth, PerformanceMetric, WebVital
from perfmonitor.retention import prune

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def metric(now, age, name) -> PerformanceMetric:
    return PerformanceMetric.objects.create(metric_type="request", metric_name=name,
                                            timestamp=now - age)


def vital(now, age, name) -> WebVital:
    return WebVital.objects.create(metric_name=name, value=1.0, rating="good",
                                   timestamp=now - age)


def rollup(now, age, resolution, name) -> MetricRollup:
    return MetricRollup.objects.create(kind="request", name=name, bucket_start=now - age,
                                       resolution=resolution)


def health(now, age, name) -> MonitorHealth:
    return MonitorHealth.objects.create(process=name, started_at=now - age, updated_at=now - age)


@pytest.fixture
def aged_data():
    """Rows on both sides of every default retention (7 d raw, 14 d minute, 400 d hour)."""
    now = timezone.now()
    metric(now, 7 * DAY - HOUR, "keep"), metric(now, 7 * DAY + HOUR, "drop")
    vital(now, 7 * DAY - HOUR, "KEEP"), vital(now, 7 * DAY + HOUR, "DROP")
    rollup(now, 14 * DAY - HOUR, MetricRollup.MINUTE, "keep")
    rollup(now, 14 * DAY + HOUR, MetricRollup.MINUTE, "drop")
    rollup(now, 20 * DAY, MetricRollup.HOUR, "keep")  # an hour row outlives minute rows
    rollup(now, 400 * DAY - HOUR, MetricRollup.HOUR, "keep")
    rollup(now, 400 * DAY + HOUR, MetricRollup.HOUR, "drop")
    health(now, DAY, "keep"), health(now, 8 * DAY, "drop")
    return now


def assert_only_kept_rows_remain() -> None:
    assert set(PerformanceMetric.objects.values_list("metric_name", flat=True)) == {"keep"}
    assert set(WebVital.objects.values_list("metric_name", flat=True)) == {"KEEP"}
    assert set(MetricRollup.objects.values_list("name", flat=True)) == {"keep"}
    assert MetricRollup.objects.count() == 3
    assert set(MonitorHealth.objects.values_list("process", flat=True)) == {"keep"}


def test_prune_deletes_only_what_is_past_its_retention(aged_data):
    deleted = prune(now=aged_data)
    assert deleted == {"performance_metrics": 1, "web_vitals": 1, "minute_rollups": 1,
                       "hour_rollups": 1, "monitor_health": 1}
    assert_only_kept_rows_remain()


def test_retention_follows_the_settings(aged_data, settings):
    settings.PERFMONITOR = {**settings.PERFMONITOR, "RAW_RETENTION_DAYS": 30}
    assert prune(now=aged_data)["performance_metrics"] == 0


def test_prune_deletes_in_batches(settings):
    settings.PERFMONITOR = {**settings.PERFMONITOR, "PRUNE_BATCH_SIZE": 2}
    now = timezone.now()
    for i in range(5):
        metric(now, 30 * DAY, f"old{i}")
    with CaptureQueriesContext(connection) as queries:
        assert prune(now=now)["performance_metrics"] == 5
    deletes = [q["sql"] for q in queries
               if q["sql"].startswith("DELETE") and "performance_metrics" in q["sql"]]
    assert len(deletes) == 3  # 2 + 2 + 1
    assert not PerformanceMetric.objects.exists()


def test_the_prune_command(aged_data):
    out = StringIO()
    call_command("perfmonitor_prune", "--dry-run", stdout=out)
    assert "performance_metrics: 1 rows would be deleted" in out.getvalue()
    assert PerformanceMetric.objects.count() == 2

    out = StringIO()
    call_command("perfmonitor_prune", "--batch-size", "1", stdout=out)
    assert "minute_rollups: 1 rows deleted" in out.getvalue()
    assert_only_kept_rows_remain()


def test_the_celery_task_prunes(aged_data):
    from perfmonitor.tasks import prune_old_data

    assert prune_old_data.apply().get()["hour_rollups"] == 1
    assert_only_kept_rows_remain()


def test_pruning_is_scheduled_by_the_setup_command():
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.filter(task="perfmonitor.prune_old_data").delete()
    out = StringIO()
    call_command("perfmonitor_setup", stdout=out)
    task = PeriodicTask.objects.get(task="perfmonitor.prune_old_data")
    assert task.enabled and task.interval.every == 3600
    call_command("perfmonitor_setup", stdout=StringIO())  # idempotent
    assert PeriodicTask.objects.filter(task="perfmonitor.prune_old_data").count() == 1
