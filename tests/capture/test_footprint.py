"""What perfmonitor loads into a process that only serves requests.

Every web worker of a site imports the app, its models, its admin and its URLs;
most of them never write a batch (``SHARED_WRITER`` hands their records to one
process per host) and never read a quantile. numpy and the sketches (about 15 MB
of each worker's memory) are loaded where they are used: by the process that
writes, and where quantiles are read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SERVE_AND_HAND_OVER = """
import json, sys
import django
django.setup()
from django.test import Client
from django.urls import get_resolver
get_resolver().url_patterns  # every URL module, the admin's included
from perfmonitor.capture import buffer, health_row, middleware, sharing
client = Client(raise_request_exception=False)
statuses = [client.get(path).status_code for path in ("/plain/", "/boom/")]
records = [r for r in buffer.buffer.waiting() if type(r) is tuple]
sharing.Sharing()  # what a sender runs at each flush (no database needed)
loaded_before = sorted(m for m in ("numpy", "ddsketch") if m in sys.modules)
from perfmonitor import journeys
readable = callable(journeys.analyze_journey) and callable(journeys.journey_metric)
from perfmonitor.capture import writer  # the process that writes loads them
print(json.dumps({"statuses": statuses, "records": len(records), "readable": readable,
                  "loaded_before": loaded_before, "loaded_after": "numpy" in sys.modules}))
"""


def test_a_process_that_serves_and_hands_over_never_loads_numpy():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    env.pop("DATABASE_URL", None)  # these views run no query
    out = subprocess.run([sys.executable, "-c", SERVE_AND_HAND_OVER], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["statuses"] == [200, 500]
    assert found["records"] == 2  # captured as usual
    assert found["loaded_before"] == []
    assert found["readable"] is True  # the journeys API is whole, loaded on first use
    assert found["loaded_after"] is True
