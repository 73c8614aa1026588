"""Shared by the dbt tests: a throwaway PostgreSQL database holding schema `gold`, `dbt build` into it, queries.

The tests build the real project (include/dbt) with a generated profile pointing at the throwaway database; target
and logs go to the test's own folder, since include/dbt/target holds the manifest Cosmos reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
DBT_PROJECT = ROOT / "include" / "dbt"
DBT = Path(os.environ.get("LAKEHOUSE_DBT_VENV", ROOT / ".venv-dbt")) / "bin" / "dbt"
PG_DSN = os.environ.get("LAKEHOUSE_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")


@contextmanager
def gold_database(
    ddl: str = "",
    rows: Mapping[str, Sequence[tuple]] | None = None,
    *,
    prefix: str = "dbt_test",
    extensions: Iterable[str] = (),
) -> Iterator[str]:
    """A fresh database with schema `gold`, the tables of ``ddl`` and ``rows`` inserted in them; dropped afterwards.

    Args:
        ddl: statements creating the gold tables (as the serving loader would), run after ``extensions``.
        rows: table name (in `gold`) -> rows, each a tuple of every column in order (generated columns excluded).
        prefix: the database name's prefix, so a leftover database names its test.
        extensions: PostgreSQL extensions to create first (``postgis`` for the trips tables and cards).
    """
    import psycopg2

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        conn = psycopg2.connect(PG_DSN, dbname=name)
        with conn, conn.cursor() as cur:
            for extension in extensions:
                cur.execute(f'CREATE EXTENSION IF NOT EXISTS "{extension}"')
            cur.execute("CREATE SCHEMA gold")
            if ddl.strip():
                cur.execute(ddl)
            for table, table_rows in (rows or {}).items():
                if table_rows:
                    marks = ", ".join(["%s"] * len(table_rows[0]))
                    columns = _insert_columns(cur, table, len(table_rows[0]))
                    cur.executemany(f"INSERT INTO gold.{table} ({columns}) VALUES ({marks})", table_rows)
        conn.close()
        yield name
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(statement: str) -> None:
    """Run ``statement`` on the maintenance database, outside a transaction."""
    import psycopg2

    with closing(psycopg2.connect(PG_DSN)) as admin:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(statement)


def _insert_columns(cur: Any, table: str, count: int) -> str:
    """The first ``count`` non-generated columns of ``gold.<table>``, quoted, in order."""
    cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'gold' AND table_name = %s"
        " AND is_generated = 'NEVER' ORDER BY ordinal_position",
        (table,),
    )
    names = [row[0] for row in cur.fetchall()]
    assert len(names) >= count, f"gold.{table} has {len(names)} insertable columns, rows have {count}"
    return ", ".join(f'"{name}"' for name in names[:count])


def write_profile(database: str, work: Path, *, threads: int = 2) -> None:
    """``work/profiles.yml``: the project's profile against ``database`` of the local PostgreSQL, schema ``gold``."""
    from psycopg2.extensions import parse_dsn

    dsn = parse_dsn(PG_DSN)
    profile = {
        "type": "postgres",
        "host": dsn.get("host", "127.0.0.1"),
        "port": int(dsn.get("port", 5432)),
        "user": dsn.get("user", "postgres"),
        "password": dsn.get("password", ""),
        "dbname": database,
        "schema": "gold",
        "threads": threads,
    }
    (work / "profiles.yml").write_text(json.dumps({"lakehouse": {"target": "test", "outputs": {"test": profile}}}))


def dbt_build(
    database: str, work: Path, select: Sequence[str] = (), *, threads: int = 2
) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """`dbt build` of the project (or of ``select``) into ``database``; the process and each node's status."""
    assert DBT.exists(), f"{DBT} is missing: run devtools/dbt_setup.sh first"
    write_profile(database, work, threads=threads)
    selection = ["--select", *select] if select else []
    proc = subprocess.run(
        [str(DBT), "build", *selection, "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(work)]
        + ["--target-path", str(work / "target"), "--log-path", str(work / "logs")],
        capture_output=True,
        text=True,
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        timeout=600,
    )
    results = json.loads((work / "target" / "run_results.json").read_text())["results"]
    return proc, {r["unique_id"]: r["status"] for r in results}


@contextmanager
def built_project(
    work: Path,
    ddl: str,
    rows: Mapping[str, Sequence[tuple]],
    select: Sequence[str] = (),
    *,
    prefix: str = "dbt_test",
    extensions: Iterable[str] = (),
    threads: int = 2,
) -> Iterator[tuple[str, dict[str, str]]]:
    """A ``gold_database`` and a `dbt build` into it that must succeed: (database, each node's status)."""
    with gold_database(ddl, rows, prefix=prefix, extensions=extensions) as database:
        proc, statuses = dbt_build(database, work, select, threads=threads)
        assert proc.returncode == 0, f"dbt build failed:\n{proc.stdout}\n{proc.stderr}"
        yield database, statuses


def outcome(statuses: Mapping[str, str]) -> tuple[set[str], dict[str, str]]:
    """The models that succeeded (by name), and every test's status (by unique id)."""
    models = {
        uid.split(".")[-1] for uid, status in statuses.items() if uid.startswith("model.") and status == "success"
    }
    return models, {uid: status for uid, status in statuses.items() if uid.startswith("test.")}


def query(database: str, sql: str, args: Sequence[Any] | Mapping[str, Any] | None = None) -> list[tuple]:
    """The rows of ``sql`` run in ``database`` (session time zone UTC)."""
    import psycopg2

    with closing(psycopg2.connect(PG_DSN, dbname=database)) as conn, conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
        cur.execute(sql, args)
        return cur.fetchall()


def failed_nodes(statuses: Mapping[str, str]) -> set[str]:
    """The names of the nodes that failed or errored (a test's name is the third part of its unique id)."""
    return {uid.split(".")[2] for uid, status in statuses.items() if status in ("fail", "error")}
