from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from perfmonitor.conf import settings
from perfmonitor.retention import count_expired, prune


class Command(BaseCommand):
    help = ("Delete raw rows and rollups past their retention (RAW_RETENTION_DAYS, "
            "MINUTE_ROLLUP_RETENTION_DAYS, HOUR_ROLLUP_RETENTION_DAYS), in batches.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true",
                            help="Only count what would be deleted.")
        parser.add_argument("--batch-size", type=int, default=None,
                            help="Rows per DELETE (default: PRUNE_BATCH_SIZE).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["dry_run"]:
            for table, count in count_expired().items():
                self.stdout.write(f"{table}: {count} rows would be deleted")
            return
        batch = options["batch_size"] or settings.PRUNE_BATCH_SIZE
        for table, count in prune(batch_size=batch).items():
            self.stdout.write(f"{table}: {count} rows deleted")
