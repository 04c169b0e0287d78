"""Daphne serving the test project's ASGI app (HTTP, static files, WebSocket) in a thread.

A thread rather than a process: the server then shares the test's database,
including SQLite's in-memory test database (a shared-cache URI), so the same
browser test runs on SQLite and PostgreSQL alike; the data it reads must be
committed (``transactional_db``). Twisted's reactor cannot be restarted, so
there is one server per test process, started on first use.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

_server: Any = None
_lock = threading.Lock()
_in_flight = [0]  # HTTP requests the server is still handling


def _counting(app: Any) -> Any:
    """``app``, counting the HTTP requests it has not finished yet."""

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        _in_flight[0] += 1  # the server's event loop: one thread
        try:
            await app(scope, receive, send)
        finally:
            _in_flight[0] -= 1

    return counted


def wait_until_idle(timeout: float = 10.0) -> None:
    """Wait until the server has finished every HTTP request (a view still running in
    its thread would hold SQLite's tables while the test database is flushed)."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        if _in_flight[0]:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= 0.2:
            return
        time.sleep(0.02)


def application() -> Any:
    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter, URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from django.core.asgi import get_asgi_application

    from perfmonitor.routing import websocket_urlpatterns

    return ProtocolTypeRouter({
        "http": _counting(ASGIStaticFilesHandler(get_asgi_application())),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    })


def server_url(timeout: float = 10.0) -> str:
    """http://127.0.0.1:<port> of the running server (started on the first call)."""
    global _server
    with _lock:
        if _server is None:
            from daphne.server import Server

            server = Server(application=application(),
                            endpoints=["tcp:port=0:interface=127.0.0.1"],
                            signal_handlers=False,
                            verbosity=int(os.environ.get("DAPHNE_VERBOSITY", "0")))
            threading.Thread(target=server.run, name="test-daphne", daemon=True).start()
            deadline = time.monotonic() + timeout
            while not server.listening_addresses:
                if time.monotonic() > deadline:
                    raise RuntimeError("daphne did not start listening")
                time.sleep(0.05)
            _server = server
    host, port = _server.listening_addresses[0]
    return f"http://{host}:{port}"
