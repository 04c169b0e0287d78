"""perfmonitor.conf: one accessor, documented defaults, reloaded by override_settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import override_settings

from perfmonitor.conf import DEFAULTS, Setting, settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults_come_from_the_original_design():
    assert settings.SLOW_API_MS == 2000
    assert settings.SLOW_QUERY_MS == 500
    assert settings.HIGH_ERROR_RATE == 5.0
    assert settings.LOW_PERFORMANCE_SCORE == 70
    assert settings.BUNDLE_SIZE_BYTES == 2 * 1024 * 1024
    assert settings.N_PLUS_ONE_THRESHOLD == 5
    assert settings.FLUSH_INTERVAL == 1.0
    assert (settings.RAW_RETENTION_DAYS, settings.MINUTE_ROLLUP_RETENTION_DAYS,
            settings.HOUR_ROLLUP_RETENTION_DAYS) == (7, 14, 400)


def test_the_hosts_values_win_and_override_settings_reloads_them():
    before = settings.BATCH_SIZE
    with override_settings(PERFMONITOR={"BATCH_SIZE": 7}):
        assert settings.BATCH_SIZE == 7
        assert settings.SLOW_API_MS == 2000  # untouched keys keep their default
        with override_settings(PERFMONITOR={"BATCH_SIZE": 9}):
            assert settings.BATCH_SIZE == 9
        assert settings.BATCH_SIZE == 7
    assert before == settings.BATCH_SIZE


def test_pytest_django_settings_fixture_reloads_too(settings_fixture_value):
    assert settings.SLOW_QUERY_MS == 123


@pytest.fixture
def settings_fixture_value(settings):
    settings.PERFMONITOR = {"SLOW_QUERY_MS": 123}


def test_unknown_names_are_an_attribute_error():
    with pytest.raises(AttributeError, match="SAMPLE_RATIO"):
        settings.SAMPLE_RATIO  # noqa: B018


def test_unknown_host_keys_are_ignored_by_the_accessor():
    with override_settings(PERFMONITOR={"NOT_A_KEY": 1, "SAMPLE_RATE": 0.5}):
        assert settings.SAMPLE_RATE == 0.5
        assert not hasattr(settings, "NOT_A_KEY")


def test_every_setting_has_a_type_a_doc_and_a_fitting_default():
    for name, spec in DEFAULTS.items():
        assert isinstance(spec, Setting)
        assert name.isupper() and spec.doc.strip(), name
        assert spec.default is None and spec.nullable or isinstance(spec.default, spec.types), name


def test_every_setting_and_check_is_in_the_readme():
    text = README.read_text()
    headings = set(re.findall(r"^#{3,4} `?([A-Z0-9_]+)`?(?:\s|$)", text, re.M))
    missing = sorted(set(DEFAULTS) - headings)
    assert not missing, f"README has no '### KEY' heading for {missing}"
    from perfmonitor import checks

    for check_id in re.findall(r"perfmonitor\.[EW]\d{3}", checks.__doc__):
        assert check_id in text, check_id
