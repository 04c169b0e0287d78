"""`make demo`: set up the demo LMS and run it with perfmonitor watching.

Steps: migrate, create (or reset) the admin user, seed the LMS, create
perfmonitor's periodic tasks, then run three children until Ctrl-C:

- the web server (daphne, ASGI, so the dashboard's WebSocket works),
- a Celery worker with embedded beat (django-celery-beat's DatabaseScheduler),
- the traffic generator (``manage.py demo_traffic``).

Embedded default: SQLite and Celery on kombu's filesystem transport under
DEMO_DATA_DIR (default ``.demo/``). DATABASE_URL / REDIS_URL switch to
PostgreSQL / Redis. DEMO_PORT (8000), DEMO_HOST (127.0.0.1), DEMO_RPS (5),
DEMO_ADMIN_USER / DEMO_ADMIN_PASSWORD change the obvious; DEMO_BROWSER_INTERVAL
(20 s, 0 turns it off) paces the headless Chromium visitor that makes the browser
client report real Web Vitals (when Chromium and Playwright are installed).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
STARTED = time.monotonic()
NOISY = ("ERROR", "CRITICAL", "Traceback", "database is locked")


def say(message: str) -> None:
    print(f"[demo {time.monotonic() - STARTED:5.1f}s] {message}", flush=True)


def _die_with_parent() -> None:
    """Children get SIGTERM if this process dies without cleaning up (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def manage(*args: str, env: dict[str, str]) -> None:
    started = time.monotonic()
    result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    if result.returncode:
        print(result.stdout + result.stderr, file=sys.stderr)
        raise SystemExit(f"`manage.py {' '.join(args)}` failed (exit {result.returncode})")
    say(f"manage.py {args[0]} ({time.monotonic() - started:.1f}s)")
    for line in result.stdout.strip().splitlines()[-4:]:
        print(f"    {line.strip()}", flush=True)


class Child:
    """A subprocess whose output goes to a log file; errors are echoed to the terminal."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._file = log.open("a", buffering=1)
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1, start_new_session=True, preexec_fn=_die_with_parent)
        self._reader = threading.Thread(target=self._pump, args=(self.process.stdout,),
                                        daemon=True)
        self._reader.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._file.write(line)
            if any(word in line for word in NOISY) or (
                    self.name == "traffic" and line.startswith(("traffic:", "Sending", "No Chr",
                                                                "browser"))):
                print(f"  {self.name}| {line.rstrip()}", flush=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                say(f"{self.name} did not stop in {timeout:.0f}s; killing it")
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=2)
        self._file.close()


def port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def describe_backends(env: dict[str, str], data_dir: Path) -> tuple[str, str]:
    url = env.get("DATABASE_URL")
    database = f"SQLite {data_dir / 'demo.sqlite3'}"
    if url:
        parts = urlsplit(url)
        database = f"{parts.scheme} {parts.hostname}:{parts.port or ''}{parts.path}"
    redis = env.get("REDIS_URL")
    broker = (f"Redis {urlsplit(redis).hostname}:{urlsplit(redis).port or 6379}"
              f"{urlsplit(redis).path}" if redis
              else f"kombu filesystem transport ({data_dir / 'celery-queue'})")
    return database, broker


class Watcher:
    """Reads perfmonitor's tables from this process, without being captured itself."""

    def __init__(self) -> None:
        import django

        django.setup()

    def counts(self) -> dict[str, int]:
        from django.db import close_old_connections

        from perfmonitor.capture.context import capture_suppressed
        from perfmonitor.models import MetricRollup, PerformanceMetric, UserJourney

        with capture_suppressed():
            close_old_connections()
            return {"metrics": PerformanceMetric.objects.count(),
                    "rollups": MetricRollup.objects.count(),
                    "journeys": UserJourney.objects.count()}


def main() -> int:
    os.chdir(ROOT)
    env = os.environ.copy()
    env["DJANGO_SETTINGS_MODULE"] = "demo_project.settings"
    env["PYTHONUNBUFFERED"] = "1"
    data_dir = Path(env.setdefault("DEMO_DATA_DIR", str(ROOT / ".demo"))).resolve()
    env["DEMO_DATA_DIR"] = str(data_dir)
    os.environ.update(DJANGO_SETTINGS_MODULE=env["DJANGO_SETTINGS_MODULE"],
                      DEMO_DATA_DIR=str(data_dir))
    host = env.get("DEMO_HOST", "127.0.0.1")
    port = int(env.get("DEMO_PORT", "8000"))
    rps = env.get("DEMO_RPS", "5")
    browser_interval = env.get("DEMO_BROWSER_INTERVAL", "20")
    admin_user = env.get("DEMO_ADMIN_USER", "admin")
    admin_password = env.get("DEMO_ADMIN_PASSWORD", "perfmonitor")
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    if not port_free(host, port):
        print(f"Port {port} on {host} is in use: stop what runs there or set DEMO_PORT.",
              file=sys.stderr)
        return 2
    database, broker = describe_backends(env, data_dir)
    say(f"database: {database}; Celery broker: {broker}")

    manage("migrate", "--noinput", "-v", "0", env=env)
    manage("demo_setup", "--admin-username", admin_user, "--admin-password", admin_password,
           env=env)

    base_url = f"http://{host}:{port}"
    children = [
        Child("web", [PYTHON, "-m", "daphne", "-b", host, "-p", str(port),
                      "--access-log", str(logs / "access.log"),
                      "demo_project.asgi:application"], env, logs / "web.log"),
        Child("worker", [PYTHON, "-m", "celery", "-A", "demo_project", "worker", "-B",
                         "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
                         "--pool", "solo", "--concurrency", "1", "--loglevel", "INFO",
                         "--hostname", f"demo-{port}@%h"], env, logs / "worker.log"),
        Child("traffic", [PYTHON, "manage.py", "demo_traffic", "--base-url", base_url,
                          "--rps", rps, "--browser-interval", browser_interval],
              env, logs / "traffic.log"),
    ]
    stopping = threading.Event()

    def request_stop(*_: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print(f"""
  Brightpath demo LMS with perfmonitor
    Site:       {base_url}/
    Admin:      {base_url}/admin/          user {admin_user!r}, password {admin_password!r}
    Dashboard:  {base_url}/admin/perfmonitor/
    Captured:   {base_url}/admin/perfmonitor/performancemetric/ and .../metricrollup/
    Demo users: student001 / learn-demo (student), teacher01 / learn-demo (teacher)
    Logs:       {logs}/{{web,access,worker,traffic}}.log
  Press Ctrl-C to stop.
""", flush=True)
    code = supervise(children, stopping)
    say("stopping: traffic, then web server, then worker")
    for name in ("traffic", "web", "worker"):
        for child in children:
            if child.name == name:
                child.stop()
    say("stopped")
    return code


def supervise(children: list[Child], stopping: threading.Event) -> int:
    watcher = Watcher()
    web_started = time.monotonic()
    first_seen = False
    last_report = time.monotonic()
    while not stopping.wait(1.0):
        for child in children:
            if child.alive():
                continue
            if child.name == "traffic":
                if not getattr(child, "reported", False):
                    child.reported = True  # type: ignore[attr-defined]
                    say(f"traffic generator exited ({child.process.returncode}); "
                        f"the site keeps running (see {child.log})")
                continue
            say(f"{child.name} exited with {child.process.returncode}; see {child.log}")
            return 1
        try:
            now = time.monotonic()
            if not first_seen:
                counts = watcher.counts()
                if counts["metrics"] and counts["rollups"]:
                    first_seen = True
                    say(f"first captured data: {counts['metrics']} metric rows, "
                        f"{counts['rollups']} rollup rows, {now - web_started:.1f}s after "
                        "the web server started")
            elif now - last_report >= 60:
                last_report = now
                counts = watcher.counts()
                say(f"captured so far: {counts['metrics']} metric rows, {counts['rollups']} "
                    f"rollup rows, {counts['journeys']} journeys")
        except Exception as exc:  # a busy database must not stop the demo
            say(f"could not read captured data: {exc!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
