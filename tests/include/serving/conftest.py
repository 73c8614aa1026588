"""Fixtures for the serving loaders: a throwaway database on the local PostgreSQL and on the local MariaDB."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import uuid
from types import SimpleNamespace

import pyarrow as pa
import pytest
from serving_dbs import MYSQL, PG_DSN, SESSION_DEFAULTS, opener, scratch_database


@pytest.fixture(scope="session")
def pg_database():
    """A fresh PostgreSQL database for the session, dropped afterwards; yields its DSN."""
    with scratch_database("postgres") as name:
        yield f"{PG_DSN.replace('dbname=postgres', '')} dbname={name}"


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
    with scratch_database("mysql") as name:
        yield name


@pytest.fixture
def pg_connect(pg_database):
    """Open connections to the test database (closed after the test); the session time zone is UTC."""
    import psycopg2

    with opener(lambda: psycopg2.connect(pg_database, options="-c TimeZone=UTC")) as connect:
        yield connect


@pytest.fixture
def mysql_connect(mysql_database):
    """Open autocommit connections with LOAD DATA LOCAL enabled and TiDB's session defaults (closed after the test)."""
    import pymysql

    with opener(lambda: pymysql.connect(**MYSQL, autocommit=True, local_infile=True, **SESSION_DEFAULTS)) as connect:
        yield connect


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
    [("ds", pa.date32()), ("trip_id", pa.string()), ("region", pa.string())]
    + [(f"{end}_{axis}", pa.float64()) for end in ("origin", "destination") for axis in ("longitude", "latitude")]
    + [("datetime", pa.timestamp("us", tz="UTC")), ("datasource", pa.string())]
    + [("trip_date", pa.date32()), ("week_start", pa.date32()), ("hour_of_day", pa.int32())]
    + [(name, pa.string()) for name in ("time_bucket", "origin_cell", "destination_cell")]
    + [("origin_fine_x", pa.int64()), ("origin_fine_y", pa.int64()), ("source_file", pa.string())]
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
                "origin_fine_x": None if i % 17 == 5 else math.floor(lon * 1000),
                "origin_fine_y": None if i % 19 == 7 else math.floor(lat * 1000),
                "source_file": f"s3a://landing/trips/{seed}.csv",
            }
        )
    return rows


@pytest.fixture
def trips():
    """The gold.trips-shaped schema and row generator: ``trips.schema``, ``trips.rows(ds, count, seed)``."""
    return SimpleNamespace(schema=TRIPS_SCHEMA, rows=trip_rows)
