from __future__ import annotations

from collections.abc import Iterator

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
