"""Business impact claims only what its sample supports; compaction runs as a task and
announces itself on the live channel."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import override_settings
from django.utils import timezone

from perfmonitor import live
from perfmonitor.analytics.impact import business_impact
from perfmonitor.analytics.query import Window
from perfmonitor.models import PerformanceMetric, UserJourney, WebVital
from perfmonitor.tasks import compact_rollups
from tests.analytics.conftest import push_values


def journey(i: int, status: str, session: str, user: str) -> UserJourney:
    now = timezone.now() - timedelta(minutes=30)
    return UserJourney(journey_id=f"j{i}", journey_type="class_booking", session_id=session,
                       user_id=user, start_time=now, status=status,
                       completed=status == "completed", abandoned=status == "abandoned")


@pytest.mark.django_db
@override_settings(PERFMONITOR={"BACKGROUND_FLUSH": False, "IMPACT_MIN_SAMPLE": 10})
def test_completion_by_lcp_bucket_with_sample_sizes():
    now = timezone.now() - timedelta(minutes=20)
    rows, vitals, requests = [], [], []
    for i in range(40):
        fast = i < 20
        status = "completed" if (fast and i % 10 != 0) or (not fast and i % 2 == 0) \
            else "abandoned"
        rows.append(journey(i, status, f"s{i}", f"u{i}"))
        vitals.append(WebVital(session_id=f"s{i}", metric_name="LCP",
                               value=1500 if fast else 5000, rating="x", timestamp=now))
        requests.append(PerformanceMetric(user_id=f"u{i}", metric_type="request",
                                          metric_name="GET /", duration=100.0, timestamp=now))
    for i in range(40, 45):  # a few journeys whose sessions saw a middling LCP
        rows.append(journey(i, "completed", f"s{i}", ""))
        vitals.append(WebVital(session_id=f"s{i}", metric_name="LCP", value=3000,
                               rating="x", timestamp=now))
    UserJourney.objects.bulk_create(rows)
    WebVital.objects.bulk_create(vitals)
    PerformanceMetric.objects.bulk_create(requests)

    impact = business_impact(Window.last(timedelta(hours=1)))

    assert impact["sample"]["journeys"] == 45 and impact["sample"]["sessions_with_lcp"] == 45
    rows_by = {r["bucket"]: r for r in impact["by_lcp"]["rows"]}
    assert rows_by["good"]["completion_rate"] == pytest.approx(18 / 20)
    assert rows_by["poor"]["completion_rate"] == pytest.approx(10 / 20)
    assert rows_by["needs-improvement"] == {"bucket": "needs-improvement", "journeys": 5,
                                            "completed": 5, "completion_rate": None,
                                            "enough_data": False}
    assert "40.0 points lower" in impact["by_lcp"]["finding"]
    latency = impact["by_server_latency"]
    assert latency["rows"][0]["journeys"] == 40
    assert latency["finding"].startswith("Not enough data")


@pytest.mark.django_db
def test_no_journeys_no_claims():
    impact = business_impact(Window.last(timedelta(hours=1)))
    assert impact["sample"]["journeys"] == 0
    assert impact["by_lcp"]["finding"].startswith("Not enough data")


@pytest.mark.django_db(transaction=True)
def test_the_compaction_task_compacts_and_publishes_a_metrics_update():
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(live.GROUP, channel)
    live.reset_throttle()
    at = timezone.now() - timedelta(hours=2)
    push_values("request", "/a/", [10.0, 20.0], at, dimension="GET")
    push_values("request", "/a/", [30.0], at, dimension="GET")

    result = compact_rollups.run()

    assert result["hour_rows_written"] >= 1
    message = async_to_sync(layer.receive)(channel)
    assert message["topic"] == "metrics" and message["payload"]["compacted"]["hour_rows_written"]
