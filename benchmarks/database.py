"""The benchmarks' own PostgreSQL databases, on the server their settings point at."""

from __future__ import annotations

from typing import Any


def create_database(db: dict[str, Any], *, recreate: bool = False) -> None:
    """Create the database of a Django ``DATABASES`` entry if it is missing; with
    ``recreate``, drop it first."""
    import psycopg

    with psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432,
                         user=db["USER"], password=db["PASSWORD"] or None, dbname="postgres",
                         autocommit=True) as conn:
        if recreate:
            conn.execute(f'DROP DATABASE IF EXISTS "{db["NAME"]}"')
        elif conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                          [db["NAME"]]).fetchone():
            return
        conn.execute(f'CREATE DATABASE "{db["NAME"]}"')
