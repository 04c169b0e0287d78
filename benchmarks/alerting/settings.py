"""Settings of the alerting benchmark: the test settings on the bench_alerting database."""

import os

from tests.settings import *  # noqa: F403

DATABASES = {"default": {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": os.environ.get("BENCH_DB", "bench_alerting"),
    "USER": "postgres", "HOST": "127.0.0.1", "PORT": 5432,
}}
PERFMONITOR = {"BACKGROUND_FLUSH": False, "LIVE_UPDATES": False}
CELERY_TASK_ALWAYS_EAGER = False
