"""Staff see perfmonitor's tables in the admin: read-only, filterable, searchable,
together with the monitor's own health."""

from __future__ import annotations

from io import StringIO

import pytest
from django.apps import apps
from django.contrib import admin
from django.core import checks
from django.core.management import call_command
from django.urls import reverse

from perfmonitor.capture import buffer as buffer_module
from perfmonitor.capture.records import Measurement
from perfmonitor.models import (
    MetricRollup,
    MonitorHealth,
    PerformanceMetric,
    QueryFingerprint,
    UserJourney,
    WebVital,
)
from tests.testapp.models import Course

pytestmark = pytest.mark.django_db

MEASUREMENTS = [PerformanceMetric, WebVital, MetricRollup, QueryFingerprint, UserJourney,
                MonitorHealth]


def url(model, view: str, *args) -> str:
    return reverse(f"admin:perfmonitor_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def captured(client, flush):
    """A few real requests (one N+1), flushed, with this process's health row."""
    course = Course.objects.create(title="Latin")
    from tests.testapp.models import Lesson

    Lesson.objects.bulk_create([Lesson(course=course, title=f"L{i}") for i in range(5)])
    client.get(f"/capture/courses/{course.pk}/")
    client.get("/capture/lessons/")
    buffer_module.push(Measurement(kind="custom", name="x", value=1.0, ts=1_700_000_000.0,
                                   row_model="vital",
                                   row={"metric_name": "LCP", "value": 1200.0, "rating": "good",
                                        "url": "https://example.com/lessons/"}))
    flush(health=True)


def test_every_perfmonitor_model_is_registered():
    for model in apps.get_app_config("perfmonitor").get_models():
        assert admin.site.is_registered(model), model.__name__


def test_the_registrations_pass_djangos_admin_checks():
    errors = [e for e in checks.run_checks(tags=[checks.Tags.admin])
              if "perfmonitor" in str(e.obj)]
    assert errors == []


@pytest.mark.parametrize("model", MEASUREMENTS, ids=lambda m: m.__name__)
def test_measurements_are_read_only(admin_client, captured, model):
    changelist = admin_client.get(url(model, "changelist"))
    assert changelist.status_code == 200
    assert admin_client.get(url(model, "add")).status_code == 403
    obj = model.objects.first()
    if obj is not None:
        detail = admin_client.get(url(model, "change", obj.pk))
        assert detail.status_code == 200  # viewable
        assert b'name="_save"' not in detail.content  # no save button
        assert admin_client.post(url(model, "change", obj.pk), {}).status_code == 403
        assert admin_client.post(url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
        assert model.objects.filter(pk=obj.pk).exists()


@pytest.mark.parametrize("model", MEASUREMENTS, ids=lambda m: m.__name__)
def test_measurements_are_filterable_and_searchable(model):
    model_admin = admin.site._registry[model]
    assert model_admin.list_filter, model.__name__
    assert model_admin.search_fields, model.__name__


def test_filter_by_type_and_time_and_search_by_route(admin_client, captured):
    base = url(PerformanceMetric, "changelist")
    by_type = admin_client.get(base, {"metric_type__exact": "query"})
    assert by_type.status_code == 200
    assert by_type.context["cl"].result_count == 1  # the N+1 hot spot
    today = admin_client.get(base, {"timestamp__gte": "2000-01-01T00:00:00+00:00"})
    assert today.context["cl"].result_count == PerformanceMetric.objects.count()
    search = admin_client.get(base, {"q": "/capture/lessons/"})
    assert {r.metric_name for r in search.context["cl"].result_list} >= {"GET /capture/lessons/"}
    rollups = admin_client.get(url(MetricRollup, "changelist"), {"kind__exact": "request",
                                                                 "q": "courses"})
    assert [r.name for r in rollups.context["cl"].result_list] == ["/capture/courses/<int:pk>/"]


def test_monitor_health_is_visible_in_the_admin(admin_client, captured):
    response = admin_client.get(url(MonitorHealth, "changelist"))
    assert response.status_code == 200
    content = response.content.decode()
    process = buffer_module.process_name()
    assert process in content
    [row] = response.context["cl"].result_list
    assert (row.captured, row.flushed, row.dropped, row.flush_errors) == (3, 3, 0, 0)
    alive = admin_client.get(url(MonitorHealth, "changelist"), {"alive": "yes"})
    assert alive.context["cl"].result_count == 1
    stopped = admin_client.get(url(MonitorHealth, "changelist"), {"alive": "no"})
    assert stopped.context["cl"].result_count == 0


def test_perfmonitor_status_command_shows_each_process(captured):
    out = StringIO()
    call_command("perfmonitor_status", stdout=out)
    text = out.getvalue()
    assert buffer_module.process_name()[:32] in text
    assert "1 live process(es): captured 3, flushed 3, dropped 0, flush errors 0" in text

    out = StringIO()
    call_command("perfmonitor_status", "--json", stdout=out)
    assert '"flushed": 3' in out.getvalue()


def test_perfmonitor_status_says_which_request_path_the_install_runs(monkeypatch):
    from perfmonitor.capture import query_hook

    for implementation, requested, expected in [
            ("compiled", False, "Request path: compiled (perfmonitor.capture._speedups)"),
            ("python", True, "Request path: Python (PERFMONITOR_PURE_PYTHON is set)"),
            ("python", False, "the compiled module is not installed: see perfmonitor.W011")]:
        monkeypatch.setattr(query_hook, "IMPLEMENTATION", implementation)
        monkeypatch.setattr(query_hook, "PURE_PYTHON_REQUESTED", requested)
        out = StringIO()
        call_command("perfmonitor_status", stdout=out)
        assert expected in out.getvalue()


def test_perfmonitor_status_with_nothing_reported_yet():
    out = StringIO()
    call_command("perfmonitor_status", stdout=out)
    assert "No process has reported yet" in out.getvalue()


def test_non_staff_see_nothing(client, captured):
    response = client.get(url(PerformanceMetric, "changelist"))
    assert response.status_code == 302  # to the admin login


def test_compactions_bookkeeping_row_is_not_listed_as_a_metric(admin_client, captured):
    from perfmonitor.analytics.compaction import compact_rollups
    from perfmonitor.analytics.query import STATE_KIND

    compact_rollups()
    assert MetricRollup.objects.filter(kind=STATE_KIND).exists()
    listed = admin_client.get(url(MetricRollup, "changelist")).context["cl"].result_list
    assert listed and all(row.kind != STATE_KIND for row in listed)
