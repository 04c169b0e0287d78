"""``manage.py perfmonitor_report --window 7d --format json|csv|html [--output FILE]``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from perfmonitor.analytics.query import Window, WindowError, parse_span
from perfmonitor.analytics.reports import build_report, render
from perfmonitor.capture.context import capture_suppressed

BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Write the performance report for a window as JSON, CSV or printable HTML."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--window", default="7d", help="15m, 6h, 7d, 2w ... (default 7d)")
        parser.add_argument("--format", default="json", choices=("json", "csv", "html"))
        parser.add_argument("--output", "-o", help="File to write (default: standard output)")
        parser.add_argument("--no-progress", action="store_true",
                            help="No progress bar (it goes to stderr, on long windows only)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            window = Window.last(parse_span(options["window"]))
        except WindowError as exc:
            raise CommandError(f"--window: {exc}") from exc
        show = not options["no_progress"] and window.span.days >= 1
        with capture_suppressed():
            report = build_report(window, progress=self._bar if show else None)
        if show:
            self.stderr.write("")
        body, _content_type, _filename = render(report, options["format"])
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as handle:
                handle.write(body)
            self.stderr.write(f"wrote {options['output']} ({len(body):,} bytes)")
        else:
            self.stdout.write(body, ending="" if body.endswith("\n") else "\n")

    def _bar(self, done: int, total: int, label: str) -> None:
        filled = round(BAR_WIDTH * done / total)
        self.stderr.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} "
                          f"{label:<16}", ending="")
        self.stderr.flush()
