"""PostgreSQL loader: a gold slice into ``analytics.gold.<table>`` by COPY into a staging table and one swap.

Design. ``gold.<table>`` is a table partitioned by LIST on ``ds``, one partition per slice, kept in the schema
``gold_slices`` (so Metabase and dbt see only the parent). A load, in one transaction:

1. creates a staging table with the parent's columns and a ``CHECK (ds = <slice>)`` constraint (which lets
   ATTACH skip its validation scan, and refuses a row of another slice),
2. COPYs the batches into it as CSV (encoded by Arrow in a background thread, one batch at a time, while the
   server parses the previous one: the slice is never materialised),
3. swaps: locks the parent, detaches and drops the slice's old partition, attaches the staging table in its
   place, and upserts the load-log row.

The rows are written once (COPY into a TEMP table followed by DELETE + INSERT ... SELECT writes them twice and
measured 0.6x the throughput of ``psql \\copy``), the old slice is dropped rather than deleted row by row (no
bloat, no vacuum), and readers see the old slice until COMMIT; any failure rolls the whole transaction back,
staging table included. The parent's ACCESS EXCLUSIVE lock is held only for the swap, after the COPY; a worker
that dies in the middle loses its transaction with its connection, and one that freezes with the connection open
is ended by the server once its transaction idles ``idle_timeout_s`` (so readers wait at most that long). The
swap asks for that lock ``lock_timeout_s`` at a time (readers queue behind a lock request), again after a pause
while longer queries hold the table.
Partition pruning on ``ds`` replaces an index on ``ds``.

Point columns. A table can get PostGIS ``geometry(Point, srid)`` columns (``point_columns``), generated and
stored from its longitude/latitude columns, with partitioned GiST indexes on the parent. The staging table is
created with the parent's generated columns (so the COPY, which lists only the Arrow columns, computes them) and
gets the parent's indexes after the COPY, before the swap: ATTACH then adopts them instead of building them while
it holds the lock.

Indexes. A table's declared B-tree indexes (``indexes``: the columns its questions read, see
``include.serving.table_specs``) are indexes of the partitioned parent, ``<table>__<name>``: PostgreSQL builds one on
every partition, and the staging table builds its own before the swap, which adopts it, like the GiST indexes.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.csv as pacsv

from include.serving import loads
from include.serving.loads import DS, LOAD_LOG, LOADED_AT, LoadResult, Target
from include.serving.table_specs import PointColumn, SecondaryIndex

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = "analytics_postgres"
TARGET_SCHEMA = "gold"
SLICE_SCHEMA = "gold_slices"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")
_CSV = pacsv.WriteOptions(include_header=False)
# PostgreSQL truncates longer identifiers; an index name is refused rather than silently cut.
_MAX_IDENTIFIER = 63
# PostgresTarget's idle_timeout_s: how long readers can wait behind the swap of a frozen worker, at most.
IDLE_TIMEOUT_S = 30.0
# PostgresTarget's lock_timeout_s and lock_wait_s: each request of the swap's lock, and all of them together.
LOCK_TIMEOUT_S = 1.0
LOCK_WAIT_S = 600.0
# SQLSTATEs of CREATE EXTENSION when the extension's files are missing (0A000 in current releases, 58P01 in older).
_NOT_INSTALLED = frozenset({"0A000", "58P01"})
_NOT_PERMITTED = "42501"


def connect(conn_id: str = DEFAULT_CONN_ID) -> Any:
    """A psycopg2 connection from the Airflow connection ``conn_id`` (resolved now, at task run time).

    Args:
        conn_id: an Airflow connection of type ``postgres``; its schema is the database (default ``analytics``).

    Returns:
        An open ``psycopg2`` connection, not in autocommit mode.
    """
    import psycopg2
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    return psycopg2.connect(
        host=conn.host or "localhost",
        port=conn.port or 5432,
        user=conn.login or None,
        password=conn.password or None,
        dbname=conn.schema or "analytics",
        application_name="lakehouse-serving",
    )


def ident(name: str) -> str:
    """A PostgreSQL quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


class _Column(NamedTuple):
    """A column of a served table: its SQL type, and its expression when it is a stored generated column."""

    type: str
    generated: str | None = None

    def __str__(self) -> str:
        return self.type

    def definition(self, name: str) -> str:
        if self.generated is None:
            return f"{ident(name)} {self.type}"
        return f"{ident(name)} {self.type} GENERATED ALWAYS AS ({self.generated}) STORED"


def _columns(cur: Any, relation: str) -> dict[str, _Column]:
    cur.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod),"
        " CASE WHEN a.attgenerated = 's' THEN pg_get_expr(d.adbin, d.adrelid) END"
        " FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (relation,),
    )
    return {name: _Column(pg_type, generated) for name, pg_type, generated in cur.fetchall()}


def _postgis(cur: Any) -> str:
    """The (quoted) schema holding PostGIS in the current database, after creating the extension if missing."""
    import psycopg2

    find = "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'postgis'"
    cur.execute(find)
    found = cur.fetchone()
    if found is not None:
        return found[0]
    cur.execute("SELECT current_database()")
    database = cur.fetchone()[0]
    try:
        cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    except psycopg2.Error as error:
        if error.pgcode in _NOT_INSTALLED:
            raise RuntimeError(
                f"point columns need PostGIS, which is not installed on the PostgreSQL server of database"
                f" {database!r}: install it (Debian: postgresql-15-postgis-3; the compose image ships it)"
            ) from error
        if error.pgcode == _NOT_PERMITTED:
            raise RuntimeError(
                f"point columns need PostGIS, and this user may not create the extension: run"
                f" `CREATE EXTENSION postgis;` in database {database!r} as a superuser"
            ) from error
        raise
    log.info("created the PostGIS extension in database %s", database)
    cur.execute(find)
    return cur.fetchone()[0]


def _point_column(point: PointColumn, postgis: str) -> _Column:
    lon, lat, srid = ident(point.longitude), ident(point.latitude), int(point.srid)
    return _Column(
        f"{postgis}.geometry(Point,{srid})",
        f"CASE WHEN {lon} IS NULL OR {lat} IS NULL THEN NULL"
        f" ELSE {postgis}.st_setsrid({postgis}.st_makepoint({lon}, {lat}), {srid}) END",
    )


def _index_name(table: str, suffix: str, shorten: str) -> str:
    """``<table>__<suffix>``, refused when PostgreSQL would cut it (``shorten`` says what to shorten)."""
    name = f"{table}__{suffix}"
    if len(name) > _MAX_IDENTIFIER:
        raise ValueError(f"index name {name!r} is longer than {_MAX_IDENTIFIER} characters: shorten {shorten}")
    return name


def _point_index(table: str, point: PointColumn) -> str:
    return _index_name(table, f"{point.name}_gist", "the column name")


def _check_points(schema: pa.Schema, points: Sequence[PointColumn]) -> None:
    for point in points:
        if not _NAME.match(point.name):
            raise ValueError(f"point column name {point.name!r} must match {_NAME.pattern}")
        missing = [name for name in (point.longitude, point.latitude) if name not in schema.names]
        if missing:
            raise ValueError(f"point column {point.name!r}: no column {missing} in the slice schema")


def _ensure_points(cur: Any, parent: str, table: str, points: Sequence[PointColumn], postgis: str) -> None:
    """Add the point columns the parent lacks and the GiST index of each (one per partition, adopted by ATTACH)."""
    existing = _columns(cur, parent)
    for point in points:
        found = existing.get(point.name)
        if found is None:
            log.info("%s: adding point column %s", parent, point.name)
            cur.execute(f"ALTER TABLE {parent} ADD COLUMN {_point_column(point, postgis).definition(point.name)}")
        elif found.generated is None:
            raise RuntimeError(f"{parent}.{point.name} exists and is not a generated point column")
        index = ident(_point_index(table, point))
        cur.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {parent} USING gist ({ident(point.name)})")


def _check_indexes(schema: pa.Schema, indexes: Sequence[SecondaryIndex]) -> None:
    names = [index.name for index in indexes]
    if len(set(names)) != len(names):
        raise ValueError(f"index names must be unique: {names}")
    for index in indexes:
        if not _NAME.match(index.name):
            raise ValueError(f"index name {index.name!r} must match {_NAME.pattern}")
        missing = [name for name in index.columns if name not in schema.names]
        if not index.columns or missing:
            raise ValueError(f"index {index.name!r}: no column {missing or '(none named)'} in the slice schema")


def _ensure_indexes(cur: Any, parent: str, table: str, indexes: Sequence[SecondaryIndex]) -> None:
    """Build the B-tree indexes the parent lacks: on a partitioned table, one per partition, adopted by ATTACH."""
    for index in indexes:
        columns = ", ".join(ident(name) for name in index.columns)
        name = _index_name(table, index.name, "the index name")
        cur.execute(f"CREATE INDEX IF NOT EXISTS {ident(name)} ON {parent} ({columns})")


def _ensure_target(
    cur: Any,
    target: str,
    table: str,
    slice_schema: str,
    schema: pa.Schema,
    points: Sequence[PointColumn],
    indexes: Sequence[SecondaryIndex] = (),
) -> dict[str, _Column]:
    """Create the schemas, the load-log and the partitioned table when missing; add new columns and the extras.
    Returns the columns."""
    parent = f"{ident(target)}.{ident(table)}"
    postgis = _postgis(cur) if points else ""
    cur.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(target)}")
    cur.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(slice_schema)}")
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS {ident(target)}.{ident(LOAD_LOG)} ("
        " table_name text NOT NULL, ds date NOT NULL, snapshot_id bigint, rows bigint NOT NULL,"
        " duration_s double precision NOT NULL, loaded_at timestamptz NOT NULL, PRIMARY KEY (table_name, ds))"
    )
    wanted = {field.name: _Column(loads.postgres_type(field.type)) for field in schema}
    created = {**wanted, LOADED_AT: _Column("timestamptz"), **{p.name: _point_column(p, postgis) for p in points}}
    definition = ", ".join(column.definition(name) for name, column in created.items())
    cur.execute(f"CREATE TABLE IF NOT EXISTS {parent} ({definition}) PARTITION BY LIST ({ident(DS)})")
    cur.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", (parent,))
    if cur.fetchone()[0] != "p":
        raise RuntimeError(f"{target}.{table} exists but is not partitioned by ds: drop it or load it elsewhere")
    loads.add_missing_columns(
        f"{target}.{table}",
        wanted,
        _columns(cur, parent),
        lambda name, column: cur.execute(f"ALTER TABLE {parent} ADD COLUMN {column.definition(name)}"),
    )
    _ensure_points(cur, parent, table, points, postgis)
    _ensure_indexes(cur, parent, table, indexes)
    return _columns(cur, parent)


def _logged(cur: Any, target: str, table: str, ds: dt.date) -> tuple[int | None, int] | None:
    """The (snapshot_id, rows) the load-log holds for the slice, if any."""
    cur.execute("SELECT to_regclass(%s)", (f"{ident(target)}.{ident(LOAD_LOG)}",))
    if cur.fetchone()[0] is None:
        return None
    cur.execute(
        f"SELECT snapshot_id, rows FROM {ident(target)}.{ident(LOAD_LOG)} WHERE table_name = %s AND ds = %s",
        (table, ds),
    )
    return cur.fetchone()


class _CsvStream:
    """A file-like object for ``copy_expert``: each ``read`` returns the CSV of the next batch."""

    def __init__(self, chunks: Iterator[tuple[bytes, int]]) -> None:
        self._chunks = chunks
        self.rows = 0

    def read(self, size: int = -1) -> bytes:
        chunk = next(self._chunks, None)
        if chunk is None:
            return b""
        data, rows = chunk
        self.rows += rows
        return data


def _encoder(names: list[str]):
    def encode(batch: pa.RecordBatch) -> tuple[bytes, int]:
        sink = pa.BufferOutputStream()
        rows = loads.write_csv(batch, names, sink, _CSV)
        return sink.getvalue().to_pybytes(), rows

    return encode


def _stage(cur: Any, staging: str, columns: dict[str, _Column], ds: dt.date, loaded_at: dt.datetime) -> None:
    definition = ", ".join(column.definition(name) for name, column in columns.items())
    cur.execute(f"CREATE TABLE {staging} ({definition}, CHECK ({ident(DS)} IS NOT NULL AND {ident(DS)} = %s))", (ds,))
    # Not in the CSV: every row of the slice gets the same load time, from the column default.
    cur.execute(f"ALTER TABLE {staging} ALTER COLUMN {ident(LOADED_AT)} SET DEFAULT %s", (loaded_at,))


def _index_like_parent(cur: Any, parent: str, staging: str) -> None:
    """Build the parent's (partitioned) indexes on the loaded staging table, for ATTACH to adopt."""
    cur.execute(
        "SELECT i.indisunique, pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = %s::regclass"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY i.indexrelid",
        (parent,),
    )
    for unique, definition in cur.fetchall():
        # "CREATE INDEX name ON [ONLY] parent USING method (...)": keep what follows USING, which names no relation.
        method = definition.split(" USING ", 1)[1]
        cur.execute(f"CREATE {'UNIQUE ' if unique else ''}INDEX ON {staging} USING {method}")


def _copy(cur: Any, staging: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> int:
    columns = ", ".join(ident(name) for name in schema.names)
    prefetch = loads.Prefetch(batches, _encoder(schema.names))
    stream = _CsvStream(iter(prefetch))
    try:
        cur.copy_expert(f"COPY {staging} ({columns}) FROM STDIN WITH (FORMAT csv)", stream, size=1 << 20)
    except Exception as error:
        # psycopg2 reports a failing read() as a cancelled COPY; raise what the batches actually raised.
        if prefetch.error is not None:
            raise prefetch.error from error
        raise
    finally:
        prefetch.close()
    if cur.rowcount >= 0 and cur.rowcount != stream.rows:
        raise RuntimeError(f"COPY stored {cur.rowcount} rows, {stream.rows} were sent")
    return stream.rows


def _lock(cur: Any, parent: str, timeout_s: float, wait_s: float, max_pause_s: float = 5.0) -> None:
    """ACCESS EXCLUSIVE on ``parent``, asked for ``timeout_s`` at a time, with backoff between, for ``wait_s`` in all.

    A lock request waits behind the queries running on the table (a long dashboard query), and every query that
    comes after it queues behind the request. Asked for briefly and given up (to a savepoint) in between, it lets
    readers through meanwhile: none waits longer than ``timeout_s`` for it.

    Raises:
        RuntimeError: the lock was not had within ``wait_s`` (the load fails, the old slice stays served).
    """
    import psycopg2.errors

    deadline = time.monotonic() + wait_s
    pause = 0.1
    while True:
        cur.execute("SAVEPOINT lakehouse_lock")
        cur.execute("SET LOCAL lock_timeout = %s", (max(1, int(timeout_s * 1000)),))
        try:
            cur.execute(f"LOCK TABLE {parent} IN ACCESS EXCLUSIVE MODE")
        except psycopg2.errors.LockNotAvailable as error:
            cur.execute("ROLLBACK TO SAVEPOINT lakehouse_lock")
            if time.monotonic() + pause > deadline:
                raise RuntimeError(
                    f"{parent}: no lock for the swap within {wait_s:.0f}s, queries keep it busy"
                ) from error
            log.info("%s is busy: asking for its lock again in %.1fs", parent, pause)
            time.sleep(pause)
            pause = min(pause * 2, max_pause_s)
            continue
        cur.execute("SET LOCAL lock_timeout TO DEFAULT")
        cur.execute("RELEASE SAVEPOINT lakehouse_lock")
        return


def _swap(
    cur: Any,
    target: str,
    table: str,
    slice_schema: str,
    staging_name: str,
    ds: dt.date,
    lock_timeout_s: float = LOCK_TIMEOUT_S,
    lock_wait_s: float = LOCK_WAIT_S,
    max_pause_s: float = 5.0,
) -> None:
    parent = f"{ident(target)}.{ident(table)}"
    current_name = f"{table}__{ds:%Y%m%d}"
    current = f"{ident(slice_schema)}.{ident(current_name)}"
    # Taken before looking for the old partition, so two loads of one slice swap one after the other.
    _lock(cur, parent, lock_timeout_s, lock_wait_s, max_pause_s)
    cur.execute("SELECT to_regclass(%s)", (current,))
    if cur.fetchone()[0] is not None:
        cur.execute(f"ALTER TABLE {parent} DETACH PARTITION {current}")
        cur.execute(f"DROP TABLE {current}")
    cur.execute(f"ALTER TABLE {ident(slice_schema)}.{ident(staging_name)} ALTER COLUMN {ident(LOADED_AT)} DROP DEFAULT")
    cur.execute(
        f"ALTER TABLE {parent} ATTACH PARTITION {ident(slice_schema)}.{ident(staging_name)} FOR VALUES IN (%s)", (ds,)
    )
    cur.execute(f"ALTER TABLE {ident(slice_schema)}.{ident(staging_name)} RENAME TO {ident(current_name)}")
    # The partition's indexes were named after the staging table: name them after the partition.
    cur.execute(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass",
        (current,),
    )
    for (index,) in cur.fetchall():
        if index.startswith(staging_name):
            renamed = current_name + index[len(staging_name) :]
            cur.execute(f"ALTER INDEX {ident(slice_schema)}.{ident(index)} RENAME TO {ident(renamed)}")


def _record(cur: Any, target: str, result: LoadResult, loaded_at: dt.datetime) -> None:
    cur.execute(
        f"INSERT INTO {ident(target)}.{ident(LOAD_LOG)} AS l"
        " (table_name, ds, snapshot_id, rows, duration_s, loaded_at) VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (table_name, ds) DO UPDATE SET snapshot_id = EXCLUDED.snapshot_id, rows = EXCLUDED.rows,"
        " duration_s = EXCLUDED.duration_s, loaded_at = EXCLUDED.loaded_at",
        (result.table, result.ds, result.snapshot_id, result.rows, result.duration_s, loaded_at),
    )


class PostgresTarget(Target):
    """The PostgreSQL target of one load; ``load_slice_postgres(conn, table, ds, schema, snapshot_id, batches, ...)``.

    A slice whose load-log row already names ``snapshot_id`` is left alone (no writes) and reported skipped. The
    connection (psycopg2, see ``connect``, not inside a transaction) is switched out of autocommit; the DDL that
    creates or grows the table commits first, then the staging, COPY and swap run in one transaction. On any error
    that transaction is rolled back (the previous rows stay served) and the error raised again.

    Args:
        conn: a psycopg2 connection (see ``connect``), not inside a transaction.
        target_schema: the served schema (``gold``).
        slice_schema: where the partitions live (``gold_slices``).
        point_columns: PostGIS point columns generated from the slice's coordinate columns, each with a GiST
            index (see ``include.serving.table_specs``); the PostGIS extension is created when missing.
        indexes: B-tree indexes of the partitioned table (``<table>__<name>``), built where missing.
        idle_timeout_s: the server ends the load's session when the load's transaction sits idle this long
            (``idle_in_transaction_session_timeout``): a worker frozen or cut off in the swap, its connection still
            open, would otherwise hold the parent's lock, and block every reader, until TCP gives up (hours). The
            load never idles that long (a COPY waiting for its source is not idle).
        lock_timeout_s: how long the swap's request of the parent's lock may make readers queue behind it; it is
            asked for again, with backoff, while queries hold the table (see ``_lock``).
        lock_wait_s: how long the swap tries for its lock before the load fails.
    """

    name_pattern = _NAME

    def __init__(
        self,
        conn: Any,
        *,
        target_schema=TARGET_SCHEMA,
        slice_schema=SLICE_SCHEMA,
        point_columns=(),
        indexes=(),
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        lock_timeout_s: float = LOCK_TIMEOUT_S,
        lock_wait_s: float = LOCK_WAIT_S,
    ) -> None:
        self.conn = conn
        self.idle_timeout_ms = max(1, int(idle_timeout_s * 1000))
        # The pauses between lock requests idle the transaction: well below the idle timeout.
        self.lock = (lock_timeout_s, lock_wait_s, min(5.0, idle_timeout_s / 4))
        self.target_schema: str = target_schema
        self.slice_schema: str = slice_schema
        self.points: tuple[PointColumn, ...] = tuple(point_columns)
        self.indexes: tuple[SecondaryIndex, ...] = tuple(indexes)
        self.reserved = tuple(point.name for point in self.points)
        self._columns: dict[str, _Column] = {}
        self._staging_name = ""
        self._loaded_at = dt.datetime.now(dt.UTC)

    def where(self, table: str) -> str:
        return f"{self.target_schema}.{table}"

    def check(self, schema: pa.Schema) -> None:
        _check_points(schema, self.points)
        _check_indexes(schema, self.indexes)

    def begin(self) -> None:
        import psycopg2.extensions

        if self.conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            raise ValueError("the connection is inside a transaction: commit or roll it back before loading")
        self.conn.autocommit = False

    def logged(self, table: str, ds: dt.date) -> tuple[int | None, int] | None:
        with self.conn.cursor() as cur:
            return _logged(cur, self.target_schema, table, ds)

    def skip(self, table: str, ds: dt.date) -> None:
        self.conn.rollback()

    def ensure(self, table: str, schema: pa.Schema) -> None:
        with self.conn.cursor() as cur:
            self._columns = _ensure_target(
                cur, self.target_schema, table, self.slice_schema, schema, self.points, self.indexes
            )
        self.conn.commit()

    def stage(self, table: str, ds: dt.date, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> int:
        self._loaded_at = dt.datetime.now(dt.UTC)
        self._staging_name = f"{table}__{ds:%Y%m%d}__{secrets.token_hex(4)}"
        staging = f"{ident(self.slice_schema)}.{ident(self._staging_name)}"
        with self.conn.cursor() as cur:
            # The CSV carries timestamps as naive UTC (see utc_naive): read them in UTC, for this transaction only.
            cur.execute("SET LOCAL TIME ZONE 'UTC'")
            cur.execute("SET LOCAL idle_in_transaction_session_timeout = %s", (self.idle_timeout_ms,))
            _stage(cur, staging, self._columns, ds, self._loaded_at)
            rows = _copy(cur, staging, schema, batches)
            _index_like_parent(cur, f"{ident(self.target_schema)}.{ident(table)}", staging)
        return rows

    def swap(self, result: LoadResult) -> None:
        with self.conn.cursor() as cur:
            _swap(cur, self.target_schema, result.table, self.slice_schema, self._staging_name, result.ds, *self.lock)
            _record(cur, self.target_schema, result, self._loaded_at)
        self.conn.commit()

    def abort(self, table: str, ds: dt.date) -> None:
        # The staging table goes with the transaction.
        self.conn.rollback()


# Replace the rows of slice ds of <target_schema>.<table> with the batches, atomically (see PostgresTarget).
load_slice_postgres = loads.loader(PostgresTarget)
