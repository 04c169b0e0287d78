"""Template helpers of the demo LMS."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template
from django.template import Template, TemplateSyntaxError
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_CLIENT_SOURCE = "{% load perfmonitor %}{% perfmonitor_script %}"
_client: list[Template | None] = []


def _client_template() -> Template | None:
    if not _client:
        try:
            _client.append(Template(_CLIENT_SOURCE))
        except TemplateSyntaxError:  # perfmonitor's tag library is not there yet
            _client.append(None)
    return _client[0]


@register.simple_tag(takes_context=True)
def monitoring_client(context: template.Context) -> SafeString:
    """Render perfmonitor's browser client, or nothing while its tag library is missing."""
    tpl = _client_template()
    if tpl is None:
        return mark_safe("")
    try:
        return mark_safe(tpl.render(context))
    except Exception:  # monitoring never breaks a page
        return mark_safe("")


@register.filter
def money(value: Any, currency: str = "EUR") -> str:
    if value is None:
        return "-"
    amount = Decimal(value).quantize(Decimal("0.01"))
    symbol = {"EUR": "€", "USD": "$", "GBP": "£"}.get(currency, currency + " ")
    return f"{symbol}{amount:,}"


@register.filter
def seats_left(session: Any) -> int:
    taken = getattr(session, "seats_taken", 0) or 0
    return max(session.capacity - taken, 0)
