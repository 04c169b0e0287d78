"""The lessons page has a real N+1; the class schedule shows the same data without one."""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from perfmonitor.models import PerformanceMetric

pytestmark = pytest.mark.django_db


def queries_of(client: Client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


def per_row_lookups(sqls: list[str]) -> Counter[str]:
    """How often each single-row lookup by primary key ran."""
    counts: Counter[str] = Counter()
    for sql in sqls:
        for table in ("lms_course", "lms_teacher"):
            if sql.startswith("SELECT") and f'FROM "{table}" WHERE "{table}"."id" =' in sql:
                counts[table] += 1
        if 'COUNT(*)' in sql and 'FROM "lms_booking" WHERE "lms_booking"."session_id" =' in sql:
            counts["lms_booking count"] += 1
    return counts


def test_the_lessons_page_queries_once_per_lesson_for_course_teacher_and_seats(demo_data):
    client = Client()
    sqls = queries_of(client, "/lessons-n-plus-one/")
    lookups = per_row_lookups(sqls)
    assert lookups == {"lms_course": 30, "lms_teacher": 30, "lms_booking count": 30}
    assert len(sqls) >= 91  # 1 list query + 3 per lesson

    schedule = queries_of(client, "/classes/")
    assert not per_row_lookups(schedule) and len(schedule) <= 4


def test_perfmonitor_flags_the_n_plus_one(demo_data, flush):
    Client().get("/lessons-n-plus-one/")
    flush()
    row = PerformanceMetric.objects.get(metric_type="request",
                                        metric_name="GET /lessons-n-plus-one/")
    counts = sorted(item["count"] for item in row.metadata["n_plus_one"])
    assert counts == [30, 30, 30]
    assert PerformanceMetric.objects.filter(metric_type="query",
                                            metadata__n_plus_one=True).count() == 3
