"""Settings of the flusher benchmark: perfmonitor's tables on PostgreSQL, nothing else."""

import os

import dj_database_url

SECRET_KEY = "perfmonitor-flusher-benchmark"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {"default": dj_database_url.parse(os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/perfmonitor_bench_flusher"))}
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_celery_beat",
    "perfmonitor",
]
PERFMONITOR = {
    "BACKGROUND_FLUSH": False,  # the benchmark drives every stage itself
    "BUFFER_SIZE": 1_000_000,
}
