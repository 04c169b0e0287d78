"""`manage.py demo_traffic` drives realistic visits at a live demo site, and only at it."""

from __future__ import annotations

import json
import threading
from io import StringIO
from urllib.parse import urljoin

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from demo_project.lms.models import Booking, Payment
from demo_project.lms.seed import seed
from demo_project.lms.traffic import TrafficGenerator
from demo_project.lms.visitor import FlowError, Pacer, Visitor
from perfmonitor.models import UserJourney
from tests.demo.conftest import FAST_HASHER


@pytest.mark.django_db(transaction=True)
def test_traffic_visits_the_site_and_runs_its_flows_without_errors(live_server):
    with override_settings(PASSWORD_HASHERS=FAST_HASHER):
        seed()
    bookings, payments = Booking.objects.count(), Payment.objects.count()
    out = StringIO()
    # The live server shares one connection between its threads on in-memory SQLite:
    # concurrent visitors only where the database can take them.
    concurrency = 3 if connection.vendor == "postgresql" else 1
    call_command("demo_traffic", base_url=live_server.url, duration=5, rps=25,
                 concurrency=concurrency, seed=7, json=True, stdout=out)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])

    assert summary["requests"] >= 10
    assert summary["generator_error_count"] == 0, summary["generator_errors"]
    assert summary["server_errors"] == 0 and summary["connection_errors"] == 0
    assert summary["flow_errors"] == {}
    assert len(summary["scenarios"]) >= 2
    assert summary["statuses"].get("200", 0) > summary["requests"] / 2
    # What the visitors did left traces in the school and in the journeys.
    assert Booking.objects.count() + Payment.objects.count() > bookings + payments or \
        "book_a_class" not in summary["scenarios"]
    assert UserJourney.objects.exists()


def test_it_refuses_to_leave_the_base_url():
    visitor = Visitor("http://127.0.0.1:9/", Pacer(100, threading.Event()), stats=None)
    # Redirect targets are resolved against the current page before this check.
    for path in ("http://example.com/", urljoin("http://127.0.0.1:9/a", "//example.com/x"),
                 "https://127.0.0.1:9/", "http://127.0.0.1:10/"):
        with pytest.raises(FlowError, match="refusing to leave"):
            visitor._url(path)
    assert visitor._url("/courses/") == "http://127.0.0.1:9/courses/"


def test_bad_arguments_are_reported():
    with pytest.raises(ValueError, match="base URL"):
        TrafficGenerator("ftp://example.com")
    with pytest.raises(CommandError, match="did not answer"):
        call_command("demo_traffic", base_url="http://127.0.0.1:9", wait=0.5, duration=1)
