import pytest

from perfmonitor.models import MetricRollup, PerformanceMetric
from tests.testapp.models import Course


@pytest.mark.django_db
def test_request_is_captured_with_route_and_queries(client, flush):
    course = Course.objects.create(title="Algebra")
    response = client.get(f"/courses/{course.pk}/?token=secret123")
    assert response.status_code == 200
    flush()
    row = PerformanceMetric.objects.get(metric_type="request")
    assert row.metric_name == "GET /courses/<int:pk>/"
    assert row.url == f"/courses/{course.pk}/"
    assert row.metadata["query_count"] == 1
    rollup = MetricRollup.objects.get(kind="request")
    assert rollup.name == "/courses/<int:pk>/" and rollup.dimension == "GET" and rollup.count == 1
    rows = MetricRollup.objects.filter(kind="query", dimension="GET /courses/<int:pk>/")
    assert rows.count() == 1
