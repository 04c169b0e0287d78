"""Email through Django's mail framework (``EMAIL_BACKEND``).

Mail has no idempotency header, so the key becomes the ``Message-ID``: a
retried send of the same notification carries the same id, which mail
systems use to drop duplicates.
"""

from __future__ import annotations

import smtplib
from typing import TYPE_CHECKING, Any

from django.conf import settings as django_settings
from django.core.mail import EmailMultiAlternatives
from django.utils.html import escape

from perfmonitor.alerts.notifiers import DeliveryResult, split_targets
from perfmonitor.conf import settings

if TYPE_CHECKING:
    from perfmonitor.models import NotificationChannel


def render(message: dict[str, Any]) -> tuple[str, str, str]:
    alert = message["alert"]
    lines = [alert["annotations"]["summary"], ""]
    lines += [f"{k}: {v}" for k, v in sorted(alert["labels"].items())]
    for name in ("description", "runbook_url"):
        if alert["annotations"].get(name):
            lines += ["", f"{name}: {alert['annotations'][name]}"]
    if alert.get("url"):
        lines += ["", f"Open: {alert['url']}"]
    text = "\n".join(lines)
    html = "<p><strong>" + escape(alert["annotations"]["summary"]) + "</strong></p><ul>" + \
        "".join(f"<li>{escape(k)}: {escape(v)}</li>" for k, v in sorted(alert["labels"].items())) \
        + "</ul>" + (f'<p><a href="{escape(alert["url"])}">Open the alert</a></p>'
                     if alert.get("url") else "")
    return message["title"], text, html


def send(channel: NotificationChannel, message: dict[str, Any], key: str,
         timeout: float) -> DeliveryResult:
    subject, text, html = render(message)
    sender = settings.ALERT_EMAIL_FROM or django_settings.DEFAULT_FROM_EMAIL
    mail = EmailMultiAlternatives(subject, text, sender, split_targets(channel.target),
                                  headers={"Message-ID": f"<{key}@perfmonitor>",
                                           "X-Idempotency-Key": key})
    mail.attach_alternative(html, "text/html")
    try:
        mail.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        return DeliveryResult.failure(f"recipients refused: {exc}", retryable=False)
    except (smtplib.SMTPException, OSError) as exc:
        return DeliveryResult.failure(f"mail error: {exc!r}", retryable=True)
    return DeliveryResult.success()
