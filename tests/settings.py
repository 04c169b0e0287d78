"""Test settings: PostgreSQL when DATABASE_URL is set, SQLite otherwise."""

import os

import dj_database_url

SECRET_KEY = "perfmonitor-tests"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL", "sqlite://:memory:"))}
# One test database per process, so parallel runs on one server never collide.
DATABASES["default"]["TEST"] = {"NAME": f"test_perfmonitor_{os.getpid()}"} \
    if DATABASES["default"]["ENGINE"].endswith("postgresql") else {}

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    "django_htmx",
    "channels",
    "perfmonitor",
    "tests.testapp",
    "demo_project.lms",  # the demo LMS, tested in tests/demo/
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "perfmonitor.capture.middleware.PerformanceMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [], "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
STATIC_URL = "/static/"
ASGI_APPLICATION = "tests.asgi.application"
REDIS_URL = os.environ.get("REDIS_URL", "")
CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                              "CONFIG": {"hosts": [REDIS_URL]}}} if REDIS_URL else \
    {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
if REDIS_URL:  # redis-py 8 reads with a 5 s timeout: idle WebSockets would drop every 5 s
    CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [{"address": REDIS_URL, "socket_timeout": None}]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = False
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

PERFMONITOR = {"BACKGROUND_FLUSH": False, "SAMPLE_RATE": 1.0}
