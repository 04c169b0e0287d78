"""The alerting clock: ``now()`` is wall time unless a test installs another clock.

Every timer of the engine (``for``, ``keep_firing_for``, group wait, repeat
interval, escalation delays, retry backoff) reads time here or takes an
explicit ``now``, so scenario tests drive them minute by minute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.utils import timezone

_source: Callable[[], datetime] = timezone.now


def now() -> datetime:
    return _source()


def floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float = 60) -> datetime:
        self.current += timedelta(seconds=seconds)
        return self.current

    def set(self, moment: datetime) -> datetime:
        self.current = moment
        return moment


@contextmanager
def use_clock(clock: Callable[[], datetime]) -> Iterator[Callable[[], datetime]]:
    global _source
    previous = _source
    _source = clock
    try:
        yield clock
    finally:
        _source = previous
