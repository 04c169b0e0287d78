"""Models and migrations agree; the migrations build what the models describe."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection


@pytest.mark.django_db
def test_models_and_migrations_agree():
    out = StringIO()
    try:
        call_command("makemigrations", "perfmonitor", check=True, dry_run=True, stdout=out,
                     stderr=out)
    except SystemExit as exit_:  # --check exits non-zero when a migration is missing
        pytest.fail(f"perfmonitor models have changes without a migration:\n{out.getvalue()}"
                    if exit_.code else "makemigrations failed")


@pytest.mark.django_db
def test_every_perfmonitor_table_exists():
    from django.apps import apps

    tables = set(connection.introspection.table_names())
    for model in apps.get_app_config("perfmonitor").get_models():
        assert model._meta.db_table in tables, model.__name__


@pytest.mark.postgres
@pytest.mark.django_db
def test_raw_tables_have_brin_time_indexes_on_postgres():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE %s",
                       ["pm_%_brin"])
        found = dict(cursor.fetchall())
    assert set(found) == {"pm_metrics_ts_brin", "pm_vitals_ts_brin"}
    assert all("USING brin" in definition for definition in found.values())
