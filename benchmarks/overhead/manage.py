#!/usr/bin/env python
"""manage.py of the overhead benchmark's site (BENCH_PROFILE selects the profile)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
