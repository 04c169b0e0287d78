import json
from typing import Any

from django.core.management.base import BaseCommand

from perfmonitor.health import health_report


class Command(BaseCommand):
    help = "Show the monitor's own health per process: captured, flushed, dropped, errors."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        report = health_report()
        if options["json"]:
            self.stdout.write(json.dumps(report, default=str, indent=2))
            return
        header = f"{'process':32} {'alive':5} {'captured':>10} {'flushed':>10} {'dropped':>8} " \
                 f"{'errors':>6} {'buffer':>6} {'last flush':>10}"
        self.stdout.write(header)
        for p in report["processes"]:
            age = p["last_flush_age_seconds"]
            self.stdout.write(
                f"{p['process'][:32]:32} {'yes' if p['alive'] else 'no':5} {p['captured']:>10} "
                f"{p['flushed']:>10} {p['dropped']:>8} {p['flush_errors']:>6} "
                f"{p['buffer_size']:>6} {(f'{age:.0f}s ago' if age is not None else '-'):>10}")
            if p["last_error"]:
                self.stdout.write(f"    last error: {p['last_error']}")
        totals = report["totals"]
        self.stdout.write(
            f"live processes: captured {totals['captured']}, flushed {totals['flushed']}, "
            f"dropped {totals['dropped']}, flush errors {totals['flush_errors']}")
