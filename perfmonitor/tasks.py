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
