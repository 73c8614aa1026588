"""``kill -9`` of a serving load (PostgreSQL during its COPY, TiDB between two chunks), then the retry.

Each test serves two slices (A at snapshot 1, B), starts a load of a new version of A (snapshot 2) in a process of
its own (``load_driver.py``), waits until the database holds part of it (PostgreSQL: ``pg_stat_progress_copy`` of
the load's backend; TiDB: committed chunks under the load's id), SIGKILLs the process, and runs the load again.
The tables then must equal those of a clean run (the same loads, without the kill, into a fresh database), and the
slices the Parquet sources read with pyarrow. A reader thread reads slice A and the load-log throughout. What it
sees at every moment:

PostgreSQL (``gold.<table>``, a partition per slice; the load's one transaction: staging table, COPY, swap):

- while the COPY runs: the old slice A exactly (its rows, the load-log row of snapshot 1), and slice B; the staging
  table and the rows copied into it belong to an uncommitted transaction, invisible to other sessions (not even in
  ``pg_class``);
- at the kill: the server reads end-of-file on the connection, rolls the transaction back and drops the staging
  table with it; readers still see the old slice, never blocked (the swap's lock on the parent was never taken);
- after it, until the retry: the same; nothing of the killed load remains (no relation, no load-log row);
- the retry: a load like any other; readers see the old slice until its COMMIT, the new one from then on.

PostgreSQL, the worker frozen (not killed: its connection stays open) in the swap, holding the parent's lock:

- a reader's query on ``gold.<table>`` waits for the lock; the server ends the frozen session once its transaction
  has idled ``idle_timeout_s`` (2 s in the test, 30 s by default), rolling it back; the waiting query then returns
  the old slice. Before the fix the reader waited until TCP gave the connection up (hours).

PostgreSQL, the swap waiting for its lock behind a long query (a dashboard's transaction reading the table):

- the load's lock request waits, and every query after it would queue behind it: a reader waits at most
  ``lock_timeout_s`` (0.5 s in the test, 1 s by default), as the swap gives the request up and asks again after a
  pause, and it reads the old slice; once the long query ends the swap goes through. Before the fix the reader
  waited for the long query to end.

TiDB (MariaDB stands in; ``<table>`` is a view of ``<table>__rows`` joined with the load-log's served ``load_id``):

- between chunks: the old slice A; the committed chunks are rows of the rows table under a load id the load-log
  does not name, so the view does not show them;
- at the kill and after it: the same; the killed load's rows stay in the rows table, invisible;
- the retry: stages under a newer load id, flips the load-log row to it (from then on readers see the new slice),
  then deletes every older version of slice A, the killed load's rows included.

TiDB, killed after the flip, before the load deleted the version it replaced:

- from the flip on: the new slice A (the flip's one-row transaction committed); the old version's rows are still
  in the rows table, invisible;
- the retry finds snapshot 2 served and skips the load, but deletes the older versions of the slice (before the
  fix it skipped and kept them, doubling the slice's stored rows until its next snapshot).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from serving_dbs import MYSQL, PG_DSN, SESSION_DEFAULTS, scratch_database

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
DRIVER = Path(__file__).with_name("load_driver.py")
TABLE = "kill_test"
DS_A = dt.date(2026, 11, 20)
DS_B = dt.date(2026, 11, 21)
SCHEMA = pa.schema(
    [("ds", pa.date32()), ("id", pa.int64()), ("n", pa.int64()), ("s", pa.string()), ("x", pa.float64())]
)
COLUMNS = "id, n, s, x"
WAIT_S = 30


def write_source(path: Path, ds: dt.date, count: int, tag: str) -> Path:
    ids = range(count)
    data = {"ds": [ds] * count, "id": ids, "n": [i * 7 for i in ids], "s": [f"{tag}-{i}" for i in ids]}
    data["x"] = [i / 3 for i in ids]
    pq.write_table(pa.Table.from_pydict(data, schema=SCHEMA), path)
    return path


def source_rows(path: Path) -> list[tuple]:
    """The slice's rows as pyarrow reads them from the Parquet source, in id order."""
    table = pq.read_table(path, columns=["id", "n", "s", "x"]).sort_by("id")
    return [tuple(row.values()) for row in table.to_pylist()]


class Database:
    """One serving database of the test: loads into it through the driver, reads with plain SQL."""

    kind = ""
    served_sql = log_sql = stored_sql = alive_sql = ""

    def __init__(self, name: str) -> None:
        self.name = name

    def connect(self):
        raise NotImplementedError

    def start(self, ds: dt.date, snapshot_id: int, parquet: Path, *flags: str):
        """The driver, loading ``parquet`` as slice ``ds``; returns the process and its connection's server id."""
        command = [sys.executable, str(DRIVER), self.kind, json.dumps(self.connection), TABLE, ds.isoformat()]
        command += [str(snapshot_id), str(parquet), *flags]
        proc = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True
        )
        return proc, int(proc.stdout.readline() or 0)

    def load(self, ds: dt.date, snapshot_id: int, parquet: Path) -> None:
        proc, _ = self.start(ds, snapshot_id, parquet)
        assert proc.wait(timeout=WAIT_S) == 0, f"the load of {parquet.name} failed"
        proc.stdout.close()

    def query(self, conn, sql: str, args=()) -> list[tuple]:
        with conn.cursor() as cur:
            cur.execute(sql.format(db=self.name, table=TABLE), args)
            return [tuple(row) for row in cur.fetchall()]

    def served(self, conn, ds: dt.date) -> list[tuple]:
        return self.query(conn, f"SELECT {COLUMNS} FROM {self.served_sql} WHERE ds = %s ORDER BY id", (ds,))

    def snapshot(self, conn) -> dict:
        """Everything a clean run is compared on: served slices, the load-log, what is stored."""
        return {
            "A": self.served(conn, DS_A),
            "B": self.served(conn, DS_B),
            "log": self.query(conn, self.log_sql),
            "stored": self.query(conn, self.stored_sql),
        }

    def in_flight(self, conn, server_id: int) -> int:
        """Rows of the load running on connection ``server_id`` that the database holds but does not serve."""
        raise NotImplementedError

    def alive(self, conn, server_id: int) -> bool:
        """Whether the server still has the connection ``server_id``."""
        return bool(self.query(conn, self.alive_sql, (server_id,))[0][0])


def wait_until(value, done, proc=None) -> None:
    """Poll ``value()`` until ``done(value())``; fail when the driver exits first, or after ``WAIT_S``."""
    deadline = time.monotonic() + WAIT_S
    while not done(found := value()):
        assert proc is None or proc.poll() is None, f"the driver exited with {proc.returncode} before the kill"
        assert time.monotonic() < deadline, f"still {found} after {WAIT_S}s"
        time.sleep(0.02)


class Postgres(Database):
    kind = "postgres"
    served_sql = "gold.{table}"
    log_sql = "SELECT table_name, ds, snapshot_id, rows FROM gold._lakehouse_loads ORDER BY table_name, ds"
    stored_sql = (
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace"
        " WHERE s.nspname IN ('gold', 'gold_slices') ORDER BY c.relname"
    )
    alive_sql = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"

    @property
    def connection(self) -> dict:
        return {"dsn": f"{PG_DSN.replace('dbname=postgres', '')} dbname={self.name}"}

    def connect(self):
        import psycopg2

        conn = psycopg2.connect(self.connection["dsn"], options="-c statement_timeout=10000")
        conn.autocommit = True
        return conn

    def in_flight(self, conn, server_id: int) -> int:
        # What the backend's COPY has written so far, in its own uncommitted transaction.
        sql = "SELECT coalesce(max(tuples_processed), 0) FROM pg_stat_progress_copy WHERE pid = %s"
        return int(self.query(conn, sql, (server_id,))[0][0])


class TiDB(Database):
    kind = "tidb"
    served_sql = "`{db}`.`{table}`"
    log_sql = "SELECT table_name, ds, snapshot_id, `rows` FROM `{db}`._lakehouse_loads ORDER BY table_name, ds"
    # The rows table but for the load ids, which differ between databases by construction.
    stored_sql = f"SELECT ds, _row, {COLUMNS} FROM `{{db}}`.`{{table}}__rows` ORDER BY ds, _row"
    alive_sql = "SELECT count(*) FROM information_schema.processlist WHERE id = %s"

    @property
    def connection(self) -> dict:
        return {**MYSQL, "database": self.name}

    def connect(self):
        import pymysql

        return pymysql.connect(**self.connection, autocommit=True, **SESSION_DEFAULTS)

    def in_flight(self, conn, server_id: int) -> int:
        # Rows committed under a load id the load-log does not serve: the chunks of a load not flipped (yet).
        sql = (
            "SELECT count(*) FROM `{db}`.`{table}__rows` r WHERE NOT EXISTS (SELECT 1 FROM `{db}`._lakehouse_loads l"
            " WHERE l.table_name = %s AND l.ds = r.ds AND l.load_id = r._load_id)"
        )
        return int(self.query(conn, sql, (TABLE,))[0][0])


KINDS = {"postgres": (Postgres, 200_000, 100_000), "tidb": (TiDB, 35_000, 20_000)}


class Reader(threading.Thread):
    """Reads slice A and its load-log row again and again on a connection of its own, keeping what it saw."""

    def __init__(self, database: Database) -> None:
        super().__init__(daemon=True)
        self.database, self.conn = database, database.connect()
        self.seen: list[tuple] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def observe(self) -> tuple:
        log = [row for row in self.database.query(self.conn, self.database.log_sql) if row[1] == DS_A]
        return tuple(self.database.served(self.conn, DS_A)), tuple(log)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.seen.append(self.observe())
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error

    def finish(self) -> list[tuple]:
        self.stop.set()
        self.join(timeout=WAIT_S)
        self.conn.close()
        assert self.error is None, f"the reader failed: {self.error!r}"
        return self.seen


def write_sources(folder: Path, new_rows: int) -> SimpleNamespace:
    """Slice A at snapshot 1, slice B, and the new version of slice A (snapshot 2), as Parquet files."""
    return SimpleNamespace(
        old_a=write_source(folder / "a1.parquet", DS_A, 1_000, "old"),
        slice_b=write_source(folder / "b.parquet", DS_B, 500, "b"),
        new_a=write_source(folder / "a2.parquet", DS_A, new_rows, "new"),
    )


def serve_slices(db: Database, sources: SimpleNamespace) -> None:
    db.load(DS_A, 1, sources.old_a)
    db.load(DS_B, 1, sources.slice_b)


@contextlib.contextmanager
def served_database(target: type[Database], sources: SimpleNamespace):
    """A fresh database serving slice A (snapshot 1) and slice B; yields it and a connection to it."""
    with scratch_database("postgres" if target is Postgres else "mysql", "kill_test") as name:
        db = target(name)
        serve_slices(db, sources)
        with contextlib.closing(db.connect()) as conn:
            yield db, conn


def clean_run(target: type[Database], sources: SimpleNamespace) -> dict:
    """The tables after the same loads, none killed, into a fresh database."""
    with scratch_database("postgres" if target is Postgres else "mysql", "clean_run") as name:
        db = target(name)
        serve_slices(db, sources)
        db.load(DS_A, 2, sources.new_a)
        with contextlib.closing(db.connect()) as conn:
            return db.snapshot(conn)


@contextlib.contextmanager
def killed_load(db: Database, conn, sources: SimpleNamespace, in_phase, *flags: str):
    """Start the load of the new slice A, wait until ``in_phase(server_id)``, yield, then ``kill -9`` it.

    On exit the process is dead and the server has dropped its connection.
    """
    proc, server_id = db.start(DS_A, 2, sources.new_a, *flags)
    try:
        wait_until(lambda: in_phase(server_id), bool, proc)
        yield server_id
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=WAIT_S) == -signal.SIGKILL
        wait_until(lambda: db.alive(conn, server_id), lambda alive: not alive)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def without_stored(state: dict) -> dict:
    return {name: value for name, value in state.items() if name != "stored"}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kill_9_mid_load_serves_the_previous_slice_and_the_retry_equals_a_clean_run(kind, tmp_path):
    target, new_rows, hold_after = KINDS[kind]
    sources = write_sources(tmp_path, new_rows)
    with served_database(target, sources) as (db, conn):
        before = db.snapshot(conn)
        reader = Reader(db)
        # The phase under test: rows of the new slice are in the database (in the COPY, or committed chunks).
        with killed_load(
            db, conn, sources, lambda sid: db.in_flight(conn, sid) >= hold_after, f"--hold-after={hold_after}"
        ) as server_id:
            reader.start()
            during = db.snapshot(conn)
        after = db.snapshot(conn)
        seen = reader.finish()
        leftovers = db.in_flight(conn, server_id)

        db.load(DS_A, 2, sources.new_a)
        retried = db.snapshot(conn)
        assert db.in_flight(conn, server_id) == 0

    assert before["A"] == source_rows(sources.old_a)
    old_log = [row for row in before["log"] if row[1] == DS_A]
    for state in (during, after):
        assert without_stored(state) == without_stored(before)
        # PostgreSQL's staging table is never visible to others; TiDB's rows table holds the staged chunks.
        assert (state["stored"] == before["stored"]) is (kind == "postgres")
    assert seen, "the reader read nothing during the kill"
    assert set(seen) == {(tuple(before["A"]), tuple(old_log))}
    # TiDB keeps the killed load's committed chunks, invisible, until the retry deletes them; PostgreSQL nothing.
    assert leftovers == (hold_after if kind == "tidb" else 0)
    assert retried == clean_run(target, sources)
    assert retried["A"] == source_rows(sources.new_a)
    assert retried["B"] == source_rows(sources.slice_b)
    assert [row[2:] for row in retried["log"]] == [(2, new_rows), (1, 500)]


def test_kill_9_of_a_tidb_load_after_its_flip_the_retry_removes_the_old_version(tmp_path):
    sources = write_sources(tmp_path, 15_000)
    with served_database(TiDB, sources) as (db, conn):

        def flipped(_server_id: int) -> bool:
            return (DS_A, 2) in {(row[1], row[2]) for row in db.query(conn, db.log_sql)}

        # Killed once slice A is flipped to the new load, before the old version's rows are deleted.
        with killed_load(db, conn, sources, flipped, "--hold-before-cleanup") as server_id:
            during = db.snapshot(conn)
        after = db.snapshot(conn)
        old_version = db.in_flight(conn, server_id)

        db.load(DS_A, 2, sources.new_a)
        retried = db.snapshot(conn)

    assert during["A"] == after["A"] == source_rows(sources.new_a)
    assert old_version == 1_000
    assert retried == clean_run(TiDB, sources)


def test_a_postgres_load_frozen_in_its_swap_blocks_readers_only_until_the_server_drops_it(tmp_path):
    sources = write_sources(tmp_path, 2_000)
    with served_database(Postgres, sources) as (db, conn):
        before = db.snapshot(conn)

        def locked(server_id: int) -> bool:
            sql = (
                "SELECT count(*) FROM pg_locks WHERE pid = %s AND mode = 'AccessExclusiveLock' AND granted"
                " AND relation = 'gold.{table}'::regclass"
            )
            return bool(db.query(conn, sql, (server_id,))[0][0])

        options = f"--options={json.dumps({'idle_timeout_s': 2})}"
        # The worker freezes (it is not killed: its connection stays open) holding the lock of the swap.
        with killed_load(db, conn, sources, locked, "--freeze-in-swap", options) as server_id:
            started = time.monotonic()
            seen = db.served(conn, DS_A)
            waited = time.monotonic() - started
            # The server ended the frozen load's session; the process itself is still there until killed.
            wait_until(lambda: db.alive(conn, server_id), lambda alive: not alive)
        after = db.snapshot(conn)

        db.load(DS_A, 2, sources.new_a)
        retried = db.snapshot(conn)

    assert seen == before["A"] == source_rows(sources.old_a)
    assert waited < 8, f"a reader waited {waited:.1f}s for the frozen swap"
    assert after == before
    assert retried == clean_run(Postgres, sources)


@contextlib.contextmanager
def long_query(db: Database):
    """A long dashboard query: its transaction holds ACCESS SHARE on the parent until it is rolled back."""
    with contextlib.closing(db.connect()) as dashboard:
        dashboard.autocommit = False
        db.served(dashboard, DS_B)
        yield dashboard
        dashboard.rollback()


def test_a_postgres_swap_waiting_behind_a_long_query_lets_other_readers_through(tmp_path):
    sources = write_sources(tmp_path, 2_000)
    with served_database(Postgres, sources) as (db, conn), long_query(db) as dashboard:
        before = db.snapshot(conn)
        proc, server_id = db.start(DS_A, 2, sources.new_a, f"--options={json.dumps({'lock_timeout_s': 0.5})}")
        try:

            def waiting_for_the_lock() -> bool:
                sql = "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted"
                return bool(db.query(conn, sql, (server_id,))[0][0])

            wait_until(waiting_for_the_lock, bool, proc)
            started = time.monotonic()
            seen = db.served(conn, DS_A)
            waited = time.monotonic() - started
            dashboard.rollback()
            assert proc.wait(timeout=WAIT_S) == 0
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
        retried = db.snapshot(conn)

    assert seen == before["A"]
    assert waited < 3, f"a reader waited {waited:.1f}s behind the swap's lock request"
    assert retried == clean_run(Postgres, sources)


def test_a_postgres_swap_that_never_gets_its_lock_fails_and_keeps_the_old_slice(tmp_path):
    from include.serving.postgres import load_slice_postgres

    sources = write_sources(tmp_path, 2_000)
    with served_database(Postgres, sources) as (db, conn), long_query(db) as dashboard:
        before = db.snapshot(conn)
        loader = db.connect()
        loader.autocommit = False
        new = pq.read_table(sources.new_a)

        with pytest.raises(RuntimeError, match=f"{TABLE}.*no lock for the swap within 1s"):
            load_slice_postgres(loader, TABLE, DS_A, new.schema, 2, new.to_batches(), lock_timeout_s=0.2, lock_wait_s=1)

        loader.close()
        dashboard.rollback()
        assert db.snapshot(conn) == before
