"""Settings of the collect benchmark: PostgreSQL, the collect API and nothing else in the way.

The throttle counts in a Redis cache, as in a deployment with several web processes
(``BENCH_CACHE=locmem`` for the per-process cache).
"""

import os

import dj_database_url

SECRET_KEY = "perfmonitor-collect-benchmark"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "benchmarks.collect.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {"default": dj_database_url.parse(os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/perfmonitor_bench_collect"))}
DATABASES["default"]["CONN_MAX_AGE"] = None  # the baseline view keeps its connection too
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    "perfmonitor",
]
MIDDLEWARE = [
    "perfmonitor.capture.middleware.PerformanceMiddleware",
    "django.middleware.common.CommonMiddleware",
]
if os.environ.get("BENCH_CACHE", "redis") == "redis":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/3",
                          "KEY_PREFIX": "perfmonitor-bench-collect"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
STATIC_URL = "/static/"
PERFMONITOR = {
    "BACKGROUND_FLUSH": os.environ.get("BENCH_BACKGROUND_FLUSH", "1") == "1",
    # 1.0: every event becomes a raw row (the heaviest case for the writer); the default,
    # 0.1, keeps a tenth of the api/render/custom detail rows (rollups see every event).
    "SAMPLE_RATE": float(os.environ.get("BENCH_SAMPLE_RATE", "1.0")),
    "BUFFER_SIZE": 400_000,
    "BATCH_SIZE": 5_000,
    # The throttle stays on (one cache increment per batch) with a limit the run cannot reach.
    "COLLECT_THROTTLE_RATE": "1000000/s",
}
