"""The dashboard's WebSocket: who may listen, and that updates reach listeners fast."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import AnonymousUser

from perfmonitor import live
from perfmonitor.consumers import CLOSE_FORBIDDEN, CLOSE_UNAVAILABLE
from tests.dashboard.live_helpers import communicator, redis_channel_layers

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def redis_layer(settings):
    settings.CHANNEL_LAYERS = redis_channel_layers()
    live.reset_throttle()
    yield
    live.reset_throttle()


async def _closed_with(socket) -> int | None:  # type: ignore[no-untyped-def]
    connected, _ = await socket.connect()
    assert connected
    message = await socket.receive_output(timeout=2)
    await socket.disconnect()
    assert message["type"] == "websocket.close"
    return message.get("code")


def test_staff_with_the_permission_joins_the_live_group_and_gets_updates(viewer):
    socket = communicator(viewer)

    async def story():
        connected, _ = await socket.connect()
        assert connected
        assert await socket.receive_json_from(timeout=2) == {
            "type": "hello", "group": "perfmonitor.live"}
        await sync_to_async(live.publish)("metrics", {"rows": 42})
        update = await socket.receive_json_from(timeout=2)
        assert update["type"] == "update" and update["topic"] == "metrics"
        assert update["payload"] == {"rows": 42}
        await socket.disconnect()

    asyncio.run(story())


def test_staff_without_the_permission_is_closed_with_4403(staff_without_permission):
    assert asyncio.run(_closed_with(communicator(staff_without_permission))) == CLOSE_FORBIDDEN


def test_anonymous_visitors_are_closed_with_4403(db):
    assert asyncio.run(_closed_with(communicator(None))) == CLOSE_FORBIDDEN
    assert AnonymousUser().is_authenticated is False


def test_inactive_staff_is_closed_with_4403(viewer):
    viewer.is_active = False
    viewer.save()
    assert asyncio.run(_closed_with(communicator(viewer))) == CLOSE_FORBIDDEN


def test_without_a_channel_layer_the_socket_says_so_and_the_page_polls(viewer, settings):
    settings.CHANNEL_LAYERS = {}
    assert asyncio.run(_closed_with(communicator(viewer))) == CLOSE_UNAVAILABLE


def test_an_alert_state_change_reaches_a_connected_client_within_two_seconds(viewer):
    from tests.dashboard.alert_helpers import change_an_alert_state

    socket = communicator(viewer)

    async def story():
        await socket.connect()
        await socket.receive_json_from(timeout=2)  # hello
        started = time.monotonic()
        await sync_to_async(change_an_alert_state)()
        update = await socket.receive_json_from(timeout=2)
        while update["topic"] != "alerts":  # the flush of the seeded bundle says "metrics"
            update = await socket.receive_json_from(timeout=2)
        elapsed = time.monotonic() - started
        await socket.disconnect()
        return update, elapsed

    update, elapsed = asyncio.run(story())
    assert update["topic"] == "alerts"
    assert update["payload"]["type"] == "alert_state"
    assert update["payload"]["state"] == "firing"
    assert elapsed < 2.0


def test_a_ping_keeps_the_socket_alive(viewer):
    socket = communicator(viewer)

    async def story():
        await socket.connect()
        await socket.receive_json_from(timeout=2)  # hello
        await socket.send_json_to({"type": "ping"})
        reply = await socket.receive_json_from(timeout=2)
        await socket.disconnect()
        return reply

    assert asyncio.run(story()) == {"type": "pong"}


def test_a_thread_that_publishes_every_second_keeps_one_loop_and_one_redis_connection(viewer):
    """The flusher publishes after every flush: no new thread, loop or connection each time."""
    import threading

    import redis

    from tests.dashboard.live_helpers import redis_layer_url

    server = redis.Redis.from_url(redis_layer_url())
    socket = communicator(viewer)
    loops, threads_during = [], []

    def flusher_like() -> None:
        for i in range(5):
            live.reset_throttle()
            assert live.publish("metrics", {"rows": i})
            loops.append(live._threads.loop)
            threads_during.append(threading.active_count())

    async def story():
        connected, _ = await socket.connect()
        assert connected
        await socket.receive_json_from(timeout=2)  # hello
        before = server.info("stats")["total_connections_received"]
        worker = threading.Thread(target=flusher_like)
        worker.start()
        await sync_to_async(worker.join)()
        rows = [(await socket.receive_json_from(timeout=2))["payload"]["rows"] for _ in range(5)]
        assert rows == [0, 1, 2, 3, 4]
        assert server.info("stats")["total_connections_received"] - before <= 1
        await socket.disconnect()

    asyncio.run(story())
    assert len({id(loop) for loop in loops}) == 1 and not loops[0].is_closed()
    assert max(threads_during) == min(threads_during)  # no helper thread per publish


def test_a_thread_that_stops_publishing_closes_its_loop_and_its_layer_connections():
    """What the flusher does when it stops: channels_redis drops the loop's connections."""
    import threading

    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    seen = {}

    def flusher_like() -> None:
        assert live.publish("metrics", {"rows": 1})
        seen["loop"] = live._threads.loop
        seen["held"] = seen["loop"] in layer._layers
        live.close_thread_loop()

    worker = threading.Thread(target=flusher_like)
    worker.start()
    worker.join(10)
    assert seen["held"] and seen["loop"].is_closed()
    assert seen["loop"] not in layer._layers

