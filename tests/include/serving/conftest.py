"""Fixtures for the serving loaders: a throwaway database on the local PostgreSQL and on the local MariaDB."""

from __future__ import annotations

import datetime as dt
import os
import random
import uuid
from decimal import Decimal
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
def table_name(request) -> str:
    """A table name of its own for each test, so tests share the session databases without interfering."""
    return f"t_{uuid.uuid4().hex[:10]}"


TRIPS_SCHEMA = pa.schema(
    [
        ("ds", pa.date32()),
        ("trip_id", pa.string()),
        ("pickup_at", pa.timestamp("us", tz="UTC")),
        ("dropoff_at", pa.timestamp("us", tz="UTC")),
        ("pickup_date", pa.date32()),
        ("passenger_count", pa.int32()),
        ("trip_distance", pa.float64()),
        ("duration_minutes", pa.float64()),
        ("pickup_longitude", pa.float64()),
        ("pickup_latitude", pa.float64()),
        ("dropoff_longitude", pa.float64()),
        ("dropoff_latitude", pa.float64()),
        ("fare_amount", pa.decimal128(10, 2)),
        ("total_amount", pa.decimal128(10, 2)),
    ]
)


def trip_rows(
    ds: dt.date, count: int, seed: int, *, first_day: dt.date = dt.date(2025, 1, 1), days: int = 730
) -> list[dict]:
    """Rows shaped like gold.trips, in the NYC service area; some coordinates missing (pickup and dropoff)."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        pickup = dt.datetime.combine(first_day + dt.timedelta(days=rng.randrange(days)), dt.time(), dt.UTC)
        pickup += dt.timedelta(seconds=rng.randrange(86_400))
        minutes = rng.randint(1, 90)
        fare = Decimal(rng.randint(250, 9_000)) / 100
        rows.append(
            {
                "ds": ds,
                "trip_id": f"{seed}-{i:06d}",
                "pickup_at": pickup,
                "dropoff_at": pickup + dt.timedelta(minutes=minutes),
                "pickup_date": pickup.date(),
                "passenger_count": rng.randint(1, 6),
                "trip_distance": round(rng.uniform(0.1, 20), 2),
                "duration_minutes": float(minutes),
                "pickup_longitude": None if i % 17 == 5 else round(rng.uniform(-74.30, -73.65), 6),
                "pickup_latitude": None if i % 19 == 7 else round(rng.uniform(40.45, 40.95), 6),
                "dropoff_longitude": None if i % 23 == 11 else round(rng.uniform(-74.30, -73.65), 6),
                "dropoff_latitude": None if i % 23 == 11 else round(rng.uniform(40.45, 40.95), 6),
                "fare_amount": fare,
                "total_amount": fare + Decimal("1.50"),
            }
        )
    return rows


@pytest.fixture
def trips():
    """The gold.trips-shaped schema and row generator: ``trips.schema``, ``trips.rows(ds, count, seed)``."""
    return SimpleNamespace(schema=TRIPS_SCHEMA, rows=trip_rows)
