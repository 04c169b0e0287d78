"""A month of rollups in PostgreSQL ``bench_alerting`` (the analytics benchmark's generator).

Reuses :mod:`benchmarks.analytics.generate` (10 million events over 30 days
from a busy LMS, aggregated exactly as capture and compaction would) on its
own database and state file, so the two benchmarks never overwrite each other.

    .venv/bin/python -m benchmarks.alerting.generate [--events 10000000]
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.alerting.settings")

# What the benchmarks read about the data set; BENCH_STATE_FILE keeps a second one apart.
STATE_FILE = Path(os.environ.get("BENCH_STATE_FILE", Path(__file__).with_name("dataset.json")))


def main() -> None:
    from benchmarks.analytics import generate

    generate.STATE_FILE = STATE_FILE
    generate.main()


if __name__ == "__main__":
    main()
