"""SMS through a pluggable backend (``ALERT_SMS_BACKEND``).

The default :class:`HttpSmsBackend` POSTs ``{"to", "from", "body"}`` as JSON
to ``ALERT_SMS_API_URL`` (bearer ``ALERT_SMS_API_TOKEN``), one request per
number, each with ``Idempotency-Key: <key>:<n>`` so a retry after a partial
failure does not text anyone twice at a provider that honours the key.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from perfmonitor.alerts.notifiers import DeliveryResult, post_json, split_targets
from perfmonitor.conf import settings

if TYPE_CHECKING:
    from perfmonitor.models import NotificationChannel

PHONE = re.compile(r"^\+[1-9]\d{6,14}$")
MAX_LENGTH = 320


class HttpSmsBackend:
    def __init__(self, api_url: str | None = None, token: str | None = None) -> None:
        self.api_url = api_url or settings.ALERT_SMS_API_URL
        self.token = token if token is not None else settings.ALERT_SMS_API_TOKEN

    def send(self, numbers: list[str], text: str, idempotency_key: str,
             timeout: float) -> DeliveryResult:
        if not self.api_url:
            return DeliveryResult.failure("ALERT_SMS_API_URL is not set", retryable=False)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        last = DeliveryResult.success()
        for index, number in enumerate(numbers):
            result = post_json(self.api_url, {"to": number, "from": settings.ALERT_SMS_FROM,
                                              "body": text},
                               {**headers, "Idempotency-Key": f"{idempotency_key}:{index}"},
                               timeout)
            if not result.ok:
                return result
            last = result
        return last


def sms_text(message: dict[str, Any]) -> str:
    text = f"{message['title']}: {message['alert']['annotations']['summary']}"
    return text if len(text) <= MAX_LENGTH else text[: MAX_LENGTH - 1] + "…"


def send(channel: NotificationChannel, message: dict[str, Any], key: str,
         timeout: float) -> DeliveryResult:
    backend_class = settings.import_object("ALERT_SMS_BACKEND")
    options = channel.settings or {}
    backend = backend_class(api_url=options.get("api_url")) if options.get("api_url") \
        else backend_class()
    return backend.send(split_targets(channel.target), sms_text(message), key, timeout)
