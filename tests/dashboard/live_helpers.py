"""Connecting to the dashboard's WebSocket as a given user, over the real Redis layer."""

from __future__ import annotations

import os
from importlib import import_module
from urllib.parse import urlsplit, urlunsplit

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings

from perfmonitor.routing import websocket_urlpatterns

REDIS_DB = 7  # the dashboard's tests own this Redis database
LIVE_PATH = "/ws/perfmonitor/live/"


def redis_layer_url() -> str:
    """REDIS_URL's server, database 7, so parallel test runs of other areas never collide."""
    parts = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379")
    return urlunsplit((parts.scheme, parts.netloc, f"/{REDIS_DB}", "", ""))


def redis_channel_layers() -> dict:
    # redis-py 8 reads with a 5 s socket timeout by default, which cuts channels_redis's
    # blocking receive on an idle socket (every idle dashboard would drop every 5 s).
    host = {"address": redis_layer_url(), "socket_timeout": None}
    return {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                        "CONFIG": {"hosts": [host], "expiry": 10}}}


def session_cookie(user) -> bytes:  # type: ignore[no-untyped-def]
    """A logged-in session for ``user``, as the browser's Cookie header."""
    engine = import_module(settings.SESSION_ENGINE)
    session = engine.SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}".encode()


def communicator(user=None) -> WebsocketCommunicator:  # type: ignore[no-untyped-def]
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if user is not None:
        headers.append((b"cookie", session_cookie(user)))
    app = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
    return WebsocketCommunicator(app, LIVE_PATH, headers=headers)
