"""Live updates to the channel-layer group ``perfmonitor.live``.

The flusher, compaction and the alert engine call :func:`publish`; the
dashboard's WebSocket consumer relays group messages to connected admins.
Publishing is throttled per topic and process (new metrics at most every
``DASHBOARD_MIN_REFRESH_SECONDS``, other topics once a second; a held-back
message goes out once due) and never raises: with no channel layer, or a layer
that is down, it does nothing and the dashboard falls back to polling.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Coroutine
from typing import Any

from perfmonitor.conf import settings

GROUP = "perfmonitor.live"
MESSAGE_TYPE = "perfmonitor.update"  # consumers implement perfmonitor_update()
MIN_INTERVAL_SECONDS = 1.0
SEND_TIMEOUT_SECONDS = 2.0  # a layer that hangs (Redis unreachable) costs the caller this much

logger = logging.getLogger("perfmonitor")
_last_sent: dict[str, float] = {}
_lock = threading.Lock()


_pending: dict[str, dict[str, Any]] = {}  # topic -> payload the throttle held back


def _interval(topic: str) -> float:
    """Seconds between two messages of a topic from this process.

    "metrics" (new rows) goes out at most as often as a panel refreshes on it
    (``DASHBOARD_MIN_REFRESH_SECONDS``): every process that served a request
    flushes once a second, a publish costs it about 1.4 ms of CPU on
    channels_redis, and the page would not refresh sooner anyway.
    """
    if topic == "metrics":
        try:
            return max(MIN_INTERVAL_SECONDS, float(settings.DASHBOARD_MIN_REFRESH_SECONDS))
        except (TypeError, ValueError):
            return MIN_INTERVAL_SECONDS
    return MIN_INTERVAL_SECONDS


def _due(topic: str, now: float, payload: dict[str, Any]) -> bool:
    """Whether a message may go now; if not, it waits as the topic's pending one."""
    interval = _interval(topic)
    with _lock:
        if now - _last_sent.get(topic, 0.0) < interval:
            _pending[topic] = payload
            return False
        _last_sent[topic] = now
        _pending.pop(topic, None)
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
    payload = payload or {}
    if not force and not _due(topic, now, payload):
        return False
    try:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is None:
            return False
        _run(layer.group_send(
            GROUP, {"type": MESSAGE_TYPE, "topic": topic, "payload": payload, "ts": now}))
        return True
    except Exception as exc:  # a monitor failure never breaks its caller
        logger.debug("perfmonitor: live publish failed: %r", exc)
        return False


# Each publishing thread (a process's flusher, a task's worker) keeps one event loop.
# ``async_to_sync`` would start a thread and a loop per call, and channels_redis keeps
# its connections per loop: every flush would pay for both and a new Redis connection
# (~2 ms of CPU). On a kept loop a publish is one round trip on a kept connection.
_threads = threading.local()


def _run(coroutine: Coroutine[Any, Any, Any]) -> None:
    """Run a coroutine to its end on this thread's own event loop, with a timeout."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # called from async code: this thread's loop is busy running the caller
        coroutine.close()
        raise RuntimeError("publish() is synchronous; call it through sync_to_async")
    loop = getattr(_threads, "loop", None)
    if loop is None or loop.is_closed():
        loop = _threads.loop = asyncio.new_event_loop()
    loop.run_until_complete(asyncio.wait_for(coroutine, SEND_TIMEOUT_SECONDS))


def close_thread_loop() -> None:
    """Close this thread's publishing loop, if it has one: a flusher thread that stops.

    channels_redis closes its connections of a loop when the loop is closed; a loop
    left to the garbage collector would leave them open and warn.
    """
    loop = getattr(_threads, "loop", None)
    _threads.loop = None
    if loop is None or loop.is_closed():
        return
    try:
        loop.close()
    except Exception as exc:  # never raise into a stopping thread
        logger.debug("perfmonitor: closing the live loop failed: %r", exc)


def _forget_loops_after_fork() -> None:
    # A forked child must not use its parent's loop (and the parent's Redis sockets):
    # drop the reference without closing anything the parent still uses.
    global _threads
    _threads = threading.local()


os.register_at_fork(after_in_child=_forget_loops_after_fork)


def publish_pending() -> bool:
    """Send the messages the throttle held back, those now due; True when one was sent.

    The flusher calls this when it wakes with nothing to write, so the last rows of
    a burst are announced even when no flush follows them.
    """
    if not _pending:  # the common case: a look at a dict, no lock
        return False
    with _lock:
        waiting = list(_pending.items())
    sent = False
    for topic, payload in waiting:
        sent = publish(topic, payload) or sent
    return sent


def reset_throttle() -> None:
    with _lock:
        _last_sent.clear()
        _pending.clear()
