"""Print, as JSON, what perfmonitor recorded during a benchmark run (perfmonitor profile).

run.py compares the request counts of the minute rollups with the requests it sent,
so a monitor that silently dropped work cannot look cheap.
"""

import json

from django.core.management.base import BaseCommand
from django.db.models import Sum


class Command(BaseCommand):
    help = "Request counts per route from perfmonitor's rollups, and its health counters."

    def handle(self, *args, **options) -> None:
        from perfmonitor.models import MetricRollup, MonitorHealth

        routes = (MetricRollup.objects.filter(kind="request").values("name")
                  .annotate(count=Sum("count")).order_by("name"))
        health = MonitorHealth.objects.aggregate(
            captured=Sum("captured"), flushed=Sum("flushed"), dropped=Sum("dropped"),
            flush_errors=Sum("flush_errors"), internal_errors=Sum("internal_errors"))
        self.stdout.write(json.dumps({
            "request_rollup_counts": {r["name"]: r["count"] for r in routes},
            "health": health,
        }))
