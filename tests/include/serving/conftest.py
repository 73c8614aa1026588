"""Fixtures for the serving loaders: a throwaway database on the local PostgreSQL and on the local MariaDB."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import uuid
from types import SimpleNamespace

import pyarrow as pa
import pytest

# TiDB's sql_mode and collation on every MariaDB connection, so SQL only MariaDB's defaults accept fails here.
from include.serving.tidb import SESSION_DEFAULTS

PG_DSN = os.environ.get("LAKEHOUSE_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
MYSQL = {
    "host": os.environ.get("LAKEHOUSE_TEST_MYSQL_HOST", "127.0.0.1"),
    "port": int(os.environ.get("LAKEHOUSE_TEST_MYSQL_PORT", "3306")),
    "user": os.environ.get("LAKEHOUSE_TEST_MYSQL_USER", "root"),
    "password": os.environ.get("LAKEHOUSE_TEST_MYSQL_PASSWORD", ""),
}


@pytest.fixture(scope="session")
def pg_database():
    """A fresh PostgreSQL database for the session, dropped afterwards; yields its DSN."""
    import psycopg2

    name = f"serving_test_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(PG_DSN)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_DSN.replace('dbname=postgres', '')} dbname={name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def pg_postgis(pg_database):
    """The session's PostgreSQL database with PostGIS, as the analytics database has it; yields its DSN."""
    import psycopg2

    conn = psycopg2.connect(pg_database)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    finally:
        conn.close()
    return pg_database


@pytest.fixture(scope="session")
def mysql_database():
    """A fresh MariaDB database (the TiDB stand-in) for the session, dropped afterwards; yields its name."""
    import pymysql

    name = f"serving_test_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(**MYSQL, autocommit=True, **SESSION_DEFAULTS)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture
def pg_connect(pg_database):
    """Open connections to the test database (closed after the test); the session time zone is UTC."""
    import psycopg2

    opened = []

    def connect():
        conn = psycopg2.connect(pg_database, options="-c TimeZone=UTC")
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


@pytest.fixture
def mysql_connect(mysql_database):
    """Open autocommit connections with LOAD DATA LOCAL enabled and TiDB's session defaults (closed after the test)."""
    import pymysql

    opened = []

    def connect():
        conn = pymysql.connect(**MYSQL, autocommit=True, local_infile=True, **SESSION_DEFAULTS)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


@pytest.fixture
def airflow_connections(monkeypatch, pg_database, mysql_database) -> SimpleNamespace:
    """The Airflow connections ``analytics_postgres`` and ``tidb`` pointing at the session's test databases."""
    dbname = pg_database.split("dbname=")[-1]
    postgres = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": dbname}
    tidb = {"conn_type": "mysql", "host": "127.0.0.1", "port": 3306, "login": "root", "schema": mysql_database}
    monkeypatch.setenv("AIRFLOW_CONN_ANALYTICS_POSTGRES", json.dumps(postgres))
    monkeypatch.setenv("AIRFLOW_CONN_TIDB", json.dumps(tidb))
    return SimpleNamespace(postgres=dbname, tidb=mysql_database)


@pytest.fixture
def table_name(request) -> str:
    """A table name of its own for each test, so tests share the session databases without interfering."""
    return f"t_{uuid.uuid4().hex[:10]}"


TRIPS_SCHEMA = pa.schema(
    [
        ("ds", pa.date32()),
        ("trip_id", pa.string()),
        ("region", pa.string()),
        ("origin_longitude", pa.float64()),
        ("origin_latitude", pa.float64()),
        ("destination_longitude", pa.float64()),
        ("destination_latitude", pa.float64()),
        ("datetime", pa.timestamp("us", tz="UTC")),
        ("datasource", pa.string()),
        ("trip_date", pa.date32()),
        ("week_start", pa.date32()),
        ("hour_of_day", pa.int32()),
        ("time_bucket", pa.string()),
        ("origin_cell", pa.string()),
        ("destination_cell", pa.string()),
        ("source_file", pa.string()),
    ]
)


def trip_rows(
    ds: dt.date, count: int, seed: int, *, first_day: dt.date = dt.date(2025, 1, 1), days: int = 730
) -> list[dict]:
    """Rows shaped like gold.trips, in a box around New York; some coordinates missing (the loader's NULL case)."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        moment = dt.datetime.combine(first_day + dt.timedelta(days=rng.randrange(days)), dt.time(), dt.UTC)
        moment += dt.timedelta(seconds=rng.randrange(86_400))
        lon, lat = round(rng.uniform(-74.30, -73.65), 6), round(rng.uniform(40.45, 40.95), 6)
        to_lon, to_lat = round(rng.uniform(-74.30, -73.65), 6), round(rng.uniform(40.45, 40.95), 6)
        rows.append(
            {
                "ds": ds,
                "trip_id": f"{seed}-{i:06d}",
                "region": rng.choice(("New York", "Newark")),
                "origin_longitude": None if i % 17 == 5 else lon,
                "origin_latitude": None if i % 19 == 7 else lat,
                "destination_longitude": None if i % 23 == 11 else to_lon,
                "destination_latitude": None if i % 23 == 11 else to_lat,
                "datetime": moment,
                "datasource": rng.choice(("funny_car", "cheap_mobile")),
                "trip_date": moment.date(),
                "week_start": moment.date() - dt.timedelta(days=moment.weekday()),
                "hour_of_day": moment.hour,
                "time_bucket": f"{moment.hour // 3 * 3:02d}-{moment.hour // 3 * 3 + 3:02d}",
                "origin_cell": f"{int(lon * 100 // 1)}:{int(lat * 100 // 1)}",
                "destination_cell": f"{int(to_lon * 100 // 1)}:{int(to_lat * 100 // 1)}",
                "source_file": f"s3a://landing/trips/{seed}.csv",
            }
        )
    return rows


@pytest.fixture
def trips():
    """The gold.trips-shaped schema and row generator: ``trips.schema``, ``trips.rows(ds, count, seed)``."""
    return SimpleNamespace(schema=TRIPS_SCHEMA, rows=trip_rows)
