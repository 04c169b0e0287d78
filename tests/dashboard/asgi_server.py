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


def application() -> Any:
    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter, URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from django.core.asgi import get_asgi_application

    from perfmonitor.routing import websocket_urlpatterns

    return ProtocolTypeRouter({
        "http": ASGIStaticFilesHandler(get_asgi_application()),
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
