"""Fixtures for the serving loaders: a throwaway database on the local PostgreSQL and on the local MariaDB."""

from __future__ import annotations

import os
import uuid

import pytest

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
def mysql_database():
    """A fresh MariaDB database (the TiDB stand-in) for the session, dropped afterwards; yields its name."""
    import pymysql

    name = f"serving_test_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(**MYSQL, autocommit=True)
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
    """Open autocommit connections with LOAD DATA LOCAL enabled (closed after the test)."""
    import pymysql

    opened = []

    def connect():
        conn = pymysql.connect(**MYSQL, autocommit=True, local_infile=True, charset="utf8mb4")
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


@pytest.fixture
def table_name(request) -> str:
    """A table name of its own for each test, so tests share the session databases without interfering."""
    return f"t_{uuid.uuid4().hex[:10]}"
