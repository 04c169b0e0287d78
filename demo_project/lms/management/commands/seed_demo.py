import time
from typing import Any

from django.core.management.base import BaseCommand

from demo_project.lms.seed import DEMO_PASSWORD, seed


class Command(BaseCommand):
    help = ("Create the demo LMS data set (20 teachers, 200 students, 40 courses, ~300 classes "
            "with bookings and payments). Idempotent: only missing objects are created.")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        result = seed()
        elapsed = time.perf_counter() - started
        if not result.total:
            self.stdout.write(f"Demo data already present ({elapsed:.1f}s).")
            return
        parts = ", ".join(f"{n} {name}" for name, n in result.created.items() if n)
        self.stdout.write(self.style.SUCCESS(f"Seeded {parts} in {elapsed:.1f}s."))
        self.stdout.write(f"Demo logins: student001 / {DEMO_PASSWORD}, "
                          f"teacher01 / {DEMO_PASSWORD}")
