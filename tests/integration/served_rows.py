"""Rows of a gold slice as each place holds them (Iceberg, PostgreSQL, MariaDB as TiDB), as comparable multisets.

Shared by the serve test and the products and rentals tests (which serve their own gold: each is a test group of its
own, tests/conftest.py); imported like tests/include/dbt's harness.
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


def serve_both(catalog, tables: list[str], ds: str, database: str) -> None:
    """Load each gold table's ``ds`` slice into PostgreSQL and MariaDB ``database`` with the serve DAG's loaders."""
    import psycopg2
    import pymysql

    from include.serving.postgres import load_slice_postgres
    from include.serving.source import read_slice
    from include.serving.tidb import SESSION_DEFAULTS, load_slice_tidb

    pg = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=database, options="-c TimeZone=UTC")
    my = pymysql.connect(
        host="127.0.0.1", port=3306, user="root", password="", database=database, local_infile=True, **SESSION_DEFAULTS
    )
    try:
        for table in tables:
            data = read_slice(f"gold.{table}", ds, catalog=catalog)
            load_slice_postgres(pg, table, ds, data.schema, data.snapshot_id, data.batches)
            data = read_slice(f"gold.{table}", ds, catalog=catalog)
            load_slice_tidb(my, table, ds, data.schema, data.snapshot_id, data.batches)
    finally:
        pg.close()
        my.close()


def assert_served_identically(catalog, tables: list[str], ds: str, database: str) -> None:
    """Every table's ``ds`` slice in PostgreSQL and in MariaDB equals the Iceberg slice, as a multiset of rows."""
    for table in tables:
        want = iceberg_rows(catalog, table, ds)
        columns = list(catalog.load_table(f"gold.{table}").schema().column_names)
        assert want, table
        assert postgres_rows(database, table, ds, columns) == want, table
        assert mariadb_rows(database, table, ds, columns) == want, table
