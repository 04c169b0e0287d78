"""Settings of the analytics benchmark: the test settings on the bench_analytics database
(``BENCH_DATABASE_URL`` to change)."""

import os

import dj_database_url

from tests.settings import *  # noqa: F403

DATABASES = {"default": dj_database_url.parse(os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_analytics"))}
PERFMONITOR = {"BACKGROUND_FLUSH": False, "LIVE_UPDATES": False}
