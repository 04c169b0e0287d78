"""Template helpers of the demo LMS."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template

register = template.Library()


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
