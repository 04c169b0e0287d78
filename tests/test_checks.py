"""A broken install or configuration is reported by a system check with a stable id."""

from __future__ import annotations

import pytest
from django.core import checks
from django.test import override_settings

from perfmonitor.capture.middleware import PerformanceMiddleware
from perfmonitor.checks import MIDDLEWARE_PATH, check_middleware, check_settings

SECURITY = "django.middleware.security.SecurityMiddleware"
SESSIONS = "django.contrib.sessions.middleware.SessionMiddleware"
AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def test_the_test_settings_are_clean():
    assert check_middleware() == []
    assert check_settings() == []


def test_every_default_passes_its_own_checks():
    from perfmonitor.conf import DEFAULTS

    with override_settings(PERFMONITOR={k: s.default for k, s in DEFAULTS.items()}):
        assert check_settings() == []


@override_settings(MIDDLEWARE=[SECURITY, SESSIONS])
def test_e001_middleware_missing():
    [error] = check_middleware()
    assert error.id == "perfmonitor.E001"
    assert MIDDLEWARE_PATH in error.hint


@override_settings(MIDDLEWARE=[SECURITY, SESSIONS], PERFMONITOR={"ENABLED": False})
def test_no_e001_when_capture_is_switched_off():
    assert check_middleware() == []


@override_settings(MIDDLEWARE=[SECURITY, MIDDLEWARE_PATH, SESSIONS, MIDDLEWARE_PATH])
def test_e002_middleware_twice():
    assert ids(check_middleware()) == ["perfmonitor.E002"]


@override_settings(MIDDLEWARE=[SECURITY, SESSIONS, AUTH, MIDDLEWARE_PATH])
def test_w003_middleware_below_session_and_auth():
    [warning] = check_middleware()
    assert warning.id == "perfmonitor.W003"
    assert warning.level == checks.WARNING
    assert SESSIONS in warning.msg and AUTH in warning.msg


class HostMiddleware(PerformanceMiddleware):  # a host's subclass counts as ours
    pass


@override_settings(MIDDLEWARE=[SECURITY, "tests.test_checks.HostMiddleware", SESSIONS])
def test_a_subclass_of_the_middleware_counts():
    assert check_middleware() == []


@override_settings(PERFMONITOR=["SAMPLE_RATE", 0.5])
def test_e004_not_a_dict():
    assert ids(check_settings()) == ["perfmonitor.E004"]


@override_settings(PERFMONITOR={"SAMPLE_RATIO": 0.5, "sample_rate": 0.2, "ZZZ": 1})
def test_e005_unknown_keys_with_a_did_you_mean_hint():
    errors = check_settings()
    assert ids(errors) == ["perfmonitor.E005"] * 3
    assert errors[0].hint == "Did you mean 'SAMPLE_RATE'?"
    assert errors[1].hint == "Did you mean 'SAMPLE_RATE'?"
    assert "README" in errors[2].hint


@pytest.mark.parametrize("key, value", [
    ("SAMPLE_RATE", "10%"), ("BATCH_SIZE", 10.5), ("BUFFER_SIZE", True), ("ENABLED", 1),
    ("IGNORE_PATHS", "/static/"), ("IGNORE_PATHS", ["/static/", 3]),
    ("APDEX_T_BY_ROUTE", {"/x/": "fast"}), ("WRITE_KEY", 12),
])
def test_e006_wrong_types(key, value):
    with override_settings(PERFMONITOR={key: value}):
        [error] = check_settings()
    assert error.id == "perfmonitor.E006"
    assert key in error.msg


@pytest.mark.parametrize("key, value", [
    ("SAMPLE_RATE", 1.5), ("SAMPLE_RATE", -0.1), ("CLIENT_SAMPLE_RATE", 2),
    ("FLUSH_INTERVAL", 0), ("BUFFER_SIZE", 0), ("N_PLUS_ONE_THRESHOLD", 1),
    ("RAW_RETENTION_DAYS", 0), ("HIGH_ERROR_RATE", 101), ("COLLECT_MAX_EVENTS", 0),
])
def test_e007_out_of_range(key, value):
    with override_settings(PERFMONITOR={key: value}):
        [error] = check_settings()
    assert error.id == "perfmonitor.E007"
    assert repr(value) in error.msg


def test_nullable_settings_accept_none():
    with override_settings(PERFMONITOR={"WRITE_KEY": None}):
        assert check_settings() == []


def test_checks_run_through_djangos_framework():
    with override_settings(MIDDLEWARE=[SECURITY], PERFMONITOR={"SAMPLE_RATIO": 1}):
        found = {m.id for m in checks.run_checks() if m.id.startswith("perfmonitor.")}
    assert {"perfmonitor.E001", "perfmonitor.E005"} <= found


def test_e020_a_bad_journey_definition_is_reported_by_djangos_check_run():
    with override_settings(PERFMONITOR={"JOURNEY_TYPES": {"login": {"steps": "not a list"}}}):
        found = [m for m in checks.run_checks() if m.id == "perfmonitor.E020"]
    assert len(found) == 1
