"""The dashboard's WebSocket: relays ``perfmonitor.live`` group messages to admins.

Thin by design: who may connect is decided by
``perfmonitor.dashboard.permissions``; what gets published is decided by
``perfmonitor.live.publish`` callers (flusher, compaction, alert engine).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from perfmonitor import live
from perfmonitor.conf import settings
from perfmonitor.dashboard.permissions import can_view_dashboard

logger = logging.getLogger("perfmonitor")

CLOSE_FORBIDDEN = 4403  # not staff with perfmonitor.view_dashboard
CLOSE_UNAVAILABLE = 4503  # no channel layer, or it is down: the page polls instead


class LiveDashboardConsumer(AsyncJsonWebsocketConsumer):
    joined = False

    async def connect(self) -> None:
        # Accept first, then close with an application code: a refusal before the
        # handshake reaches the browser only as an anonymous 1006.
        await self.accept()
        allowed = await database_sync_to_async(can_view_dashboard)(self.scope.get("user"))
        if not allowed:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if self.channel_layer is None or not settings.LIVE_UPDATES:
            await self.close(code=CLOSE_UNAVAILABLE)
            return
        try:
            await self.channel_layer.group_add(live.GROUP, self.channel_name)
        except Exception as exc:  # the layer is down: the page falls back to polling
            logger.warning("perfmonitor: live updates unavailable: %r", exc)
            await self.close(code=CLOSE_UNAVAILABLE)
            return
        self.joined = True
        await self.send_json({"type": "hello", "group": live.GROUP})

    async def disconnect(self, code: int) -> None:
        if self.joined and self.channel_layer is not None:
            with contextlib.suppress(Exception):  # the layer may be down already
                await self.channel_layer.group_discard(live.GROUP, self.channel_name)
            self.joined = False

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # The socket is one-way; a ping keeps proxies from closing an idle socket.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def perfmonitor_update(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "update", "topic": event.get("topic", ""),
                              "payload": event.get("payload") or {}, "ts": event.get("ts")})
