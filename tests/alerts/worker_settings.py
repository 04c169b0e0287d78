"""Settings of the Celery worker subprocess: the test settings, the test database given in
DATABASE_URL, and PERFMONITOR overrides passed as JSON in PERFMONITOR_OVERRIDES."""

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import PERFMONITOR as _BASE

PERFMONITOR = {**_BASE, **json.loads(os.environ.get("PERFMONITOR_OVERRIDES", "{}"))}
