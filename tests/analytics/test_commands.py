"""perfmonitor_report and perfmonitor_budget, as an operator and a CI pipeline use them."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from tests.analytics.conftest import push_values


def seed_page(js_bytes: float, lcp: float) -> None:
    at = timezone.now() - timedelta(minutes=5)
    push_values("resource", "/checkout/", [js_bytes] * 3, at, dimension="js_transfer")
    push_values("resource", "/checkout/", [20_000.0] * 3, at, dimension="css_transfer")
    push_values("vital", "LCP", [lcp] * 5, at, dimension="/checkout/")
    push_values("request", "/checkout/", [150.0] * 20, at, dimension="POST")


@pytest.mark.django_db
def test_report_command_writes_html_with_a_progress_bar(tmp_path):
    seed_page(500_000, 1500)
    out, err = StringIO(), StringIO()
    target = tmp_path / "weekly.html"
    call_command("perfmonitor_report", "--window", "7d", "--format", "html", "--output",
                 str(target), stdout=out, stderr=err)
    html = target.read_text()
    assert html.startswith("<!doctype html>") and "<svg" in html and "/checkout/" in html
    assert "[##############################] 11/11" in err.getvalue()


@pytest.mark.django_db
def test_report_command_prints_csv_and_json(capsys):
    seed_page(500_000, 1500)
    out = StringIO()
    call_command("perfmonitor_report", "--window", "1h", "--format", "json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["web_vitals"]["pages"][0]["page"] == "/checkout/"
    out = StringIO()
    call_command("perfmonitor_report", "--window", "1h", "--format", "csv", stdout=out)
    assert out.getvalue().splitlines()[0] == "section,item,metric,value,unit"
    with pytest.raises(CommandError, match="--window"):
        call_command("perfmonitor_report", "--window", "soon")


BUDGETS = {"bundle_bytes": {"*": 1_000_000}, "vitals_p75": {"LCP": 2500},
           "route_p95_ms": {"/checkout/": 300}}


@pytest.mark.django_db
def test_budget_command_passes_within_budget():
    seed_page(500_000, 1500)
    out = StringIO()
    with override_settings(PERFMONITOR={"BACKGROUND_FLUSH": False, "BUDGETS": BUDGETS}):
        call_command("perfmonitor_budget", "--window", "1h", stdout=out)
    assert "0 exceeded" in out.getvalue() and "OK" in out.getvalue()


@pytest.mark.django_db
def test_budget_command_exits_non_zero_when_a_budget_is_exceeded():
    seed_page(1_800_000, 3200)
    out = StringIO()
    with override_settings(PERFMONITOR={"BACKGROUND_FLUSH": False, "BUDGETS": BUDGETS}), \
            pytest.raises(SystemExit) as exit_info:
        call_command("perfmonitor_budget", "--window", "1h", "--json", stdout=out)
    assert exit_info.value.code == 1
    result = json.loads(out.getvalue())
    exceeded = {c["budget"] for c in result["checks"] if c["status"] == "exceeded"}
    assert exceeded == {"bundle_bytes", "vitals_p75"}


@pytest.mark.django_db
def test_budget_command_strict_fails_on_missing_data_and_rejects_bad_config():
    with override_settings(PERFMONITOR={"BACKGROUND_FLUSH": False, "BUDGETS": BUDGETS}), \
            pytest.raises(SystemExit) as exit_info:
        call_command("perfmonitor_budget", "--strict", stdout=StringIO())
    assert exit_info.value.code == 2
    with override_settings(PERFMONITOR={"BACKGROUND_FLUSH": False,
                                        "BUDGETS": {"vitals_p75": {"LCQ": 1}}}), \
            pytest.raises(CommandError, match="unknown vital"):
        call_command("perfmonitor_budget", stdout=StringIO())
