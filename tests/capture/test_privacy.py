"""A secret sent by a client, in any part of a request, is stored nowhere."""

from __future__ import annotations

import pytest

from perfmonitor.models import PerformanceMetric, QueryFingerprint
from tests.capture.conftest import perfmonitor_text
from tests.testapp.models import Course

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-Zebra-4417"


def test_a_secret_in_query_string_body_cookie_or_header_is_in_no_perfmonitor_table(
        client, perf, flush):
    # Keep every detail row there is: every query is "slow", every request sampled.
    perf(SLOW_QUERY_MS=0, SAMPLE_RATE=1.0, URL_QUERY_ALLOWLIST=["page"])
    Course.objects.create(title=SECRET)  # the view finds it, by value, in SQL

    assert client.get(f"/capture/search/?token={SECRET}&page=2#frag").json() == {"found": 1}
    assert client.post("/capture/search/", {"password": SECRET}).json() == {"found": 1}
    client.cookies["sessionkey"] = SECRET
    assert client.get("/capture/search/").json() == {"found": 1}
    del client.cookies["sessionkey"]
    assert client.get("/capture/search/", HTTP_AUTHORIZATION=SECRET).json() == {"found": 1}
    flush()

    stored = perfmonitor_text()
    # The scan does see what was stored: routes, URLs, normalized SQL ...
    assert stored.count("/capture/search/") >= 4
    assert "/capture/search/?page=2" in stored  # allow-listed parameter kept
    assert "testapp_course" in stored
    assert PerformanceMetric.objects.filter(metric_type="request").count() == 4
    assert QueryFingerprint.objects.count() >= 2
    # ... and never the secret, nor the parameter that carried it.
    assert SECRET not in stored
    assert "token" not in stored


def test_fingerprints_hold_placeholders_for_inlined_literals(client, perf, flush):
    perf(SLOW_QUERY_MS=0)
    client.get(f"/capture/search/?token={SECRET}")
    flush()
    stored = sorted(fp.sql for fp in QueryFingerprint.objects.all())
    assert stored == [
        'SELECT COUNT(*) AS "__count" FROM "testapp_course" WHERE "testapp_course"."title" = ?',
        "SELECT COUNT(*) FROM testapp_course WHERE title = ?",  # the raw SQL, value inlined
    ]
