"""Fixtures for capture tests: settings overrides, a process origin, table scans."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.apps import apps
from django.db import OperationalError, connections, router

from perfmonitor.capture import buffer as buffer_module
from perfmonitor.capture import query_hook


@pytest.fixture
def perf(settings: Any) -> Callable[..., None]:
    """perf(KEY=value, ...) overrides PERFMONITOR keys for this test (setting_changed fires)."""

    def apply(**overrides: Any) -> None:
        settings.PERFMONITOR = {**settings.PERFMONITOR, **overrides}

    return apply


@pytest.fixture
def process_origin() -> Iterator[Callable[[str], None]]:
    """Make this test process look like a server or command process, whose queries
    outside requests are captured (a pytest process captures none)."""
    saved = list(query_hook._process_origin)

    def use(origin: str) -> None:
        query_hook._process_origin[:] = [origin]

    use("process:web")
    yield use
    query_hook._process_origin[:] = saved


@pytest.fixture
def stop_flusher() -> Iterator[None]:
    """Stop the real flusher thread after the test, so it closes its connection."""
    yield
    buffer_module.buffer.stop(timeout=10)


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, step: float = 0.05) -> Any:
    """Poll until predicate() is truthy; fail with a clear message after timeout.

    A read that meets the flusher's open write transaction on in-memory SQLite
    (shared cache: "database table is locked") is just polled again.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except OperationalError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(step)


def perfmonitor_text() -> str:
    """Every value of every row of every perfmonitor table, as one string."""
    chunks = []
    for model in apps.get_app_config("perfmonitor").get_models():
        connection = connections[router.db_for_read(model)]
        table = connection.ops.quote_name(model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT * FROM {table}")
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        value = bytes(value).decode("latin-1")
                    chunks.append(str(value))
    return "\n".join(chunks)
