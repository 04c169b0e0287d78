"""A local HTTP server standing in for Slack, a webhook receiver and an SMS provider.

Like a careful real receiver it:

* verifies the Standard Webhooks signature of every request on ``/webhook...``
  paths (401 when it does not verify) and records the verdict;
* deduplicates by ``webhook-id`` / ``Idempotency-Key``: a repeated key is
  answered 200 but not counted as a new delivery.

Per path, a test can script the status codes to answer with (``[500, 500]``
then 200) and delays before answering (``[15.0]``: the first request waits 15 s,
long enough to kill the worker mid-delivery).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from perfmonitor.alerts.notifiers.webhook import verify


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased (HTTP header names are case-insensitive)
    body: bytes
    key: str
    signature_ok: bool | None
    duplicate: bool
    status: int
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    secret: str
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    scripts: dict[str, list[int]] = field(default_factory=dict)
    delays: dict[str, list[float]] = field(default_factory=dict)
    _seen: set[tuple[str, str]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._arrived = threading.Condition(self._lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.scripts.clear()
            self.delays.clear()
            self._seen.clear()

    def script(self, path: str, statuses: list[int]) -> None:
        self.scripts[path] = list(statuses)

    def delivered(self, path: str | None = None) -> list[Received]:
        """Accepted, first-time deliveries (what a deduplicating receiver acts on)."""
        return [r for r in self.requests if (path is None or r.path == path)
                and 200 <= r.status < 300 and not r.duplicate]

    def all(self, path: str | None = None) -> list[Received]:
        return [r for r in self.requests if path is None or r.path == path]

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._arrived.wait(min(remaining, 0.2))
        return True

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        lowered = {k.lower(): v for k, v in headers.items()}
        key = lowered.get("webhook-id") or lowered.get("idempotency-key", "")
        signature_ok = verify(self.secret, headers, body) if path.startswith("/webhook") \
            else None
        with self._lock:
            script = self.scripts.get(path)
            status = script.pop(0) if script else 200
            if signature_ok is False:
                status = 401
            duplicate = 200 <= status < 300 and (path, key) in self._seen
            if 200 <= status < 300:
                self._seen.add((path, key))
            # recorded before the (optional) delay: the request has arrived
            self.requests.append(Received(path, lowered, body, key, signature_ok, duplicate,
                                          status, time.time()))
            self._arrived.notify_all()
        with self._lock:
            pending = self.delays.get(path)
            delay = pending.pop(0) if pending else 0.0
        if delay:
            time.sleep(delay)
        return status


class _Handler(BaseHTTPRequestHandler):
    receiver: Receiver

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        status = self.server.receiver.handle(self.path, dict(self.headers.items()), body)
        try:
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "0")
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"no")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client (a killed worker) is gone

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver


def start_receiver(secret: str) -> tuple[Receiver, _Server]:
    receiver = Receiver(secret)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.receiver = receiver
    receiver.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver, server
