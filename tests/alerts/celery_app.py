"""The Celery app of the alerting integration tests.

Broker: Redis database 6 (the alerting tests' own), one queue per test session
(PERFMONITOR_ALERTS_QUEUE) so leftovers of another run are never consumed.
A short visibility timeout lets a message whose worker was killed (acks_late,
never acknowledged) come back within seconds instead of an hour.
"""

import os
from urllib.parse import urlsplit

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.alerts.worker_settings")


def broker_url() -> str:
    parts = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/6")
    return f"redis://{parts.hostname or '127.0.0.1'}:{parts.port or 6379}/6"


app = Celery("perfmonitor_alert_tests")
app.conf.update(
    broker_url=broker_url(),
    task_default_queue=os.environ.get("PERFMONITOR_ALERTS_QUEUE", "perfmonitor-alert-tests"),
    task_ignore_result=True,
    broker_transport_options={"visibility_timeout": 4, "unacked_restore_interval": 1,
                              "unacked_restore_throttle": 1},
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
    imports=["perfmonitor.tasks"],
)
