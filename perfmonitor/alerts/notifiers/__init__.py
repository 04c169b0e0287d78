"""Notifiers: one module per channel type, each with ``send(channel, message, key, timeout)``.

A notifier never raises for a delivery problem: it returns a
:class:`DeliveryResult` that says whether it worked and whether a retry can
help (network errors, 5xx, 429 can; other 4xx cannot).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.utils import getaddresses
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

if TYPE_CHECKING:
    from perfmonitor.models import NotificationChannel

USER_AGENT = "perfmonitor-alerts/1"
EXCERPT = 300


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    retryable: bool = False
    status_code: int | None = None
    error: str = ""
    response: str = ""
    retry_after: float | None = None

    @classmethod
    def success(cls, status_code: int | None = None, response: str = "") -> DeliveryResult:
        return cls(True, status_code=status_code, response=response[:EXCERPT])

    @classmethod
    def failure(cls, error: str, *, retryable: bool, status_code: int | None = None,
                response: str = "", retry_after: float | None = None) -> DeliveryResult:
        return cls(False, retryable, status_code, error[:2000], response[:EXCERPT], retry_after)


class Notifier(Protocol):
    def __call__(self, channel: NotificationChannel, message: dict[str, Any], key: str,
                 timeout: float) -> DeliveryResult: ...


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def classify_status(status: int, body: str, retry_after: str | None = None) -> DeliveryResult:
    """2xx delivered; 429 and 5xx retried; any other 4xx is final (retrying cannot help)."""
    if 200 <= status < 300:
        return DeliveryResult.success(status, body)
    retryable = status == 429 or status >= 500
    return DeliveryResult.failure(f"HTTP {status}", retryable=retryable, status_code=status,
                                  response=body, retry_after=_retry_after(retry_after))


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> DeliveryResult:
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": USER_AGENT, **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            text = response.read(4096).decode("utf-8", "replace")
            return classify_status(response.status, text)
    except urllib.error.HTTPError as exc:
        text = exc.read(4096).decode("utf-8", "replace") if exc.fp else ""
        return classify_status(exc.code, text, exc.headers.get("Retry-After"))
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return DeliveryResult.failure(f"network error: {reason}", retryable=True)


def post_json(url: str, payload: Any, headers: dict[str, str], timeout: float) -> DeliveryResult:
    return post(url, canonical_json(payload), headers, timeout)


def canonical_json(payload: Any) -> bytes:
    """Byte-identical on every attempt (sorted keys, no whitespace)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def get_notifier(channel_type: str) -> Notifier:
    from perfmonitor.alerts.notifiers import email, in_app, slack, sms, webhook

    return {"email": email.send, "slack": slack.send, "webhook": webhook.send, "sms": sms.send,
            "in_app": in_app.send}[channel_type]


def split_targets(target: str) -> list[str]:
    return [part.strip() for part in (target or "").replace(";", ",").split(",") if part.strip()]


def validate_channel(channel: NotificationChannel) -> None:
    from perfmonitor.alerts.notifiers.sms import PHONE
    from perfmonitor.alerts.notifiers.webhook import secret_error

    errors: dict[str, list[str]] = {}
    kind, target = channel.type, (channel.target or "").strip()
    if kind in ("slack", "webhook"):
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            errors["target"] = [f"A {kind} channel needs an http(s) URL, not {target!r}."]
    elif kind == "email":
        addresses = [addr for _, addr in getaddresses(split_targets(target))]
        if not addresses or not all("@" in a for a in addresses):
            errors["target"] = ["List one or more email addresses, comma separated."]
    elif kind == "sms":
        numbers = split_targets(target)
        bad = [n for n in numbers if not PHONE.match(n)]
        if not numbers or bad:
            errors["target"] = [f"List phone numbers in E.164 form (+4915112345678); "
                                f"not valid: {', '.join(bad) or '(none given)'}."]
    elif kind != "in_app":
        errors["type"] = [f"Unknown channel type {kind!r}."]
    if kind == "webhook":
        problem = secret_error(channel.secret)
        if problem:
            errors["secret"] = [problem]
    if not isinstance(channel.settings, dict):
        errors["settings"] = ["settings must be an object."]
    elif not isinstance(channel.settings.get("headers", {}), dict):
        errors["settings"] = ["settings.headers must be an object of header name to value."]
    if errors:
        raise ValidationError(errors)
