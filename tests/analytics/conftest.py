"""Helpers that write rollups the way capture does: records through the buffer and flush."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from perfmonitor.capture import buffer as buffer_module
from perfmonitor.capture.records import Measurement


def push_values(kind: str, name: str, values: Iterable[float], at: datetime | Iterable[datetime],
                dimension: str = "", errors: Iterable[bool] | None = None) -> None:
    """Push one Measurement per value (capture's own record type) and flush."""
    values = list(values)
    moments = [at] * len(values) if isinstance(at, datetime) else list(at)
    flags = list(errors) if errors is not None else [False] * len(values)
    for value, moment, error in zip(values, moments, flags, strict=True):
        buffer_module.push(Measurement(kind=kind, name=name, value=value, dimension=dimension,
                                       ts=moment.timestamp(), error=error))
        if len(buffer_module.buffer) >= 5000:
            buffer_module.flush_now()
    buffer_module.flush_now()


@pytest.fixture
def write_values():
    return push_values


def _user(username: str, *, staff: bool, perm: bool) -> User:
    user = User.objects.create_user(username, password="pw", is_staff=staff)
    if perm:
        user.user_permissions.add(Permission.objects.get(codename="view_dashboard",
                                                         content_type__app_label="perfmonitor"))
    return user


@pytest.fixture
def staff_client(db):
    client = Client()
    client.force_login(_user("viewer", staff=True, perm=True))
    return client


@pytest.fixture
def staff_without_permission(db):
    client = Client()
    client.force_login(_user("plainstaff", staff=True, perm=False))
    return client
