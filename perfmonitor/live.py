"""Live updates to the channel-layer group ``perfmonitor.live``.

The flusher, compaction and the alert engine call :func:`publish`; the
dashboard's WebSocket consumer relays group messages to connected admins.
Publishing is throttled per topic (at most one message a second) and never
raises: with no channel layer, or a layer that is down, it does nothing and
the dashboard falls back to polling.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from perfmonitor.conf import settings

GROUP = "perfmonitor.live"
MESSAGE_TYPE = "perfmonitor.update"  # consumers implement perfmonitor_update()
MIN_INTERVAL_SECONDS = 1.0

logger = logging.getLogger("perfmonitor")
_last_sent: dict[str, float] = {}
_lock = threading.Lock()


def _due(topic: str, now: float) -> bool:
    with _lock:
        if now - _last_sent.get(topic, 0.0) < MIN_INTERVAL_SECONDS:
            return False
        _last_sent[topic] = now
        return True


def publish(topic: str, payload: dict[str, Any] | None = None, *, force: bool = False) -> bool:
    """Send ``{"topic", "payload", "ts"}`` to the group; True when sent.

    ``topic`` names what changed ("metrics", "alerts", "journeys"...) so the
    page swaps only the affected panels. ``force`` skips the throttle (alert
    state changes must not be dropped).
    """
    if not settings.LIVE_UPDATES:
        return False
    now = time.time()
    if not force and not _due(topic, now):
        return False
    try:
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is None:
            return False
        async_to_sync(layer.group_send)(
            GROUP, {"type": MESSAGE_TYPE, "topic": topic, "payload": payload or {}, "ts": now})
        return True
    except Exception as exc:  # a monitor failure never breaks its caller
        logger.debug("perfmonitor: live publish failed: %r", exc)
        return False


def reset_throttle() -> None:
    with _lock:
        _last_sent.clear()
