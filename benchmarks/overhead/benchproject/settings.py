"""Settings of the overhead benchmark's tiny site; the profile comes from BENCH_PROFILE.

Every profile shares one base (lean middleware, persistent database connections,
DEBUG off) and adds only what that monitor's documentation tells a user to add.
``bare`` and ``placebo`` are configured identically: their difference in a run is
the noise floor.
"""

import os
import sys

PROFILES = ("bare", "placebo", "perfmonitor", "django-silk", "django-prometheus", "sentry-sdk",
            "busywork")
PROFILE = os.environ.get("BENCH_PROFILE", "bare")

if os.environ.get("BENCH_LAYOUT_JITTER"):
    # Each process draws its own heap layout (README "Layout"): a random number of
    # objects of random sizes, allocated before any app is imported and kept, shift
    # where everything after them lands (interned names, code, types). Without it a
    # build has one layout for all its processes, and that layout's luck (CPython's
    # type-attribute cache collisions, for one) moved a profile's ratio by ~3 %.
    # "1" draws at random; any other value seeds the draw, so that a layout can be
    # repeated (instructions.py --layouts: the simulator is deterministic, layouts not).
    import random as _random

    _seed = os.environ["BENCH_LAYOUT_JITTER"]
    _rng = _random.SystemRandom() if _seed == "1" else _random.Random(_seed)
    _LAYOUT_PAD = [("x" * _rng.randrange(1, 600), object(), [0] * _rng.randrange(0, 40))
                   for _ in range(_rng.randrange(200, 6000))]

if os.environ.get("BENCH_BLOCK_MODULES"):
    # Diagnostics: make these top-level modules unimportable (e.g. "celery", which
    # perfmonitor imports for its task signals when it is installed), to see what
    # loading them costs the serving processes.
    for _name in os.environ["BENCH_BLOCK_MODULES"].split(","):
        sys.modules[_name.strip()] = None  # type: ignore[assignment]

if os.environ.get("BENCH_PERFMONITOR_TREE"):
    # Diagnostics (README "Taking perfmonitor apart"): serve perfmonitor from another
    # checkout (e.g. `git worktree add /tmp/old <commit>`), to compare two commits side
    # by side in alternating runs. Nothing has imported perfmonitor yet at this point.
    sys.path.insert(0, os.environ["BENCH_PERFMONITOR_TREE"])
if PROFILE not in PROFILES:
    raise RuntimeError(f"BENCH_PROFILE={PROFILE!r} is not one of {', '.join(PROFILES)}")

SECRET_KEY = "overhead-benchmark"
DEBUG = False  # DEBUG keeps every query in memory: no production site runs with it
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "benchproject.urls"
WSGI_APPLICATION = "benchproject.wsgi.application"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "benchapp",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [], "APP_DIRS": True,
    "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
}]
STATIC_URL = "/static/"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("BENCH_DB_NAME", "bench_overhead"),
        "USER": os.environ.get("BENCH_DB_USER", "postgres"),
        "HOST": os.environ.get("BENCH_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("BENCH_DB_PORT", "5432"),
        # Persistent connections, as production sites run: one backend per worker
        # thread for the whole run, so its CPU can be read from /proc.
        "CONN_MAX_AGE": None,
        # paired.py runs two servers at once and tells their backends apart by this.
        "OPTIONS": {"application_name": os.environ.get("BENCH_APP_NAME", "bench")},
    }
}
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "root": {"handlers": [], "level": "WARNING"}}

if PROFILE == "perfmonitor":
    # README "Install in your project": the app, the middleware at the top, its URLs
    # (benchproject/urls.py). PERFMONITOR is left at its defaults (SAMPLE_RATE 0.1).
    INSTALLED_APPS.append("perfmonitor")
    MIDDLEWARE.insert(0, "perfmonitor.capture.middleware.PerformanceMiddleware")
    if os.environ.get("BENCH_CALLGRIND_LIB"):
        # Instruction count only: valgrind runs ~50x slower, so a 1 s flush would
        # carry ~50x fewer records than at full speed. instructions.py flushes
        # every --per-flush requests instead (benchapp/callgrind.py).
        PERFMONITOR = {"FLUSH_INTERVAL": 3600}
    if os.environ.get("BENCH_PERFMONITOR_SETTINGS"):
        # Diagnostics only (README "Taking perfmonitor apart"): settings on top of the
        # defaults, as JSON, e.g. {"BACKGROUND_FLUSH": false} for the request path alone.
        import json

        PERFMONITOR = {**globals().get("PERFMONITOR", {}),
                       **json.loads(os.environ["BENCH_PERFMONITOR_SETTINGS"])}

elif PROFILE == "busywork":
    # Diagnostics (benchapp/busywork.py): as many interpreter instructions as
    # perfmonitor's request path, in the same places, doing nothing else.
    MIDDLEWARE.insert(0, "benchapp.busywork.BusyworkMiddleware")

elif PROFILE == "django-silk":
    # silk's README: the app, SilkyMiddleware, its URLs; default configuration.
    INSTALLED_APPS.append("silk")
    MIDDLEWARE.insert(0, "silk.middleware.SilkyMiddleware")

elif PROFILE == "django-prometheus":
    # django-prometheus's README: Before first, After last, the database wrapper.
    INSTALLED_APPS.append("django_prometheus")
    MIDDLEWARE.insert(0, "django_prometheus.middleware.PrometheusBeforeMiddleware")
    MIDDLEWARE.append("django_prometheus.middleware.PrometheusAfterMiddleware")
    DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"

elif PROFILE == "sentry-sdk":
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration

    # Every transaction is sent, to the local sink run.py starts (it discards them).
    sentry_sdk.init(
        dsn=os.environ.get("BENCH_SENTRY_DSN", "http://public@127.0.0.1:9/1"),
        integrations=[DjangoIntegration()],
        traces_sample_rate=1.0,
    )
