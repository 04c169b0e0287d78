import json
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from demo_project.lms.traffic import TrafficGenerator


class Command(BaseCommand):
    help = ("Drive realistic visitor traffic at a running demo site (browsing, logins, "
            "bookings and payments, registrations, reports, mistakes and abandoned flows). "
            "Only the given base URL is requested.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--duration", type=float, default=0.0,
                            help="Seconds to run; 0 runs until interrupted.")
        parser.add_argument("--rps", type=float, default=5.0, help="Requests per second, at most.")
        parser.add_argument("--concurrency", type=int, default=3, help="Visitor threads.")
        parser.add_argument("--seed", type=int, default=None, help="Seed for repeatable runs.")
        parser.add_argument("--wait", type=float, default=60.0,
                            help="Seconds to wait for the site to answer before starting.")
        parser.add_argument("--browser-interval", type=float, default=0.0,
                            help="Seconds between visits of a headless Chromium (real Web "
                                 "Vitals from the browser client); 0: no browser.")
        parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            generator = TrafficGenerator(options["base_url"], rps=options["rps"],
                                         concurrency=options["concurrency"], seed=options["seed"],
                                         log=self.stdout.write,
                                         browser_interval=options["browser_interval"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: generator.stop())
        if not generator.wait_for_server(options["wait"]):
            raise CommandError(f"{options['base_url']} did not answer within {options['wait']}s")
        self.stdout.write(f"Sending traffic to {options['base_url']} at up to "
                          f"{options['rps']:g} requests/s with {options['concurrency']} visitors.")
        summary = generator.run(options["duration"])
        if options["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(generator.describe())
