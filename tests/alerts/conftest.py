from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from perfmonitor.alerts.notifiers.webhook import generate_secret
from tests.alerts.receiver import Receiver, start_receiver


@pytest.fixture(scope="session")
def webhook_secret() -> str:
    return generate_secret()


@pytest.fixture
def receiver(webhook_secret: str) -> Iterator[Receiver]:
    """A local Slack / webhook / SMS stand-in that verifies signatures and dedupes by key."""
    found, server = start_receiver(webhook_secret)
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def alert_celery() -> Iterator[Any]:
    """Send tasks through the alerting tests' app: Redis db 6, a queue of our own."""
    queue = f"perfmonitor-alert-tests-{os.getpid()}-{time.time_ns()}"
    os.environ["PERFMONITOR_ALERTS_QUEUE"] = queue
    from perfmonitor import tasks
    from tests.alerts.celery_app import app

    app.conf.task_default_queue = queue
    previous = tasks.evaluate_alert_rules.app
    app.set_current()
    app.set_default()
    yield app
    with app.connection_for_write() as conn:
        conn.default_channel.client.delete(queue)
    previous.set_current()
    previous.set_default()
