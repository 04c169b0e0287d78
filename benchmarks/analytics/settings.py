"""Settings of the analytics benchmark: the test settings on the bench_analytics database."""

import os

from tests.settings import *  # noqa: F403

DATABASES = {"default": {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": os.environ.get("BENCH_DB", "bench_analytics"),
    "USER": "postgres", "HOST": "127.0.0.1", "PORT": 5432,
}}
PERFMONITOR = {"BACKGROUND_FLUSH": False, "LIVE_UPDATES": False}
