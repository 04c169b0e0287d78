"""{% perfmonitor_script %}: the client and its configuration, nothing secret."""

from __future__ import annotations

import json
import re

from django.template import engines

from perfmonitor.capture.buffer import buffer


def render(source: str) -> str:
    return engines["django"].from_string(source).render({})


def config_of(html: str) -> dict:
    match = re.search(r'<script id="perfmonitor-config" type="application/json">(.*?)</script>',
                      html, re.S)
    assert match, html
    return json.loads(match.group(1))


def test_the_tag_renders_the_config_and_the_classic_script(settings):
    settings.PERFMONITOR = {**settings.PERFMONITOR, "CLIENT_SAMPLE_RATE": 0.25,
                            "WRITE_KEY": "pk_public_1", "URL_QUERY_ALLOWLIST": ["page"],
                            "METRICS_BEARER_TOKEN": "server-secret"}
    html = render("{% load perfmonitor %}{% perfmonitor_script %}")
    config = config_of(html)
    assert config["collectUrl"] == "/perfmonitor/api/v1/collect"
    assert config["sampleRate"] == 0.25
    assert config["writeKey"] == "pk_public_1"
    assert config["queryAllowlist"] == ["page"]
    assert '<script src="/static/perfmonitor/perfmonitor.js"></script>' in html
    assert "server-secret" not in html and "perfmonitor-tests" not in html  # SECRET_KEY


def test_options_and_a_csp_nonce_can_be_passed():
    html = render('{% load perfmonitor %}'
                  '{% perfmonitor_script nonce="abc123" flushInterval=2000 %}')
    assert config_of(html)["flushInterval"] == 2000
    assert 'nonce="abc123"' in html


def test_the_config_cannot_break_out_of_its_script_element(settings):
    settings.PERFMONITOR = {**settings.PERFMONITOR, "WRITE_KEY": "</script><script>alert(1)"}
    html = render("{% load perfmonitor %}{% perfmonitor_script %}")
    assert "</script><script>alert(1)" not in html
    assert config_of(html)["writeKey"] == "</script><script>alert(1)"


def test_rendering_the_tag_records_nothing():
    render("{% load perfmonitor %}{% perfmonitor_script %}")
    assert len(buffer) == 0
