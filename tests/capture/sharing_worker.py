"""A stand-in for one worker process of a site, for the shared-writer tests.

``python -m tests.capture.sharing_worker N``: captures N requests with the
background flusher on (as in production), in steps the test drives on stdin:
"go" pushes them over about a second, "stats" prints the buffer's counters, role
and process name as JSON, "exit" leaves (the exit flush runs) and prints them again.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from perfmonitor.capture import buffer as buffer_module  # noqa: E402
from perfmonitor.capture.records import pack_request  # noqa: E402


def main() -> None:
    count = int(sys.argv[1])
    override_settings(PERFMONITOR={**settings.PERFMONITOR, "BACKGROUND_FLUSH": True,
                                   "FLUSH_INTERVAL": 0.2}).enable()
    print("ready", flush=True)
    assert sys.stdin.readline().strip() == "go"
    for n in range(count):
        buffer_module.push(pack_request(
            "GET", "/shared/<int:pk>/", "tests.shared", f"/shared/{n}/", "", 200, time.time(),
            3.0 + n % 7, [("SELECT 1 FROM course WHERE id = %s", 0.5, False)], None, "", "",
            ""))
        time.sleep(1.0 / count)
    print("pushed", flush=True)
    while (command := sys.stdin.readline().strip()) == "stats":
        report()
    assert command == "exit"
    buffer_module._flush_at_exit()
    report()


def report() -> None:
    stats = buffer_module.buffer.stats()
    print(json.dumps({key: stats[key] for key in ("captured", "flushed", "dropped", "received",
                                                  "shared_role", "flush_errors", "process")}),
          flush=True)


if __name__ == "__main__":
    main()
