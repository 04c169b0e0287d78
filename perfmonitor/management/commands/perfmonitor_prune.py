from typing import Any

from django.core.management.base import BaseCommand

from perfmonitor.retention import prune


class Command(BaseCommand):
    help = "Delete raw rows and rollups older than their retention (see RAW_RETENTION_DAYS...)."

    def handle(self, *args: Any, **options: Any) -> None:
        for table, count in prune().items():
            self.stdout.write(f"{table}: {count} rows deleted")
