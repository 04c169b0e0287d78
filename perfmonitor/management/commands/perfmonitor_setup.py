from typing import Any

from django.core.management.base import BaseCommand

from perfmonitor.schedule import ensure_periodic_tasks


class Command(BaseCommand):
    help = "Create perfmonitor's django-celery-beat periodic tasks (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        created = ensure_periodic_tasks()
        self.stdout.write(f"{created} periodic task(s) created")
