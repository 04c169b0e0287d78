"""The monitor's own health, per process, across processes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from perfmonitor.capture import buffer as buffer_module
from perfmonitor.capture.records import Measurement
from perfmonitor.health import health_report
from perfmonitor.models import MonitorHealth

pytestmark = pytest.mark.django_db


def test_each_flushing_process_reports_and_stopped_ones_are_marked(flush):
    for i in range(3):
        buffer_module.push(Measurement(kind="custom", name="h", value=float(i), ts=1.7e9))
    flush(health=True)
    now = timezone.now()
    MonitorHealth.objects.create(process="web-2:4242", started_at=now, updated_at=now,
                                 captured=10, flushed=8, dropped=2, flush_errors=1,
                                 last_flush_at=now - timedelta(seconds=30))
    MonitorHealth.objects.create(process="web-3:99", started_at=now, updated_at=now
                                 - timedelta(hours=1), captured=1000, flushed=1000)

    report = health_report()

    by_name = {p["process"]: p for p in report["processes"]}
    mine = by_name[buffer_module.process_name()]
    assert (mine["captured"], mine["flushed"], mine["dropped"], mine["alive"]) == (3, 3, 0, True)
    assert mine["last_flush_age_seconds"] < 60
    assert by_name["web-2:4242"]["last_flush_age_seconds"] == pytest.approx(30, abs=5)
    assert by_name["web-3:99"]["alive"] is False
    assert report["live_processes"] == 2
    # Totals count live processes only.
    assert report["totals"] == {"captured": 13, "flushed": 11, "dropped": 2, "flush_errors": 1,
                                "internal_errors": 0}
    assert report["this_process"]["process"] == buffer_module.process_name()


def test_drops_show_in_health(settings, flush):
    settings.PERFMONITOR = {**settings.PERFMONITOR, "BUFFER_SIZE": 1}
    buffer_module.push(Measurement(kind="custom", name="h", value=1.0, ts=1.7e9))
    buffer_module.push(Measurement(kind="custom", name="h", value=2.0, ts=1.7e9))
    flush(health=True)
    row = MonitorHealth.objects.get(process=buffer_module.process_name())
    assert (row.captured, row.flushed, row.dropped, row.buffer_size) == (1, 1, 1, 0)


def test_a_process_health_row_is_created_once_then_updated_in_place():
    from perfmonitor.capture.writer import write_health

    stats = {"process": "web-9:77", "started_at": 1_700_000_000.0, "captured": 5, "flushed": 4,
             "dropped": 1, "flush_errors": 0, "internal_errors": 0, "buffer_size": 1,
             "last_flush_at": None, "last_error": ""}
    write_health(stats)
    write_health({**stats, "captured": 9, "flushed": 9, "buffer_size": 0,
                  "last_flush_at": 1_700_000_060.0, "last_error": "OperationalError: gone"})

    row = MonitorHealth.objects.get(process="web-9:77")
    assert (row.captured, row.flushed, row.dropped, row.buffer_size) == (9, 9, 1, 0)
    assert row.started_at.timestamp() == 1_700_000_000.0
    assert row.last_flush_at.timestamp() == 1_700_000_060.0
    assert row.last_error == "OperationalError: gone"
    assert abs(row.updated_at - timezone.now()) < timedelta(minutes=1)
    assert MonitorHealth.objects.filter(process="web-9:77").count() == 1
