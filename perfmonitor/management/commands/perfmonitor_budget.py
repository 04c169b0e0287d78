"""``manage.py perfmonitor_budget [--window 24h] [--json] [--strict]``: a CI gate.

Exits 1 when a configured budget (PERFMONITOR["BUDGETS"]) is exceeded, 2 when
``--strict`` and a budget has no data, 0 otherwise.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from perfmonitor.analytics.budgets import BudgetError, check_budgets
from perfmonitor.analytics.query import Window, WindowError, parse_span
from perfmonitor.capture.context import capture_suppressed


class Command(BaseCommand):
    help = "Check the performance budgets over a window; exit 1 when one is exceeded."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--window", default="24h")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON")
        parser.add_argument("--strict", action="store_true",
                            help="A budget without data in the window fails too (exit 2)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            window = Window.last(parse_span(options["window"]))
        except WindowError as exc:
            raise CommandError(f"--window: {exc}") from exc
        try:
            with capture_suppressed():
                report = check_budgets(window)
        except BudgetError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        elif not report.checks:
            self.stdout.write("No budgets configured (PERFMONITOR['BUDGETS']).")
        else:
            for check in report.checks:
                actual = "no data" if check.actual is None else f"{check.actual:,.4g}"
                self.stdout.write(f"{check.status.upper():<9} {check.budget:<13} "
                                  f"{check.target:<40} {actual:>12} / {check.limit:,.4g} "
                                  f"{check.unit}")
            self.stdout.write(f"{len(report.exceeded)} exceeded, {len(report.missing)} without "
                              f"data, {len(report.checks)} checked over {options['window']}.")
        if report.exceeded:
            sys.exit(1)
        if options["strict"] and report.missing:
            sys.exit(2)
