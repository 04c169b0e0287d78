"""Shared fixtures.

Tests marked ``postgres`` run in the PostgreSQL pass of the suite
(DATABASE_URL) and skip in the SQLite pass; `make test` runs both passes, and
with PERFMONITOR_REQUIRE_SERVICES=1 (set by .ci/run) the PostgreSQL pass is
mandatory and an unreachable server fails it. Tests marked ``redis`` run when
REDIS_URL answers and skip otherwise, unless PERFMONITOR_REQUIRE_SERVICES=1:
then a missing Redis fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest
from django.db import connection

from perfmonitor.capture import buffer as buffer_module

REQUIRE_SERVICES = os.environ.get("PERFMONITOR_REQUIRE_SERVICES") == "1"


def _reachable(url: str, default_port: int) -> bool:
    if not url:
        return False
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port),
                                      timeout=1):
            return True
    except OSError:
        return False


def _missing(what: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (PERFMONITOR_REQUIRE_SERVICES=1) but not available")
    pytest.skip(f"{what} not available")


@pytest.fixture(autouse=True)
def _services(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        pytest.skip("PostgreSQL-only: runs in the PostgreSQL pass (DATABASE_URL)")
    if request.node.get_closest_marker("redis") and not _reachable(
            os.environ.get("REDIS_URL", ""), 6379):
        _missing("Redis (set REDIS_URL)")


@pytest.fixture(autouse=True)
def fresh_buffer() -> None:
    """Every test starts with an empty buffer and zeroed counters."""
    buffer_module.buffer.reset()
    yield
    buffer_module.buffer.reset()


@pytest.fixture
def flush():
    """Write what capture buffered, in the test's own thread and transaction."""
    return buffer_module.flush_now
