"""Read-only access to TiDB for the API: a bounded pool of PyMySQL connections, statement timeouts, clear failures.

The API connects as a read-only account (credentials from ``LAKEHOUSE_API_DB_*``). Create it once, as an
administrator, on TiDB (or MariaDB/MySQL):

    CREATE USER IF NOT EXISTS 'lakehouse_api'@'%' IDENTIFIED BY '<password>';
    GRANT SELECT ON lakehouse.* TO 'lakehouse_api'@'%';

``SELECT`` on the database covers the loader's view ``<table>``, its ``<table>__rows`` table and the load-log
``_lakehouse_loads``; the account can change nothing. In Docker the one-shot ``tidb-api-user`` service does this.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import pymysql
from pymysql.constants import FIELD_TYPE
from pymysql.converters import conversions
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import QueuePool

from include.api.config import Settings

log = logging.getLogger(__name__)
R = TypeVar("R")

# Client-side errors meaning the connection is gone (server restarted, idle connection dropped): a pooled
# connection may be stale, so the work is tried once more on a fresh one.
DISCONNECTED = frozenset({0, 2006, 2013, 2055})
# Server errors for "the statement ran past its time limit": MariaDB max_statement_time, MySQL/TiDB
# max_execution_time, and an interrupted query.
STATEMENT_TIMEOUT = frozenset({1969, 3024, 1317})
NO_SUCH_TABLE = 1146
# TiDB's memory quota for a query (tidb_mem_quota_query) was exceeded: the server is busy, not broken (503).
MEMORY_QUOTA_EXCEEDED = 8175
# TiDB's session defaults, as the loader sets them (``include.serving.tidb.SESSION_DEFAULTS``; a test checks they
# agree; repeated so the API image needs no pyarrow): on MariaDB, the stand-in, SQL that only MariaDB's defaults
# accept fails as it would on TiDB.
TIDB_SQL_MODE = (
    "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,"
    "NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION"
)
TIDB_COLLATION = "utf8mb4_bin"
# The statement time limit: MariaDB's variable (seconds) on the stand-in, TiDB's and MySQL's (milliseconds, SELECT
# statements only, all the API runs) elsewhere. Names ending in _MARIADB hold SQL sent to MariaDB only (the SQL
# guard test skips them).
SET_TIMEOUT_MARIADB = "SET SESSION max_statement_time = %s"
SET_TIMEOUT = "SET SESSION max_execution_time = %s"
# Dates and timestamps come back as the server's ISO text instead of Python objects: the API only re-emits them as
# ISO strings, and PyMySQL's parsing of them was 45% of the client CPU of a 100-row page (measured).
CONVERSIONS = {kind: convert for kind, convert in conversions.items() if kind not in
               (FIELD_TYPE.DATE, FIELD_TYPE.DATETIME, FIELD_TYPE.TIMESTAMP, FIELD_TYPE.NEWDATE)}  # fmt: skip


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached, or no pooled connection was free in time (the API answers 503)."""


class MemoryQuotaExceeded(DatabaseUnavailable):
    """TiDB stopped the query at its memory quota (8175): busy, not down; the API answers 503 saying so."""


class StatementTimeout(RuntimeError):
    """A statement ran past the request timeout (the API answers 504)."""


class TableMissing(LookupError):
    """A table the query needs does not exist yet: the dataset was never loaded."""


class Database:
    """A bounded connection pool and the one way to run read-only work on it.

    Args:
        settings: connection settings, pool size and timeouts.
        connect: the DB-API ``connect`` to use (tests inject failures); default ``pymysql.connect``.
    """

    def __init__(self, settings: Settings, connect: Callable[..., Any] | None = None) -> None:
        self._settings = settings
        self._connect_fn = connect or pymysql.connect
        # max_overflow=0: never more than pool_size connections a process; a request that finds none free waits
        # pool_timeout_s. reset_on_return=None: autocommit read-only connections need no rollback round trip.
        self._pool = QueuePool(
            self._connect,
            pool_size=settings.pool_size,
            max_overflow=0,
            timeout=settings.pool_timeout_s,
            recycle=1800,
            reset_on_return=None,
            use_lifo=True,
        )

    def _connect(self) -> Any:
        s = self._settings
        conn = self._connect_fn(
            host=s.db_host,
            port=s.db_port,
            user=s.db_user,
            password=s.db_password,
            database=s.db_name,
            charset="utf8mb4",
            collation=TIDB_COLLATION,
            sql_mode=TIDB_SQL_MODE,
            autocommit=True,
            conv=CONVERSIONS,
            connect_timeout=s.connect_timeout_s,
            # A hard client-side stop a little after the server-side one below.
            read_timeout=int(s.request_timeout_s) + 2,
            write_timeout=int(s.request_timeout_s) + 2,
        )
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            version = str(cur.fetchone()[0])
            if "MariaDB" in version:
                cur.execute(SET_TIMEOUT_MARIADB, (s.request_timeout_s,))
            else:
                cur.execute(SET_TIMEOUT, (int(s.request_timeout_s * 1000),))
            cur.execute("SET SESSION time_zone = '+00:00'")
        return conn

    def run(self, work: Callable[[Any], R]) -> R:
        """Run ``work(cursor)`` on a pooled connection; once more on a fresh one if the pooled one was stale.

        Raises:
            DatabaseUnavailable: no connection could be had, or the database went away.
            MemoryQuotaExceeded: TiDB cancelled the query at its memory quota (a ``DatabaseUnavailable``).
            StatementTimeout: the server stopped a statement at the timeout.
            TableMissing: a table does not exist.
        """
        for attempt in (1, 2):
            try:
                conn = self._pool.connect()
            except sa_exc.TimeoutError as error:
                raise DatabaseUnavailable("no database connection free in time") from error
            except (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError) as error:
                raise DatabaseUnavailable(f"cannot connect to the database: {error}") from error
            try:
                with conn.cursor() as cur:
                    return work(cur)
            except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as error:
                code = error.args[0] if error.args else None
                if code in STATEMENT_TIMEOUT:
                    raise StatementTimeout(str(error)) from error
                if code == MEMORY_QUOTA_EXCEEDED:
                    # The connection is fine (TiDB cancelled the statement only): it goes back to the pool.
                    raise MemoryQuotaExceeded(str(error)) from error
                conn.invalidate()
                if code in DISCONNECTED and attempt == 1:
                    log.warning("stale database connection (%s), retrying on a new one", error)
                    continue
                raise DatabaseUnavailable(f"database error: {error}") from error
            except pymysql.err.ProgrammingError as error:
                if error.args and error.args[0] == NO_SUCH_TABLE:
                    raise TableMissing(str(error)) from error
                raise
            finally:
                conn.close()
        raise AssertionError("unreachable")

    def ping(self) -> None:
        """A trivial query through the pool (the health check)."""

        def select_one(cur: Any) -> None:
            cur.execute("SELECT 1")
            cur.fetchall()

        self.run(select_one)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._pool.dispose()
