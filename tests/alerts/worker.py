"""Start, stop and kill -9 a real Celery worker subprocess for the integration tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The URL of the database this test process uses (the test database)."""
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Worker:
    def __init__(self, queue: str, overrides: dict[str, Any], log: Path) -> None:
        self.queue = queue
        self.log = log
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.alerts.worker_settings",
                    "DATABASE_URL": database_url(), "PERFMONITOR_ALERTS_QUEUE": queue,
                    "PERFMONITOR_OVERRIDES": json.dumps(overrides), "PYTHONPATH": str(ROOT)}
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 60.0) -> None:
        self.starts += 1
        marker = self.log.with_suffix(f".{self.starts}.log")
        self.current_log = marker
        handle = marker.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.alerts.celery_app", "worker",
             "-P", "threads", "-c", "4", "-Q", self.queue, "-n", f"{self.queue}-{self.starts}@%h",
             "--without-heartbeat", "--without-mingle", "--without-gossip", "-l", "info"],
            cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {marker.read_text()[-3000:]}")
            if b" ready." in marker.read_bytes():
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready in {timeout}s: {marker.read_text()[-3000:]}")

    def kill(self) -> None:
        """kill -9: no shutdown, no acknowledgements, no cleanup."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
