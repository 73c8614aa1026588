"""The test servers of the serving suites, and throwaway databases and connections on them (test helpers)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# TiDB's sql_mode and collation on every MariaDB connection, so SQL only MariaDB's defaults accept fails here.
from include.serving.tidb import SESSION_DEFAULTS

PG_DSN = os.environ.get("LAKEHOUSE_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
MYSQL = {
    "host": os.environ.get("LAKEHOUSE_TEST_MYSQL_HOST", "127.0.0.1"),
    "port": int(os.environ.get("LAKEHOUSE_TEST_MYSQL_PORT", "3306")),
    "user": os.environ.get("LAKEHOUSE_TEST_MYSQL_USER", "root"),
    "password": os.environ.get("LAKEHOUSE_TEST_MYSQL_PASSWORD", ""),
}
# (CREATE, DROP) of a database, by server kind.
_DATABASE_SQL = {
    "postgres": ('CREATE DATABASE "{name}"{owner}', 'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'),
    "mysql": ("CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", "DROP DATABASE IF EXISTS `{name}`"),
}


def admin(kind: str, server: dict | None = None) -> Any:
    """An autocommit connection to the PostgreSQL (``kind="postgres"``) or MySQL-protocol server (``"mysql"``)."""
    if kind == "postgres":
        import psycopg2

        conn = psycopg2.connect(PG_DSN)
        conn.autocommit = True
        return conn
    import pymysql

    return pymysql.connect(**(server or MYSQL), autocommit=True, **SESSION_DEFAULTS)


def execute(conn: Any, sql: str) -> None:
    with conn.cursor() as cur:
        cur.execute(sql)


@contextmanager
def scratch_database(
    kind: str, prefix: str = "serving_test", *, server: dict | None = None, owner: str | None = None
) -> Iterator[str]:
    """A fresh database of its own on the server, dropped on exit; yields its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    create, drop = _DATABASE_SQL[kind]
    conn = admin(kind, server)
    execute(conn, create.format(name=name, owner=f' OWNER "{owner}"' if owner else ""))
    try:
        yield name
    finally:
        execute(conn, drop.format(name=name))
        conn.close()


@contextmanager
def opener(connect: Callable[[], Any]) -> Iterator[Callable[[], Any]]:
    """A function opening connections with ``connect()``; every one it opened is closed on exit."""
    opened: list[Any] = []

    def open_one() -> Any:
        conn = connect()
        opened.append(conn)
        return conn

    try:
        yield open_one
    finally:
        for conn in opened:
            conn.close()
