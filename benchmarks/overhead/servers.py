"""The processes run.py starts: gunicorn serving one profile, and plain HTTP checks."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from procstat import children_of

HERE = Path(__file__).resolve().parent
VENV_BIN = HERE / ".venv" / "bin"
VIEWS = {"one": "/one/", "ten": "/ten/"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def padded_env(env: dict[str, str], *varying: str) -> dict[str, str]:
    """``env`` plus a padding variable that evens out the lengths of ``varying`` (the
    profile's name, its application_name, its files' paths: what differs between
    profiles), so every server starts with the same amount of environment and
    arguments on its stack. Process layout moves both CPU time and instruction counts.
    """
    return {**env, "BENCH_PAD": "x" * max(0, 2048 - sum(len(v) for v in varying))}


class Gunicorn:
    def __init__(self, profile: str, port: int, workers: int, env: dict[str, str],
                 log_path: Path) -> None:
        self.profile, self.port, self.workers = profile, port, workers
        self.env = {**env, "BENCH_PROFILE": profile}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [str(VENV_BIN / "gunicorn"), "benchproject.wsgi:application",
               "--workers", str(self.workers), "--worker-class", "sync",
               "--bind", f"127.0.0.1:{self.port}", "--timeout", "60",
               "--graceful-timeout", "15", "--log-level", "warning",
               "--error-logfile", str(self.log_path)]
        env = padded_env(self.env, self.profile, self.env.get("BENCH_APP_NAME", ""),
                         str(self.log_path))
        self.proc = subprocess.Popen(cmd, cwd=HERE, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn ({self.profile}) exited; see {self.log_path}")
            if len(children_of(self.proc.pid)) >= self.workers:
                try:
                    if http_get(self.base_url + VIEWS["one"])[0] == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn ({self.profile}) did not answer; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # graceful: workers finish, exit handlers flush
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def sink_envelopes(port: int) -> int:
    return json.loads(http_get(f"http://127.0.0.1:{port}/stats")[1])["envelopes"]
