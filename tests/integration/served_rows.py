"""Rows of a gold slice as each place holds them (Iceberg, PostgreSQL, MariaDB as TiDB), as comparable multisets.

Shared by the serve test and the products test (which serves its own gold); imported like tests/include/dbt's harness.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter


def iceberg_rows(catalog, table: str, ds: str) -> Counter:
    from pyiceberg.expressions import EqualTo

    arrow = catalog.load_table(f"gold.{table}").scan(row_filter=EqualTo("ds", ds)).to_arrow()
    return Counter(tuple(_plain(v) for v in row.values()) for row in arrow.to_pylist())


def _plain(value):
    """Compare timestamps as naive UTC: each target returns them in its own way."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def pg_query(db: str, sql: str, args: tuple = ()) -> list[tuple]:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=db)
    try:
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        conn.close()


def postgres_rows(db: str, table: str, ds: str, columns: list[str]) -> Counter:
    quoted = ", ".join(f'"{c}"' for c in columns)
    rows = pg_query(db, f'SELECT {quoted} FROM gold."{table}" WHERE ds = %s', (ds,))
    return Counter(tuple(_plain(v) for v in row) for row in rows)


def mariadb_rows(db: str, table: str, ds: str, columns: list[str]) -> Counter:
    import pymysql

    from include.serving.tidb import SESSION_DEFAULTS  # TiDB's sql_mode and collation

    conn = pymysql.connect(host="127.0.0.1", user="root", database=db, **SESSION_DEFAULTS)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT {', '.join(f'`{c}`' for c in columns)} FROM `{table}` WHERE ds = %s", (ds,))
            return Counter(tuple(_plain(v) for v in row) for row in cur.fetchall())
    finally:
        conn.close()
