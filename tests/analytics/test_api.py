"""The staff read API: every endpoint refuses outsiders and answers staff with numbers."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from tests.analytics.conftest import push_values

ENDPOINTS = ["summary", "score", "analysis", "vitals", "vitals/pages", "routes", "queries",
             "frontend/api", "frontend/errors", "frontend/resources", "insights", "impact",
             "budgets", "report"]
BASE = "/perfmonitor/api/v1/"


def seed() -> None:
    at = timezone.now() - timedelta(minutes=4)
    push_values("request", "/courses/<int:pk>/", [120.0] * 30 + [900.0] * 10, at,
                dimension="GET")
    push_values("request", "/login/", [80.0] * 9 + [50.0], at, dimension="POST",
                errors=[False] * 9 + [True])
    push_values("query", "f00dfeed", [3.0] * 40, at, dimension="GET /courses/<int:pk>/")
    push_values("vital", "LCP", [1800.0] * 8 + [5200.0] * 4, at, dimension="/courses/")
    push_values("vital", "CLS", [0.02] * 12, at, dimension="/courses/")
    push_values("vital", "INP", [120.0] * 12, at, dimension="/courses/")
    push_values("api", "/api/v1/bookings/", [300.0] * 6, at, dimension="GET",
                errors=[False] * 5 + [True])
    push_values("error", "TypeError:abcd", [1.0] * 3, at, dimension="/courses/")
    push_values("resource", "/courses/", [2_500_000.0] * 4, at, dimension="js_transfer")
    push_values("resource", "/courses/", [50_000.0] * 4, at, dimension="css_transfer")


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_anonymous_is_refused(client, endpoint):
    assert client.get(BASE + endpoint).status_code in (401, 403)


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_staff_without_the_permission_is_refused(staff_without_permission, endpoint):
    assert staff_without_permission.get(BASE + endpoint).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_staff_with_the_permission_gets_200(staff_client, endpoint):
    seed()
    response = staff_client.get(BASE + endpoint, {"window": "1h"})
    assert response.status_code == 200, response.content[:300]


@pytest.mark.django_db
@pytest.mark.parametrize("params,field", [({"window": "forever"}, "window"),
                                          ({"window": "900d"}, "window"),
                                          ({"limit": "0"}, "limit"),
                                          ({"by": "fastest"}, "by"),
                                          ({"start": "2026-01-01T00:00:00Z"}, "start"),
                                          ({"route": "/a\x00"}, "route")])
def test_bad_parameters_get_a_400_naming_them(staff_client, params, field):
    response = staff_client.get(BASE + "routes", params)
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.django_db
def test_summary_numbers_match_the_seeded_data(staff_client):
    seed()
    data = staff_client.get(BASE + "summary", {"window": "1h", "device": "mobile"}).json()
    routes = {r["route"]: r for r in data["top_routes"]}
    assert routes["/courses/<int:pk>/"]["count"] == 40
    assert routes["/login/"]["error_rate"] == pytest.approx(0.1)
    assert routes["/courses/<int:pk>/"]["p95"] == pytest.approx(900, rel=0.01)
    throughput = next(c for c in data["cards"] if c["key"] == "throughput")
    assert throughput["value"] == pytest.approx(50 / 60)
    assert data["vitals"] == []  # the seeded vitals carry no device class
    assert data["unsupported"] == []
    data = staff_client.get(BASE + "summary", {"window": "1h"}).json()
    page = data["vitals"][0]
    assert page["page"] == "/courses/" and page["assessment"]["status"] == "failed"
    assert page["vitals"]["LCP"]["poor"] == pytest.approx(4 / 12)
    assert 0 < data["score"]["score"] <= 100
    assert sum(p["count"] for p in data["trends"]["requests"]) == 50


@pytest.mark.django_db
def test_vitals_routes_queries_and_frontend_summaries(staff_client):
    seed()
    vitals = staff_client.get(BASE + "vitals", {"window": "1h"}).json()
    assert vitals["site"]["vitals"]["LCP"]["samples"] == 12
    assert vitals["page_tally"]["failed"] == 1
    queries = staff_client.get(BASE + "queries", {"window": "1h"}).json()["queries"]
    assert queries[0]["fingerprint"] == "f00dfeed" and queries[0]["count"] == 40
    routes = staff_client.get(BASE + "routes", {"window": "1h", "by": "error_rate"}).json()
    assert routes["routes"][0]["route"] == "/login/"
    api = staff_client.get(BASE + "frontend/api", {"window": "1h"}).json()
    assert api["endpoints"][0]["error_rate"] == pytest.approx(1 / 6)
    errors = staff_client.get(BASE + "frontend/errors", {"window": "1h"}).json()
    assert errors["errors"][0] == {"fingerprint": "TypeError:abcd", "count": 3,
                                   "pages": {"/courses/": 3}, "previous": 0, "change": None}
    resources = staff_client.get(BASE + "frontend/resources", {"window": "1h"}).json()
    assert resources["pages"][0]["over_budget"] is True


@pytest.mark.django_db
def test_report_downloads_in_each_format(staff_client):
    seed()
    as_json = staff_client.get(BASE + "report", {"window": "1h", "format": "json"})
    assert as_json["Content-Disposition"].startswith("attachment;")
    report = json.loads(as_json.content)
    for section in ("overview", "web_vitals", "journeys", "trends", "resources", "alerts",
                    "business_impact", "recommendations"):
        assert section in report
    as_csv = staff_client.get(BASE + "report", {"window": "1h", "format": "csv"})
    rows = list(csv.reader(io.StringIO(as_csv.content.decode())))
    assert rows[0] == ["section", "item", "metric", "value", "unit"]
    assert ["routes", "GET /courses/<int:pk>/", "total_time"] in [r[:3] for r in rows]
    html = staff_client.get(BASE + "report", {"window": "1h", "format": "html"})
    body = html.content.decode()
    assert html["Content-Type"].startswith("text/html") and "<svg" in body
    assert "<script" not in body and "Prioritized recommendations" in body


@pytest.mark.django_db
def test_metrics_need_login_or_the_bearer_token(client, staff_client, staff_without_permission):
    seed()
    assert client.get("/perfmonitor/metrics").status_code == 401
    assert staff_without_permission.get("/perfmonitor/metrics").status_code == 403
    ok = staff_client.get("/perfmonitor/metrics", {"window": "1h"})
    assert ok.status_code == 200 and ok["Content-Type"].startswith("text/plain; version=0.0.4")
    text = ok.content.decode()
    assert ('perfmonitor_request_duration_milliseconds_window_count'
            '{route="/courses/<int:pk>/",method="GET"} 40') in text
    assert 'perfmonitor_request_errors_window{route="/login/",method="POST"} 1' in text
    with override_settings(PERFMONITOR={"BACKGROUND_FLUSH": False,
                                        "METRICS_BEARER_TOKEN": "s3cret"}):
        assert client.get("/perfmonitor/metrics",
                          HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
        assert client.get("/perfmonitor/metrics",
                          HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


@pytest.mark.django_db
def test_openapi_schema_describes_the_analytics_endpoints(staff_client):
    response = staff_client.get(BASE + "schema", {"format": "json"})
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    for endpoint in ENDPOINTS:
        assert any(path.endswith("/" + endpoint) for path in paths), endpoint


def test_overview_trend_resolution_per_range():
    from perfmonitor.analytics.overview import overview_bucket
    from perfmonitor.analytics.query import Window

    points = {label: Window.last(span).span / overview_bucket(Window.last(span))
              for label, span in (("1h", timedelta(hours=1)), ("6h", timedelta(hours=6)),
                                  ("24h", timedelta(hours=24)), ("7d", timedelta(days=7)),
                                  ("30d", timedelta(days=30)))}
    assert points == {"1h": 60, "6h": 360, "24h": 24, "7d": 168, "30d": 120}
