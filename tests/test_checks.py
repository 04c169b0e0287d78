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


# -- the collect API -------------------------------------------------------------------------

def test_the_collect_settings_of_the_tests_are_clean():
    from perfmonitor.checks import check_collect

    assert check_collect() == []


@pytest.mark.parametrize("rate", ["600/min", "10/s", "1000/hour", "5/d", "600 / Minute", ""])
def test_e008_valid_throttle_rates_pass(rate):
    from perfmonitor.checks import check_collect

    with override_settings(PERFMONITOR={"COLLECT_THROTTLE_RATE": rate}):
        assert check_collect() == []


@pytest.mark.parametrize("rate", ["600", "600/fortnight", "six/min", "600/", "-5/min",
                                  "600/min/2", "1.5/s"])
def test_e008_a_malformed_throttle_rate_is_an_error(rate):
    from perfmonitor.checks import check_collect

    with override_settings(PERFMONITOR={"COLLECT_THROTTLE_RATE": rate}):
        [error] = check_collect()
    assert error.id == "perfmonitor.E008"
    assert repr(rate) in error.msg and "not throttled" in error.msg
    assert "'600/min'" in error.hint


@pytest.mark.parametrize("origins", [
    [], ["https://lms.example.com"], ("http://localhost:8000", "https://LMS.example.com/"),
    ["http://[::1]:8000", "https://127.0.0.1"],
])
def test_e009_origins_pass(origins):
    from perfmonitor.checks import check_collect

    with override_settings(PERFMONITOR={"ALLOWED_ORIGINS": origins}):
        assert check_collect() == []


@pytest.mark.parametrize(("origin", "words"), [
    ("lms.example.com", "does not start with http:// or https://"),
    ("ftp://lms.example.com", "does not start with http:// or https://"),
    ("https://lms.example.com/courses/", "has a path"),
    ("https://lms.example.com?x=1", "has a path"),
    ("https://*.example.com", "no host"),
    ("*", "does not start with http"),
    ("https://", "no host"),
    ("https://lms.example.com:port", "not a URL"),
    ("https://user@lms.example.com", "user name"),
    (42, "a int, not a string"),
])
def test_e009_something_that_is_not_an_origin_is_an_error(origin, words):
    from perfmonitor.checks import check_collect

    with override_settings(PERFMONITOR={"ALLOWED_ORIGINS": ["https://ok.example", origin]}):
        [error] = check_collect()
    assert error.id == "perfmonitor.E009"
    assert repr(origin) in error.msg and words in error.msg
    assert "https://lms.example.com" in error.hint


LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
DUMMY = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
REDIS = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                     "LOCATION": "redis://127.0.0.1:6379"}}


def deploy_ids(**overrides) -> list[str]:
    with override_settings(**overrides):
        return [m.id for m in checks.run_checks(include_deployment_checks=True)
                if m.id.startswith("perfmonitor.")]


def test_w010_throttling_in_a_per_process_cache_warns_in_deploy_checks_only():
    assert "perfmonitor.W010" in deploy_ids(CACHES=LOCMEM)
    assert "perfmonitor.W010" in deploy_ids(CACHES=DUMMY)
    with override_settings(CACHES=LOCMEM):
        assert "perfmonitor.W010" not in {m.id for m in checks.run_checks()}


def test_w010_a_shared_cache_or_no_throttling_does_not_warn():
    assert "perfmonitor.W010" not in deploy_ids(CACHES=REDIS)
    assert "perfmonitor.W010" not in deploy_ids(
        CACHES=LOCMEM, PERFMONITOR={"COLLECT_THROTTLE_RATE": ""})


def test_w010_names_the_cache_and_the_way_out():
    from perfmonitor.checks import check_collect_throttle_cache

    with override_settings(CACHES=LOCMEM):
        [warning] = check_collect_throttle_cache()
    assert "LocMemCache" in warning.msg and "per process" in warning.msg
    assert "Redis" in warning.hint and "perfmonitor.W010" in warning.hint


def test_w011_a_missing_compiled_request_path_warns_in_deploy_checks_only(monkeypatch):
    from perfmonitor.capture import query_hook

    monkeypatch.setattr(query_hook, "IMPLEMENTATION", "python")
    monkeypatch.setattr(query_hook, "PURE_PYTHON_REQUESTED", False)
    assert "perfmonitor.W011" in deploy_ids()
    assert "perfmonitor.W011" not in {m.id for m in checks.run_checks()}
    monkeypatch.setattr(query_hook, "PURE_PYTHON_REQUESTED", True)  # chosen: no warning
    assert "perfmonitor.W011" not in deploy_ids()
    monkeypatch.setattr(query_hook, "IMPLEMENTATION", "compiled")
    monkeypatch.setattr(query_hook, "PURE_PYTHON_REQUESTED", False)
    assert "perfmonitor.W011" not in deploy_ids()
