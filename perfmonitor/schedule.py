"""django-celery-beat rows for perfmonitor's periodic tasks, created idempotently.

Runs after ``migrate`` (post_migrate) and from ``manage.py perfmonitor_setup``.
Existing rows keep the operator's edits (interval, enabled); only missing rows
are created.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Periodic:
    task: str
    every_seconds: int
    description: str


PERIODIC_TASKS: list[Periodic] = [
    Periodic("perfmonitor.prune_old_data", 3600, "Delete data past its retention."),
    Periodic("perfmonitor.compact_rollups", 60, "Merge minute rollups, build hour and day rows."),
    Periodic("perfmonitor.cleanup_stuck_journeys", 60, "Abandon journeys past their timeout."),
    Periodic("perfmonitor.evaluate_alert_rules", 60, "Evaluate alert rules (one claim per rule "
             "and minute) and send notifications."),
]


def ensure_periodic_tasks(**kwargs: Any) -> int:
    """Create missing PeriodicTask rows; returns how many were created."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    created = 0
    for item in PERIODIC_TASKS:
        if PeriodicTask.objects.filter(task=item.task).exists():
            continue
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=item.every_seconds, period=IntervalSchedule.SECONDS)
        _, was_created = PeriodicTask.objects.get_or_create(
            name=item.task, defaults={"task": item.task, "interval": interval,
                                      "description": item.description})
        created += int(was_created)
    return created


def on_post_migrate(sender: Any, app_config: Any = None, using: str = "default",
                    **kwargs: Any) -> None:
    from django.apps import apps

    if not apps.is_installed("django_celery_beat"):
        return
    with contextlib.suppress(Exception):  # beat tables may not exist yet in a partial migrate
        ensure_periodic_tasks()
