"""TiDB loader: a gold slice into ``lakehouse.<table>``, in transactions of at most 10,000 rows, swapped atomically.

Design. TiDB limits a transaction's size, so a slice cannot be deleted and re-inserted in one transaction once it
is large, and a slice loaded over several transactions must stay invisible until complete. Each slice is
therefore versioned:

- ``lakehouse.<table>__rows`` holds the rows, each tagged with the ``_load_id`` of the load that wrote it (the
  primary key is ``(ds, _load_id, _row)``);
- ``lakehouse._lakehouse_loads`` (the load-log) holds, per (table_name, ds), the ``load_id`` being served;
- ``lakehouse.<table>`` is a view joining the two: readers see exactly the rows of each slice's current load.

A load stages its rows under a new ``load_id`` (``LOAD DATA LOCAL INFILE`` of CSV chunks of at most 10,000 rows
and at most ``MAX_TXN_BYTES`` counting the index entries they write, one autocommitted transaction each: it measured
faster than multi-row INSERTs, and TiDB refuses a transaction past ``txn-total-size-limit``, 100 MB by default, index
entries included), then flips the slice's ``load_id`` in one single-row transaction, then deletes the superseded
rows a key range at a time. The flip is the swap: before it readers see the old slice, after it the new one,
whatever the slice's size. A failure before the flip leaves the old slice served (the new rows are removed, or by
the next load); a crash after it leaves the replaced versions, invisible, until the next load of the slice deletes
them, a retry that skips (its snapshot is served already) included. A delete+insert in one transaction below a size
threshold would need a second code path for big slices anyway, with the same guarantee.

Load ids come from the database, not from a worker's clock: the counter ``_lakehouse_load_ids`` hands out the next
one in a transaction of its own (a row lock orders concurrent loads), so a load that starts later has a larger id
whichever worker runs it, and a flip never lets an older load replace a newer one (``SupersededLoad``).

Old versions are deleted by a moving lower bound on the primary key ``(ds, _load_id, _row)``: each batch is one key
range ``_row`` in ``[r, r + 10,000)`` of one old load, and the next batch starts its search at the end of the last
one. A ``DELETE ... LIMIT`` loop would instead scan from the slice's start every time, and in TiDB the rows already
deleted stay in that range as MVCC tombstones until GC runs, so each batch would read every earlier batch again.

The same SQL runs on MariaDB (the stand-in for TiDB in tests), with TiDB's ``sql_mode`` and collation set on every
connection (``SESSION_DEFAULTS``); where the two servers need different SQL (``ANALYZE``), names ending in
``_MARIADB`` hold the MariaDB form, chosen by the server's version string. Statements failing with TiDB's retryable
errors (write conflicts, schema changes, PD/TiKV timeouts, unavailable regions, deadlocks, lock wait timeouts) are
retried with bounded, jittered backoff (one tenacity policy, ``with_retries``). ``LOAD DATA LOCAL`` needs
``local_infile`` on the client (``connect`` sets it); MariaDB and TiDB allow it by default on the server side. The
servers differ on bad data: MariaDB (like MySQL) treats ``LOCAL`` as ``IGNORE``, turning conversion errors and
duplicate keys into warnings and skipping or truncating the row, so the loader fails a chunk with any warning; TiDB
raises an error instead (strict ``sql_mode``, duplicate keys), which fails the statement. Either way the chunk fails
and the load is discarded.

A table can get secondary indexes of its own (``indexes``, e.g. for the trips' bounding-box queries): created with
the rows table, or added one ``ALTER TABLE`` each (TiDB's online DDL) when the table exists without them. Each ends
with ``(ds, _load_id)``, the columns the view joins the load-log on, so a query through the view whose columns the
index holds reads the index alone, whether or not TiDB clusters the rows on the primary key. The optimizer needs
statistics to know the slices are big enough for those indexes to pay: after a load that grew the table's served
rows past the next step of ``ANALYZE_GROWTH`` (and after its first load), the loader analyzes those indexes only
(TiDB's ``ANALYZE TABLE t INDEX ...``; TiDB's docs warn a full ``ANALYZE TABLE`` runs far longer than MySQL's, and it
would grow with every slice). Between steps TiDB's auto-analyze keeps the statistics current.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.csv as pacsv
import tenacity

from include.serving import loads
from include.serving.loads import DS, LOAD_LOG, LOADED_AT, LoadResult, Target
from include.serving.table_specs import SecondaryIndex

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = "tidb"
DATABASE = "lakehouse"
LOAD_ID = "_load_id"
# One row: the last load id handed out in the database (see _next_load_id).
LOAD_IDS = "_lakehouse_load_ids"
# Row number within a load: with ds and _load_id the clustered primary key, so rows append in key order and the
# view's join and the deletes of old versions read one key range (a secondary index measured 15% slower).
ROW = "_row"
ROWS_SUFFIX = "__rows"
# TiDB's advice for batched DML, and the limit: at most this many rows a transaction.
MAX_TXN_ROWS = 10_000
# A chunk's bytes times the entries each row writes (the row, the slice_keys index, each secondary index) stay under
# this: TiDB's txn-total-size-limit is 100 MB by default and counts index entries; the headroom covers the
# key-value encoding, which is larger than Arrow's in-memory size the estimate starts from.
MAX_TXN_BYTES = 64 * 1024 * 1024
# Analyze the indexes again when the served rows grew by this fraction since the last step (see _should_analyze).
ANALYZE_GROWTH = 0.2
# TiDB's session defaults (docs.pingcap.com/tidb/stable/sql-mode, v8.5): its default sql_mode and the utf8mb4
# collation it uses. MariaDB's own defaults accept SQL TiDB refuses (a non-aggregated column outside GROUP BY, a zero
# date), and PyMySQL's `SET NAMES utf8mb4` gives utf8mb4_general_ci there, which compares strings case-insensitively
# where TiDB does not; every connection the loader, the API and the tests open sets both, so such SQL fails here too.
TIDB_SQL_MODE = (
    "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,"
    "NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION"
)
TIDB_COLLATION = "utf8mb4_bin"
# PyMySQL applies these on connect and again on every reconnect.
SESSION_DEFAULTS = {"charset": "utf8mb4", "collation": TIDB_COLLATION, "sql_mode": TIDB_SQL_MODE}
# Statement rolled back, safe to run again: 8002 SELECT FOR UPDATE conflict, 8005 write conflict (optimistic
# transactions), 8022 transaction retry failed, 8028 schema changed during the transaction, 9001 PD server timeout,
# 9002 TiKV server timeout, 9005 region unavailable, 9007 write conflict, 1213 deadlock, 1205 lock wait timeout.
RETRYABLE = frozenset({8002, 8005, 8022, 8028, 9001, 9002, 9005, 9007, 1213, 1205})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,56}$")
_CSV = pacsv.WriteOptions(include_header=False, null_string="NULL")
# ENCLOSED BY makes an unquoted NULL a NULL and a quoted "NULL" a string; ESCAPED BY '' reads backslashes as data.
_LOAD = (
    "LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4"
    " FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n'"
    " ({columns}) SET {loaded_at} = %s, {load_id} = %s"
)

R = TypeVar("R")


class SupersededLoad(RuntimeError):
    """A newer load of the same slice was flipped in while this one staged; this one's rows were discarded."""


def connect(conn_id: str = DEFAULT_CONN_ID) -> Any:
    """A PyMySQL connection from the Airflow connection ``conn_id`` (resolved now, at task run time).

    Args:
        conn_id: an Airflow connection of type ``mysql`` pointing at TiDB (or MariaDB); its schema is the
            default database.

    Returns:
        An open ``pymysql`` connection in autocommit mode with ``LOAD DATA LOCAL`` enabled and TiDB's session
        defaults (``SESSION_DEFAULTS``: its ``sql_mode`` and the ``utf8mb4_bin`` collation).
    """
    import pymysql
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    return pymysql.connect(
        host=conn.host or "localhost",
        port=conn.port or 4000,
        user=conn.login or "root",
        password=conn.password or "",
        database=conn.schema or None,
        autocommit=True,
        local_infile=True,
        **SESSION_DEFAULTS,
    )


def ident(name: str) -> str:
    """A MySQL quoted identifier."""
    return "`" + name.replace("`", "``") + "`"


def _retryable(error: BaseException) -> bool:
    import pymysql

    return isinstance(error, pymysql.err.MySQLError) and bool(error.args) and error.args[0] in RETRYABLE


def with_retries(
    action: Callable[[], R], conn: Any = None, *, attempts: int = 5, base_delay: float = 0.2, max_delay: float = 5.0
) -> R:
    """Run ``action``; on a retryable TiDB/MySQL error roll back ``conn`` and run it again, up to ``attempts`` times.

    The serving loaders' one retry policy (tenacity): only the error codes in ``RETRYABLE``, at most ``attempts``
    tries, waits doubling from ``base_delay`` up to ``max_delay`` with "equal jitter" (between half and all of the
    wait); the last error is raised as it was.

    Args:
        action: the work, a callable without arguments; it must be safe to run again after a rollback.
        conn: rolled back before each retry when given.
        attempts: total tries.
        base_delay: the first wait in seconds, doubled after each failure (with jitter), at most ``max_delay``.

    Returns:
        What ``action`` returned.
    """

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if conn is not None:
            conn.rollback()
        error = state.outcome.exception()
        log.warning(
            "retryable error %s (attempt %d/%d), again in %.2fs: %s",
            error.args[0],
            state.attempt_number,
            attempts,
            state.upcoming_sleep,
            error,
        )

    half = {"multiplier": base_delay / 2, "max": max_delay / 2}
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(_retryable),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(**half) + tenacity.wait_random_exponential(**half),
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(action)


def _execute(conn: Any, sql: str, args: Any = None) -> int:
    def run() -> int:
        with conn.cursor() as cur:
            return cur.execute(sql, args)

    return with_retries(run, conn)


def _fetchall(conn: Any, sql: str, args: Any = None) -> list[tuple]:
    def run() -> list[tuple]:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    return with_retries(run, conn)


def _logged(conn: Any, db: str, table: str, ds: dt.date) -> tuple[int | None, int, int] | None:
    """The (snapshot_id, rows, load_id) the load-log holds for the slice, if any."""
    found = _fetchall(
        conn, "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s", (db, LOAD_LOG)
    )
    if not found:
        return None
    rows = _fetchall(
        conn,
        f"SELECT snapshot_id, `rows`, load_id FROM {ident(db)}.{ident(LOAD_LOG)} WHERE table_name = %s AND ds = %s",
        (table, ds),
    )
    return rows[0] if rows else None


def _table_columns(conn: Any, db: str, name: str) -> dict[str, str]:
    rows = _fetchall(
        conn,
        "SELECT column_name, table_type FROM information_schema.columns c JOIN information_schema.tables t"
        " USING (table_schema, table_name) WHERE c.table_schema = %s AND c.table_name = %s ORDER BY c.ordinal_position",
        (db, name),
    )
    return {column: kind for column, kind in rows}


def _index_columns(index: SecondaryIndex) -> list[str]:
    return [*index.columns, *(name for name in (DS, LOAD_ID) if name not in index.columns)]


def _check_indexes(schema: pa.Schema, indexes: Sequence[SecondaryIndex]) -> None:
    names = [index.name for index in indexes]
    if len(set(names)) != len(names) or {"primary", "slice_keys"} & {name.lower() for name in names}:
        raise ValueError(f"index names must be unique and not PRIMARY or slice_keys: {names}")
    for index in indexes:
        if not _NAME.match(index.name) or not index.columns:
            raise ValueError(f"index {index.name!r}: the name must match {_NAME.pattern}, and columns be given")
        missing = [name for name in index.columns if name not in schema.names]
        if missing:
            raise ValueError(f"index {index.name!r}: no column {missing} in the slice schema")


def _index_names(conn: Any, db: str, name: str) -> set[str]:
    rows = _fetchall(
        conn,
        "SELECT DISTINCT index_name FROM information_schema.statistics WHERE table_schema = %s AND table_name = %s",
        (db, name),
    )
    return {row[0] for row in rows}


def _ensure_target(
    conn: Any, db: str, table: str, schema: pa.Schema, keys: Sequence[str], indexes: Sequence[SecondaryIndex] = ()
) -> list[str]:
    """Create the load-log, the rows table and the view when missing; add new columns and indexes.

    Returns the view's columns.
    """
    _execute(conn, f"CREATE DATABASE IF NOT EXISTS {ident(db)}")
    _execute(
        conn,
        f"CREATE TABLE IF NOT EXISTS {ident(db)}.{ident(LOAD_LOG)} (table_name VARCHAR(255) NOT NULL,"
        " ds DATE NOT NULL, snapshot_id BIGINT NULL, `rows` BIGINT NOT NULL, duration_s DOUBLE NOT NULL,"
        " loaded_at DATETIME(6) NOT NULL, load_id BIGINT NOT NULL, PRIMARY KEY (table_name, ds))"
        " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
    )
    _ensure_load_ids(conn, db)
    rows_table = f"{ident(db)}.{ident(table + ROWS_SUFFIX)}"
    # A TEXT column cannot be indexed without a prefix length: indexed strings are VARCHAR(255).
    indexed = {*keys, *(name for index in indexes for name in index.columns)}
    wanted = {field.name: loads.mysql_type(field.type, key=field.name in indexed) for field in schema}
    definition = ", ".join(f"{ident(name)} {my_type}" for name, my_type in wanted.items())
    key = ", ".join(ident(name) for name in (DS, LOAD_ID, ROW))
    index = f", KEY slice_keys ({', '.join(ident(name) for name in (DS, LOAD_ID, *keys))})" if keys else ""
    extra = "".join(f", KEY {_index_sql(item)}" for item in indexes)
    _execute(
        conn,
        f"CREATE TABLE IF NOT EXISTS {rows_table} ({definition}, {ident(LOADED_AT)} DATETIME(6) NULL,"
        f" {ident(LOAD_ID)} BIGINT NOT NULL, {ident(ROW)} BIGINT NOT NULL, PRIMARY KEY ({key}){index}{extra})"
        " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
    )
    existing = list(_table_columns(conn, db, table + ROWS_SUFFIX))
    # One column a statement: older TiDB versions refuse several in one ALTER.
    existing += loads.add_missing_columns(
        f"{db}.{table}",
        wanted,
        existing,
        lambda name, my_type: _execute(conn, f"ALTER TABLE {rows_table} ADD COLUMN {ident(name)} {my_type}"),
    )
    _add_missing_indexes(conn, db, table, indexes)
    served = [name for name in existing if name not in (LOAD_ID, ROW)]
    view = _table_columns(conn, db, table)
    if view and set(view.values()) != {"VIEW"}:
        raise RuntimeError(f"{db}.{table} exists and is not the loader's view: drop it or load it elsewhere")
    if list(view) != served:
        _execute(conn, _view_sql(db, table, served))
    return served


def _ensure_load_ids(conn: Any, db: str) -> None:
    """The load-id counter, started past every load id the load-log holds (older loaders took them from the clock)."""
    counter = f"{ident(db)}.{ident(LOAD_IDS)}"
    _execute(
        conn,
        f"CREATE TABLE IF NOT EXISTS {counter} (id TINYINT NOT NULL, last_load_id BIGINT NOT NULL, PRIMARY KEY (id))",
    )
    _execute(
        conn,
        f"INSERT INTO {counter} (id, last_load_id) SELECT 1, (SELECT COALESCE(MAX(load_id), 0)"
        f" FROM {ident(db)}.{ident(LOAD_LOG)}) FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM {counter} WHERE id = 1)",
    )


def _next_load_id(conn: Any, db: str) -> int:
    """The next load id of the database: larger than every one handed out before, from any worker."""
    counter = f"{ident(db)}.{ident(LOAD_IDS)}"

    def run() -> int:
        conn.begin()
        with conn.cursor() as cur:
            # The row lock orders concurrent loads: each reads the value the previous one wrote.
            cur.execute(f"SELECT last_load_id FROM {counter} WHERE id = 1 FOR UPDATE")
            (last,) = cur.fetchone()
            cur.execute(f"UPDATE {counter} SET last_load_id = %s WHERE id = 1", (last + 1,))
        conn.commit()
        return int(last) + 1

    return with_retries(run, conn)


def _index_sql(index: SecondaryIndex) -> str:
    return f"{ident(index.name)} ({', '.join(ident(name) for name in _index_columns(index))})"


def _add_missing_indexes(conn: Any, db: str, table: str, indexes: Sequence[SecondaryIndex]) -> None:
    if not indexes:
        return
    present = {name.lower() for name in _index_names(conn, db, table + ROWS_SUFFIX)}
    for index in indexes:
        if index.name.lower() not in present:
            log.info("%s.%s: adding index %s", db, table, _index_sql(index))
            # One index a statement, like the columns: TiDB runs each as an online DDL job.
            _execute(conn, f"ALTER TABLE {ident(db)}.{ident(table + ROWS_SUFFIX)} ADD INDEX {_index_sql(index)}")


def _view_sql(db: str, table: str, columns: list[str]) -> str:
    select = ", ".join(f"r.{ident(name)}" for name in columns)
    return (
        f"CREATE OR REPLACE VIEW {ident(db)}.{ident(table)} AS SELECT {select}"
        f" FROM {ident(db)}.{ident(table + ROWS_SUFFIX)} AS r JOIN {ident(db)}.{ident(LOAD_LOG)} AS l"
        f" ON l.table_name = '{table}' AND l.ds = r.{ident(DS)} AND l.load_id = r.{ident(LOAD_ID)}"
    )


def _rows_per_chunk(batch: pa.RecordBatch, size: int, entries_per_row: int) -> int:
    """At most ``size`` rows, fewer when the rows are wide enough to pass ``MAX_TXN_BYTES`` with their index entries."""
    if not batch.num_rows:
        return size
    row_bytes = max(1.0, batch.nbytes / batch.num_rows) * entries_per_row
    return max(1, min(size, int(MAX_TXN_BYTES // row_bytes)))


def _chunks(batches: Iterable[pa.RecordBatch], size: int, entries_per_row: int = 1) -> Iterator[pa.RecordBatch]:
    """At most ``size`` rows (and ``MAX_TXN_BYTES``, see ``_rows_per_chunk``) a chunk, numbered in ``_row``."""
    number = 0
    for batch in batches:
        step = _rows_per_chunk(batch, size, entries_per_row)
        for offset in range(0, batch.num_rows, step):
            chunk = batch.slice(offset, step)
            rows = pa.array(range(number, number + chunk.num_rows), pa.int64())
            number += chunk.num_rows
            yield chunk.append_column(ROW, rows)


def _csv_writer(directory: str, names: list[str]) -> Callable[[pa.RecordBatch], tuple[str, int]]:
    def write(chunk: pa.RecordBatch) -> tuple[str, int]:
        fd, path = tempfile.mkstemp(suffix=".csv", dir=directory)
        with os.fdopen(fd, "wb") as sink:
            rows = loads.write_csv(chunk, [*names, ROW], sink, _CSV, bool_as_int=True)
        return path, rows

    return write


def _load_file(conn: Any, sql: str, path: str, rows: int, loaded_at: dt.datetime, load_id: int) -> None:
    """One chunk, one autocommitted statement.

    MariaDB turns data errors and duplicate keys of a LOCAL load into warnings (the row is skipped or truncated), so
    any warning fails the chunk here; TiDB raises the error itself, which fails the statement the same way.
    """

    def run() -> None:
        with conn.cursor() as cur:
            stored = cur.execute(sql, (path, loaded_at, load_id))
            if cur.warning_count:
                raise ValueError(f"LOAD DATA warnings: {conn.show_warnings()[:5]}")
        if stored != rows:
            raise RuntimeError(f"LOAD DATA stored {stored} rows of {rows}")

    with_retries(run, conn)


def _stage(
    conn: Any,
    db: str,
    table: str,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    load_id: int,
    entries_per_row: int = 1,
) -> int:
    sql = _LOAD.format(
        table=f"{ident(db)}.{ident(table + ROWS_SUFFIX)}",
        columns=", ".join(ident(name) for name in (*schema.names, ROW)),
        loaded_at=ident(LOADED_AT),
        load_id=ident(LOAD_ID),
    )
    loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    total = 0
    with (
        tempfile.TemporaryDirectory(prefix="lakehouse-tidb-") as directory,
        loads.Prefetch(_chunks(batches, MAX_TXN_ROWS, entries_per_row), _csv_writer(directory, schema.names)) as files,
    ):
        for path, rows in files:
            _load_file(conn, sql, path, rows, loaded_at, load_id)
            os.unlink(path)
            total += rows
    return total


def _flip(conn: Any, db: str, result: LoadResult, load_id: int) -> None:
    """Point the slice at ``load_id`` in one transaction, unless a newer load already took it."""

    def run() -> None:
        conn.begin()
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT load_id FROM {ident(db)}.{ident(LOAD_LOG)} WHERE table_name = %s AND ds = %s FOR UPDATE",
                (result.table, result.ds),
            )
            current = cur.fetchone()
            if current is not None and current[0] > load_id:
                conn.rollback()
                raise SupersededLoad(f"{db}.{result.table} ds={result.ds}: load {current[0]} is newer than {load_id}")
            cur.execute(
                f"INSERT INTO {ident(db)}.{ident(LOAD_LOG)}"
                " (table_name, ds, snapshot_id, `rows`, duration_s, loaded_at, load_id) VALUES (%s, %s, %s, %s, %s,"
                " UTC_TIMESTAMP(6), %s) ON DUPLICATE KEY UPDATE snapshot_id = VALUES(snapshot_id),"
                " `rows` = VALUES(`rows`), duration_s = VALUES(duration_s), loaded_at = VALUES(loaded_at),"
                " load_id = VALUES(load_id)",
                (result.table, result.ds, result.snapshot_id, result.rows, result.duration_s, load_id),
            )
        conn.commit()

    with_retries(run, conn)


def _next_key(conn: Any, rows_table: str, ds: dt.date, condition: str, load_id: int, after: tuple[int, int] | None):
    """The first ``(_load_id, _row)`` of the slice's rows with ``_load_id <condition> load_id`` at or past ``after``.

    Two range reads on the primary key, each starting at the bound, so rows deleted before it are never read.
    """
    if after is not None:
        found = _fetchall(
            conn,
            f"SELECT {ident(ROW)} FROM {rows_table} WHERE {ident(DS)} = %s AND {ident(LOAD_ID)} = %s"
            f" AND {ident(ROW)} >= %s ORDER BY {ident(ROW)} LIMIT 1",
            (ds, after[0], after[1]),
        )
        if found:
            return after[0], found[0][0]
    if condition == "=":
        if after is not None:
            return None
        lower, lower_op = load_id, ">="
    else:
        lower, lower_op = (after[0] if after is not None else None), ">"
    bound = "" if lower is None else f" AND {ident(LOAD_ID)} {lower_op} %s"
    found = _fetchall(
        conn,
        f"SELECT {ident(LOAD_ID)}, {ident(ROW)} FROM {rows_table} WHERE {ident(DS)} = %s"
        f" AND {ident(LOAD_ID)} {condition} %s{bound} ORDER BY {ident(LOAD_ID)}, {ident(ROW)} LIMIT 1",
        (ds, load_id) if lower is None else (ds, load_id, lower),
    )
    return (found[0][0], found[0][1]) if found else None


def _delete_rows(conn: Any, db: str, table: str, ds: dt.date, condition: str, load_id: int) -> int:
    """Delete rows of the slice matching ``_load_id <condition> load_id`` (``<`` or ``=``), by key ranges.

    Each batch deletes ``_row`` in ``[r, r + MAX_TXN_ROWS)`` of one load, one autocommitted transaction; the next
    batch looks for its first row from the end of the last one (a moving lower bound on the primary key), never
    from the slice's start, where TiDB keeps the deleted rows as tombstones until GC.

    Returns:
        The rows deleted.
    """
    if condition not in ("<", "="):
        raise ValueError(f"condition must be '<' or '=', not {condition!r}")
    rows_table = f"{ident(db)}.{ident(table + ROWS_SUFFIX)}"
    sql = (
        f"DELETE FROM {rows_table} WHERE {ident(DS)} = %s AND {ident(LOAD_ID)} = %s"
        f" AND {ident(ROW)} >= %s AND {ident(ROW)} < %s"
    )
    deleted = 0
    after = None
    while (key := _next_key(conn, rows_table, ds, condition, load_id, after)) is not None:
        old_load, first = key
        deleted += _execute(conn, sql, (ds, old_load, first, first + MAX_TXN_ROWS))
        after = (old_load, first + MAX_TXN_ROWS)
    return deleted


def _growth_step(rows: int) -> int:
    """The ``ANALYZE_GROWTH`` step of ``rows`` served rows: 0 for none, then one more each time they grow by it."""
    return 0 if rows <= 0 else 1 + int(math.log(rows) / math.log1p(ANALYZE_GROWTH))


def _should_analyze(rows_before: int, rows_after: int) -> bool:
    """Whether a load took the table's served rows from ``rows_before`` to a higher growth step (or to its first).

    Stateless: a table's statistics are refreshed each time its served rows grew by ``ANALYZE_GROWTH`` (20%), which
    a daily slice triggers ever more rarely as the table grows, as TiDB's own auto-analyze does (at 50% modified).
    """
    return _growth_step(rows_after) > _growth_step(rows_before)


def _served_rows(conn: Any, db: str, table: str) -> int:
    """The table's rows as the load-log counts them: the sum over its served slices."""
    found = _fetchall(
        conn, f"SELECT COALESCE(SUM(`rows`), 0) FROM {ident(db)}.{ident(LOAD_LOG)} WHERE table_name = %s", (table,)
    )
    return int(found[0][0])


# MariaDB has no ANALYZE of chosen indexes: InnoDB's plain ANALYZE samples a few pages per index, which is cheap.
_ANALYZE_MARIADB = "ANALYZE TABLE {table}"
_ANALYZE_INDEXES = "ANALYZE TABLE {table} INDEX {indexes}"


def _analyze(conn: Any, db: str, table: str, indexes: Sequence[SecondaryIndex]) -> None:
    """Refresh the statistics of the indexes the questions use, so the optimizer weighs them against the slices.

    Without it MariaDB keeps planning a read of every slice through the primary key (it saw the table empty), and
    TiDB waits for its auto-analyze. Only ``indexes`` are analyzed on TiDB, not the whole table. The slice is served
    already: a failure is logged, not raised.
    """
    rows_table = f"{ident(db)}.{ident(table + ROWS_SUFFIX)}"
    try:
        version = str(_fetchall(conn, "SELECT VERSION()")[0][0])
        if "MariaDB" in version:
            sql = _ANALYZE_MARIADB.format(table=rows_table)
        else:
            sql = _ANALYZE_INDEXES.format(table=rows_table, indexes=", ".join(ident(index.name) for index in indexes))
        _fetchall(conn, sql)
    except Exception:
        log.exception("could not analyze %s.%s", db, table + ROWS_SUFFIX)


def _discard(conn: Any, db: str, table: str, ds: dt.date, load_id: int) -> None:
    try:
        conn.rollback()
        _delete_rows(conn, db, table, ds, "=", load_id)
    except Exception:
        # Invisible rows; the next successful load of the slice deletes them.
        log.exception("could not remove the rows of failed load %s of %s.%s ds=%s", load_id, db, table, ds)


class TiDBTarget(Target):
    """The TiDB target of one load; ``load_slice_tidb(conn, table, ds, schema, snapshot_id, batches, ...)``.

    Replaces the rows of the slice, never showing a partial one: rows staged under a new load id in chunk
    transactions, then one flip (see the module's docstring). A slice whose load-log row already names
    ``snapshot_id`` is left alone (no writes) and reported skipped. ``SupersededLoad`` is raised when a newer load
    of the same slice finished first (its rows are served).

    Args:
        conn: a PyMySQL connection with ``local_infile=True`` (see ``connect``); it is put in autocommit mode.
        database: the served database; by default the connection's current database, else ``lakehouse``.
        key_columns: columns the REST API looks rows up by: indexed after ``ds``, strings as ``VARCHAR(255)``.
        indexes: further secondary indexes of the rows table (see ``include.serving.table_specs``), created or
            added when missing; each gets ``(ds, _load_id)`` appended.
    """

    name_pattern = _NAME
    reserved = (LOAD_ID, ROW)

    def __init__(self, conn: Any, *, database: str | None = None, key_columns=(), indexes=()) -> None:
        self.conn = conn
        self.database = database or ""
        self.keys: list[str] = list(key_columns)
        self.indexes: tuple[SecondaryIndex, ...] = tuple(indexes)
        self.load_id: int | None = None
        self._found: tuple[int | None, int, int] | None = None

    def where(self, table: str) -> str:
        return f"{self.database}.{table}"

    def check(self, schema: pa.Schema) -> None:
        if not getattr(self.conn, "_local_infile", True):
            raise ValueError("the connection needs local_infile=True for LOAD DATA LOCAL INFILE")
        _check_indexes(schema, self.indexes)

    def begin(self) -> None:
        self.conn.autocommit(True)
        self.database = self.database or _fetchall(self.conn, "SELECT DATABASE()")[0][0] or DATABASE

    def logged(self, table: str, ds: dt.date) -> tuple[int | None, int] | None:
        self._found = _logged(self.conn, self.database, table, ds)
        return None if self._found is None else self._found[:2]

    def skip(self, table: str, ds: dt.date) -> None:
        # A load killed after its flip, before deleting the versions it replaced, left them behind (invisible), and
        # its retry, of the same snapshot, skips: delete them here. Only older load ids, which can never be flipped
        # in again (a newer one may be a load still staging). None left: one primary-key range read.
        assert self._found is not None
        _delete_rows(self.conn, self.database, table, ds, "<", self._found[2])

    def ensure(self, table: str, schema: pa.Schema) -> None:
        _ensure_target(self.conn, self.database, table, schema, self.keys, self.indexes)

    def stage(self, table: str, ds: dt.date, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> int:
        self.load_id = _next_load_id(self.conn, self.database)
        # The row itself, the slice_keys index when keyed, and each secondary index: what a row adds to a transaction.
        entries_per_row = 1 + bool(self.keys) + len(self.indexes)
        return _stage(self.conn, self.database, table, schema, batches, self.load_id, entries_per_row)

    def swap(self, result: LoadResult) -> None:
        assert self.load_id is not None
        _flip(self.conn, self.database, result, self.load_id)

    def abort(self, table: str, ds: dt.date) -> None:
        if self.load_id is not None:
            _discard(self.conn, self.database, table, ds, self.load_id)

    def finish(self, result: LoadResult) -> None:
        assert self.load_id is not None
        _delete_rows(self.conn, self.database, result.table, result.ds, "<", self.load_id)
        if self.indexes:
            served = _served_rows(self.conn, self.database, result.table)
            before = served - result.rows + (self._found[1] if self._found is not None else 0)
            if _should_analyze(before, served):
                _analyze(self.conn, self.database, result.table, self.indexes)


# Replace the rows of slice ds of <database>.<table> with the batches, never showing a partial slice (see TiDBTarget).
load_slice_tidb = loads.loader(TiDBTarget)
