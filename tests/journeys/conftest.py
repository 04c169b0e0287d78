"""Shared pieces of the journey stories: a fixed clock and staff users."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission, User

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def at(ms: float = 0, base: datetime = T0) -> datetime:
    """A moment ``ms`` milliseconds after ``base``."""
    return base + timedelta(milliseconds=ms)


def staff_user(username: str, *perms: str) -> User:
    user = User.objects.create_user(username, is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label,
                                                         codename=codename))
    return user


@pytest.fixture
def viewer(db) -> User:
    return staff_user("viewer", "perfmonitor.view_dashboard")


@pytest.fixture
def clerk(db) -> User:
    """Staff, but without perfmonitor.view_dashboard."""
    return staff_user("clerk")


@pytest.fixture(autouse=True)
def fresh_journey_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """The journeys' rate-limited log starts quiet in every test, so each can read its own."""
    from perfmonitor.capture.buffer import RateLimitedLog
    from perfmonitor.journeys import tracker

    monkeypatch.setattr(tracker, "_log", RateLimitedLog())
