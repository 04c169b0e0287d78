"""Compaction keeps every datum exactly once while rows move minute -> hour -> day."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections

from perfmonitor.analytics import query
from perfmonitor.analytics.compaction import compact_rollups
from perfmonitor.analytics.query import DAY_RESOLUTION, Window, stats, total
from perfmonitor.models import MetricRollup
from tests.analytics.conftest import push_values

NOW = (datetime.now(UTC) - timedelta(days=1)).replace(hour=14, minute=20, second=30, microsecond=0)


def at(hour: int, minute: int = 0, second: int = 0, day: int = 0) -> datetime:
    """A moment on NOW's day (or ``day`` days from it)."""
    return NOW.replace(hour=hour, minute=minute, second=second) + timedelta(days=day)


def snapshot(window: Window) -> tuple:
    s = total("request", window=window)
    routes = stats("request", window=window, group_by=("name", "dimension"))
    return (s.count, round(s.sum, 6), s.errors, s.min, s.max, s.p50, s.p95, s.p99,
            {k: (v.count, round(v.sum, 6), v.p95) for k, v in routes.items()})


def seed_two_hours() -> None:
    start = NOW - timedelta(hours=2, minutes=5)
    for minute in range(0, 125, 3):
        at = start + timedelta(minutes=minute, seconds=10)
        # Three flushes for the same minute: three partial rows.
        for part in range(3):
            push_values("request", "/courses/<int:pk>/", [50.0 + minute + part, 400.0],
                        at + timedelta(seconds=part), dimension="GET",
                        errors=[False, part == 2])
        push_values("request", "/login/", [30.0 * (1 + minute % 4)], at, dimension="POST")


@pytest.mark.django_db(transaction=True)
def test_compaction_merges_minutes_builds_hours_and_changes_no_answer():
    seed_two_hours()
    window = Window(NOW - timedelta(hours=3), NOW)
    edges = Window(NOW - timedelta(hours=1, minutes=47), NOW - timedelta(minutes=7))
    before = snapshot(window), snapshot(edges)
    partials = MetricRollup.objects.filter(resolution=60).count()

    result = compact_rollups(now=NOW)

    assert result.minutes_merged > 0 and result.hour_rows_written > 0
    assert MetricRollup.objects.filter(resolution=60).count() < partials
    # One minute row per series and minute after merging.
    per_minute = MetricRollup.objects.filter(resolution=60).values_list(
        "kind", "name", "dimension", "bucket_start")
    assert len(per_minute) == len(set(per_minute))
    hours = set(MetricRollup.objects.filter(resolution=3600, name="/login/")
                .values_list("bucket_start", flat=True))
    assert hours == {at(12), at(13)}
    assert query.read_marks().hour == at(14)
    assert query.read_marks().levels[600] == at(14, 20)
    assert (snapshot(window), snapshot(edges)) == before


@pytest.mark.django_db(transaction=True)
def test_running_compaction_twice_changes_nothing_more():
    seed_two_hours()
    compact_rollups(now=NOW)
    rows = sorted(MetricRollup.objects.exclude(kind="_state").values_list(
        "kind", "name", "dimension", "bucket_start", "resolution", "count", "sum", "compacted"))
    again = compact_rollups(now=NOW + timedelta(seconds=5))
    assert again.hour_rows_written == 0 and again.minutes_merged == 0
    assert sorted(MetricRollup.objects.exclude(kind="_state").values_list(
        "kind", "name", "dimension", "bucket_start", "resolution", "count", "sum",
        "compacted")) == rows


@pytest.mark.django_db(transaction=True)
def test_a_late_row_for_a_built_hour_is_counted_once_before_and_after_folding():
    seed_two_hours()
    compact_rollups(now=NOW)
    window = Window(NOW - timedelta(hours=3), NOW)
    before = total("request", window=window)

    # A flusher that retried through an outage writes a row for 12:30 now.
    late_at = at(12, 30, 5)
    push_values("request", "/login/", [9000.0], late_at, dimension="POST")

    visible = total("request", window=window)
    assert visible.count == before.count + 1 and visible.max == 9000.0
    result = compact_rollups(now=NOW + timedelta(minutes=1))
    assert result.late_rows_folded == 1
    after = total("request", window=window)
    assert (after.count, after.sum, after.max) == (visible.count, visible.sum, visible.max)
    hour = MetricRollup.objects.get(resolution=3600, name="/login/", dimension="POST",
                                    bucket_start=at(12))
    assert hour.max == 9000.0
    assert compact_rollups(now=NOW + timedelta(minutes=2)).late_rows_folded == 0
    assert total("request", window=window).count == visible.count


@pytest.mark.django_db(transaction=True)
def test_days_are_built_and_late_rows_reach_folded_days():
    day1 = at(9, 15, day=-2)
    push_values("request", "/a/", [100.0] * 5, day1, dimension="GET")
    push_values("request", "/a/", [200.0] * 7, day1 + timedelta(days=1, hours=3),
                dimension="GET")
    compact_rollups(now=NOW)
    days = dict(MetricRollup.objects.filter(resolution=DAY_RESOLUTION, name="/a/")
                .values_list("bucket_start", "count"))
    assert days == {at(0, day=-2): 5, at(0, day=-1): 7}
    window = Window(at(12, day=-3), NOW)
    assert total("request", window=window).count == 12

    push_values("request", "/a/", [300.0], at(22, 0, 1, day=-2),
                dimension="GET")
    assert total("request", window=window).count == 13
    compact_rollups(now=NOW + timedelta(minutes=1))
    assert MetricRollup.objects.get(resolution=DAY_RESOLUTION, name="/a/", dimension="GET",
                                    bucket_start=at(0, day=-2)).count == 6
    assert total("request", window=window).count == 13
    assert stats("request", window=window, group_by=("name",))[("/a/",)].max == 300.0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_on_postgresql_do_the_work_once():
    seed_two_hours()
    window = Window(NOW - timedelta(hours=3), NOW)
    before = snapshot(window)
    results, errors = [], []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait()
            results.append(compact_rollups(now=NOW))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(r.hour_rows_written for r in results) == \
        MetricRollup.objects.filter(resolution=3600).count()
    assert sorted(r.hour_rows_written > 0 for r in results) == [False, True]
    keys = MetricRollup.objects.filter(resolution=3600).values_list(
        "kind", "name", "dimension", "bucket_start")
    assert len(keys) == len(set(keys))
    assert snapshot(window) == before
    assert connection.vendor == "postgresql"


@pytest.mark.django_db(transaction=True)
def test_trend_points_equal_trend_buckets_across_minute_and_hour_rows():
    seed_two_hours()
    compact_rollups(now=NOW)
    window = Window(NOW - timedelta(hours=3), NOW)
    for bucket in (timedelta(minutes=10), timedelta(hours=1)):
        points = query.trend_points("request", window=window, bucket=bucket,
                                    qs=(0.5, 0.95))
        buckets = query.trend("request", window=window, bucket=bucket)
        assert [p["count"] for p in points] == [s.count for _t, s in buckets]
        assert [p["p95"] for p in points] == [s.p95 for _t, s in buckets]
        assert [p["p50"] for p in points] == [s.p50 for _t, s in buckets]
        assert sum(p["count"] for p in points) == total("request", window=window).count


@pytest.mark.django_db(transaction=True)
def test_a_long_backlog_is_folded_in_bounded_transactions():
    first = NOW - timedelta(days=9, hours=5)
    for day in range(9):
        push_values("request", "/b/", [10.0 * (day + 1)] * 3, first + timedelta(days=day),
                    dimension="GET")
    result = compact_rollups(now=NOW)
    assert result.days_folded == 9
    assert MetricRollup.objects.filter(resolution=DAY_RESOLUTION, name="/b/",
                                       dimension="GET").count() == 9
    window = Window(first - timedelta(hours=1), NOW)
    assert total("request", window=window).count == 27
    assert compact_rollups(now=NOW).days_folded == 0
