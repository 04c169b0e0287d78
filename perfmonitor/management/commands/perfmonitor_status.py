import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from perfmonitor.capture import query_hook
from perfmonitor.health import health_report


def request_path() -> str:
    """Which request path this install runs (as this command's process loaded it)."""
    if query_hook.IMPLEMENTATION == "compiled":
        return "compiled (perfmonitor.capture._speedups)"
    if query_hook.PURE_PYTHON_REQUESTED:
        return "Python (PERFMONITOR_PURE_PYTHON is set)"
    return "Python (the compiled module is not installed: see perfmonitor.W011)"


def _age(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.0f}s ago"


class Command(BaseCommand):
    help = ("Show the monitor's own health per process: captured, flushed, dropped, "
            "flush errors, buffer size and last flush age; and whether this install's "
            "request path is compiled.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        report = health_report()
        report.pop("this_process", None)  # this command's own process captures nothing
        report["request_path"] = request_path()
        if options["json"]:
            self.stdout.write(json.dumps(report, default=str, indent=2))
            return
        self.stdout.write(f"Request path: {report['request_path']}")
        if not report["processes"]:
            self.stdout.write("No process has reported yet (the flusher writes its health "
                              "every few seconds once it has captured something).")
            return
        self.stdout.write(f"{'process':32} {'alive':5} {'captured':>10} {'flushed':>10} "
                          f"{'dropped':>8} {'errors':>6} {'buffer':>6} {'last flush':>11}")
        for p in report["processes"]:
            self.stdout.write(
                f"{p['process'][:32]:32} {'yes' if p['alive'] else 'no':5} {p['captured']:>10} "
                f"{p['flushed']:>10} {p['dropped']:>8} {p['flush_errors']:>6} "
                f"{p['buffer_size']:>6} {_age(p['last_flush_age_seconds']):>11}")
            if p["last_error"]:
                self.stdout.write(f"    last error: {p['last_error']}")
        totals = report["totals"]
        self.stdout.write(
            f"{report['live_processes']} live process(es): captured {totals['captured']}, "
            f"flushed {totals['flushed']}, dropped {totals['dropped']}, "
            f"flush errors {totals['flush_errors']}")
