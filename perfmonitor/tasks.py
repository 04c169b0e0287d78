"""Celery tasks: thin wrappers over plain functions that tests call directly.

Names are ``perfmonitor.<verb_noun>``; ``perfmonitor.schedule`` creates their
django-celery-beat rows.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="perfmonitor.prune_old_data", ignore_result=True)
def prune_old_data() -> dict[str, Any]:
    from perfmonitor.retention import prune

    return prune()


@shared_task(name="perfmonitor.compact_rollups", ignore_result=True)
def compact_rollups() -> dict[str, Any]:
    from perfmonitor.analytics.compaction import compact_rollups as compact

    return compact().as_dict()


@shared_task(name="perfmonitor.cleanup_stuck_journeys", ignore_result=True)
def cleanup_stuck_journeys(now: str | None = None) -> dict[str, int]:
    """Abandon journeys past their timeout; ``now`` (ISO 8601) is for tests."""
    from datetime import datetime

    from perfmonitor.journeys.cleanup import cleanup_stuck_journeys as cleanup

    return cleanup(datetime.fromisoformat(now) if now else None)


@shared_task(name="perfmonitor.evaluate_alert_rules", ignore_result=True)
def evaluate_alert_rules(at: str | None = None) -> dict[str, Any]:
    """Evaluate every enabled alert rule for this minute (``at``, ISO 8601: a given minute)."""
    from datetime import datetime

    from perfmonitor.alerts.engine import evaluate_rules

    return evaluate_rules(datetime.fromisoformat(at) if at else None).as_dict()


@shared_task(name="perfmonitor.deliver_notification", bind=True, ignore_result=True,
             acks_late=True, reject_on_worker_lost=True, max_retries=None)
def deliver_notification(self: Any, notification_id: str) -> str:
    """One delivery attempt of an outbox row; retries itself with the row's backoff.

    acks_late: a worker killed mid-attempt leaves the message unacknowledged, so the
    broker hands it to another worker (the row's lease and idempotency key make the
    second attempt safe). Attempts are bounded by ALERT_NOTIFY_MAX_ATTEMPTS in the row.
    """
    from perfmonitor.alerts.outbox.delivery import deliver

    outcome = deliver(notification_id)
    if outcome.retry_in is not None and outcome.status in ("retry", "wait", "deferred"):
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status
