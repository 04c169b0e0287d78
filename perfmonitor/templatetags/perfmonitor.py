"""``{% load perfmonitor %}{% perfmonitor_script %}``: the browser client with its config.

Renders the configuration as a JSON script element (not executed, so a strict
Content-Security-Policy needs no ``unsafe-inline``) and the classic script, which
reads it and starts. The only key in it is the public write key, when set.
Place it in ``<head>`` so API calls and errors of early scripts are seen; pass
``nonce=...`` when your CSP uses nonces.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from perfmonitor.conf import settings

register = template.Library()


def client_config() -> dict[str, Any]:
    return {
        "collectUrl": reverse("perfmonitor:collect"),
        "sampleRate": settings.CLIENT_SAMPLE_RATE,
        "writeKey": settings.WRITE_KEY,
        "queryAllowlist": list(settings.URL_QUERY_ALLOWLIST),
        "vitalWeights": dict(settings.VITAL_WEIGHTS),
    }


@register.inclusion_tag("perfmonitor/script.html")
def perfmonitor_script(nonce: str = "", **overrides: Any) -> dict[str, Any]:
    """Overrides (e.g. ``flushInterval=2000``) are merged into the client config."""
    config = client_config()
    config.update(overrides)
    return {"perfmonitor_config": config, "nonce": nonce}
