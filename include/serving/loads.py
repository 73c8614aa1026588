"""The serving loaders' one flow (``load_slice`` over a ``Target``), and what both targets share with it.

``load_slice`` does, for every target: the name and schema checks, skip-on-snapshot from the load-log, creating and
growing the served table, timing, logging, and cleaning up after a failure. A target (``postgres.PostgresTarget``,
``tidb.TiDBTarget``) supplies what is its own: its connection handling, its DDL, how it stages a slice and how it
swaps it in. Both encode batches with ``write_csv`` in a background ``Prefetch`` thread and map Arrow types here.
"""

from __future__ import annotations

import abc
import datetime as dt
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pyarrow as pa
import pyarrow.csv as pacsv

log = logging.getLogger(__name__)

# The load-log table, one per target: its primary key (table_name, ds) names the slice a row describes.
LOAD_LOG = "_lakehouse_loads"
# Columns every served table carries besides the Iceberg ones; Iceberg columns of the same name are refused.
LOADED_AT = "_loaded_at"
DS = "ds"
# A MySQL/TiDB key column cannot be TEXT (TiDB and MariaDB index only a prefix of TEXT, and only with a length).
MYSQL_KEY_VARCHAR = 255

T = TypeVar("T")
C = TypeVar("C")


@dataclass(frozen=True)
class LoadResult:
    """What one loader call did to one slice.

    Attributes:
        table: the served table name (without schema or database).
        ds: the slice's date.
        rows: rows now served for the slice (for a skipped load, the rows of the load it found).
        snapshot_id: the Iceberg snapshot the rows come from.
        duration_s: wall time of the call.
        skipped: True when the slice already held this snapshot and nothing was written.
    """

    table: str
    ds: dt.date
    rows: int
    snapshot_id: int | None
    duration_s: float
    skipped: bool


def as_date(ds: dt.date | str) -> dt.date:
    """The slice date from a ``date`` or an ISO ``YYYY-MM-DD`` string (Airflow's ``{{ ds }}``)."""
    if isinstance(ds, dt.datetime):
        raise TypeError(f"ds must be a date, not a datetime: {ds!r}")
    if isinstance(ds, dt.date):
        return ds
    return dt.date.fromisoformat(ds)


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


# (predicate, PostgreSQL type, MySQL/TiDB type) for the types without parameters, first match wins.
_FIXED_TYPES: tuple[tuple[Callable[[pa.DataType], bool], str, str], ...] = (
    (pa.types.is_boolean, "boolean", "BOOLEAN"),
    (pa.types.is_int8, "smallint", "TINYINT"),
    (pa.types.is_int16, "smallint", "SMALLINT"),
    (pa.types.is_int32, "integer", "INT"),
    (pa.types.is_int64, "bigint", "BIGINT"),
    (pa.types.is_uint8, "smallint", "TINYINT UNSIGNED"),
    (pa.types.is_uint16, "integer", "SMALLINT UNSIGNED"),
    (pa.types.is_uint32, "bigint", "INT UNSIGNED"),
    (pa.types.is_uint64, "numeric(20,0)", "BIGINT UNSIGNED"),
    (pa.types.is_float16, "real", "FLOAT"),
    (pa.types.is_float32, "real", "FLOAT"),
    (pa.types.is_float64, "double precision", "DOUBLE"),
    (pa.types.is_date, "date", "DATE"),
    (pa.types.is_time, "time", "TIME(6)"),
)


def postgres_type(t: pa.DataType) -> str:
    """The PostgreSQL column type for an Arrow type.

    Timestamps with a time zone become ``timestamptz`` (the loader sends them as UTC), strings ``text``.

    Raises:
        TypeError: for types the loaders do not serve (binary, nested, durations...).
    """
    for predicate, pg_type, _ in _FIXED_TYPES:
        if predicate(t):
            return pg_type
    if pa.types.is_decimal(t):
        return f"numeric({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if _is_string(t):
        return "text"
    raise TypeError(f"no PostgreSQL mapping for Arrow type {t}")


def mysql_type(t: pa.DataType, *, key: bool = False) -> str:
    """The MySQL/TiDB column type for an Arrow type (SQL that both TiDB and MariaDB accept).

    Timestamps become ``DATETIME(6)`` holding UTC wall-clock time (DATETIME has no zone, and TIMESTAMP would
    convert through the session zone and stops in 2038). Strings are ``TEXT``, or ``VARCHAR(255)`` when ``key``.

    Raises:
        TypeError: for types the loaders do not serve, or decimals wider than MySQL's 65 digits.
    """
    for predicate, _, my_type in _FIXED_TYPES:
        if predicate(t):
            return my_type
    if pa.types.is_decimal(t):
        if t.precision > 65 or t.scale > 30:
            raise TypeError(f"{t} does not fit MySQL DECIMAL (at most 65 digits, scale 30)")
        return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "DATETIME(6)"
    if _is_string(t):
        return f"VARCHAR({MYSQL_KEY_VARCHAR})" if key else "TEXT"
    raise TypeError(f"no MySQL mapping for Arrow type {t}")


def check_schema(schema: pa.Schema, reserved: Iterable[str] = ()) -> None:
    """Refuse a slice schema the loaders cannot serve: no ``ds`` date column, or a reserved column name."""
    if DS not in schema.names or not pa.types.is_date(schema.field(DS).type):
        raise ValueError(f"a served table needs a date column {DS!r}; schema is {schema}")
    clash = {LOADED_AT, *reserved} & set(schema.names)
    if clash:
        raise ValueError(f"column names reserved by the loader: {sorted(clash)}")
    if len(set(schema.names)) != len(schema.names):
        raise ValueError(f"duplicate column names in {schema.names}")


def utc_naive(batch: pa.RecordBatch, *, bool_as_int: bool = False) -> pa.RecordBatch:
    """Timestamps with a zone as naive UTC wall-clock time (Arrow stores UTC, so this relabels, it does not shift).

    Arrow's CSV writer formats zoned timestamps several times slower than naive ones, and MySQL's DATETIME
    refuses the trailing ``Z``; PostgreSQL reads the naive text in the session time zone, which the loader sets
    to UTC. ``bool_as_int`` writes booleans as 0/1 for MySQL, which does not parse ``true``/``false`` in CSV.
    """
    columns = []
    changed = False
    for field, column in zip(batch.schema, batch.columns, strict=True):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            column = column.cast(pa.timestamp(field.type.unit))
            changed = True
        elif bool_as_int and pa.types.is_boolean(field.type):
            column = column.cast(pa.int8())
            changed = True
        columns.append(column)
    return pa.record_batch(columns, names=batch.schema.names) if changed else batch


def write_csv(
    batch: pa.RecordBatch, names: Sequence[str], sink: Any, options: pacsv.WriteOptions, *, bool_as_int: bool = False
) -> int:
    """Write ``batch`` to ``sink`` as CSV, timestamps as naive UTC (see ``utc_naive``); returns its rows.

    Raises:
        ValueError: the batch's columns are not ``names``, in order (a batch that does not match its slice schema).
    """
    if batch.schema.names != list(names):
        raise ValueError(f"batch columns {batch.schema.names} differ from the slice schema {list(names)}")
    pacsv.write_csv(utc_naive(batch, bool_as_int=bool_as_int), sink, options)
    return batch.num_rows


def add_missing_columns(where: str, wanted: Mapping[str, C], existing: Iterable[str], add: Callable[[str, C], None]):
    """Schema growth: ``add(name, column)`` each wanted column ``existing`` lacks, one a statement, in schema order.

    A column is never dropped or retyped: a slice without it gets NULLs, as older slices do for a new column.

    Returns:
        The names added.
    """
    present = set(existing)
    added = []
    for name, column in wanted.items():
        if name not in present:
            log.info("%s: adding column %s %s", where, name, column)
            add(name, column)
            added.append(name)
    return added


class Target(abc.ABC):
    """A serving database, for one load: what ``load_slice`` cannot do the same way for every target.

    Attributes:
        name_pattern: the table names the target accepts.
        reserved: column names of its own, which a slice may not have.
    """

    name_pattern: re.Pattern[str]
    reserved: tuple[str, ...] = ()

    @abc.abstractmethod
    def where(self, table: str) -> str:
        """The served table's qualified name, for messages."""

    def check(self, schema: pa.Schema) -> None:  # noqa: B027 - optional
        """Refuse a schema the target's own extras (point columns, indexes) cannot apply to."""

    def begin(self) -> None:  # noqa: B027 - optional
        """Ready the connection for the load."""

    @abc.abstractmethod
    def logged(self, table: str, ds: dt.date) -> tuple[int | None, int] | None:
        """The (snapshot_id, rows) the load-log holds for the slice, if any."""

    def skip(self, table: str, ds: dt.date) -> None:  # noqa: B027 - optional
        """End a load that found its snapshot already served, having written nothing to the served slice."""

    @abc.abstractmethod
    def ensure(self, table: str, schema: pa.Schema) -> None:
        """Create the load-log and the served table when missing; add the schema's new columns and the extras."""

    @abc.abstractmethod
    def stage(self, table: str, ds: dt.date, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> int:
        """Write the slice's rows where readers do not see them yet; returns the rows written."""

    @abc.abstractmethod
    def swap(self, result: LoadResult) -> None:
        """Make the staged rows the served slice and record ``result`` in the load-log, atomically for readers."""

    @abc.abstractmethod
    def abort(self, table: str, ds: dt.date) -> None:
        """After a failure anywhere before the swap completed: undo what is not served (the old slice stays)."""

    def finish(self, result: LoadResult) -> None:  # noqa: B027 - optional
        """After the swap: tidy up what the new slice replaced."""


def load_slice(
    target: Target,
    table: str,
    ds: dt.date | str,
    schema: pa.Schema,
    snapshot_id: int | None,
    batches: Iterable[pa.RecordBatch],
) -> LoadResult:
    """Replace the rows of slice ``ds`` of ``table`` in ``target`` with ``batches``; readers never see a partial slice.

    A slice whose load-log row already names ``snapshot_id`` is left alone (no writes, the batches unread) and
    reported skipped. On any error the target aborts (the previous rows stay served) and the error is raised again.

    Args:
        target: the serving database, for this load.
        table: the gold table name, e.g. ``tweets_per_hour``.
        ds: the slice date.
        schema: the Arrow schema of the batches; it must have a ``ds`` date column.
        snapshot_id: the Iceberg snapshot the batches come from.
        batches: the slice's record batches, consumed once, one at a time.

    Returns:
        The ``LoadResult`` (``skipped`` when the snapshot was already loaded).
    """
    started = time.monotonic()
    if not target.name_pattern.match(table):
        raise ValueError(f"table name {table!r} must match {target.name_pattern.pattern}")
    ds = as_date(ds)
    check_schema(schema, reserved=target.reserved)
    target.check(schema)
    target.begin()
    try:
        found = target.logged(table, ds)
        if found is not None and found[0] == snapshot_id:
            target.skip(table, ds)
            log.info("%s ds=%s already holds snapshot %s: skipped", target.where(table), ds, snapshot_id)
            return LoadResult(table, ds, found[1], snapshot_id, time.monotonic() - started, skipped=True)
        target.ensure(table, schema)
        rows = target.stage(table, ds, schema, batches)
        result = LoadResult(table, ds, rows, snapshot_id, time.monotonic() - started, skipped=False)
        target.swap(result)
    except BaseException:
        target.abort(table, ds)
        raise
    target.finish(result)
    log.info(
        "%s ds=%s: %d rows from snapshot %s in %.2fs", target.where(table), ds, rows, snapshot_id, result.duration_s
    )
    return result


def loader(target: Callable[..., Target]) -> Callable[..., LoadResult]:
    """A target's public loader: ``load(conn, table, ds, schema, snapshot_id, batches, **options)``.

    It runs ``load_slice`` (whose arguments follow ``conn``) into ``target(conn, **options)``, a target for one load;
    the options are the target's (see its class).
    """

    def load(conn: Any, *slice_args: Any, **options: Any) -> LoadResult:
        return load_slice(target(conn, **options), *slice_args)

    load.__doc__ = f"``load_slice`` into ``{target.__name__}(conn, **options)``: {target.__doc__}"
    return load


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


class Prefetch(Generic[T]):
    """Iterate ``encode(batch)`` for each batch, computed in a background thread a few items ahead.

    Arrow's encoders release the GIL, so a batch is encoded while the database parses the previous one. An
    exception raised by the batch iterator or the encoder is raised again, unchanged, by the consumer's
    iteration (and kept in ``error``); ``close()`` stops the producer when the consumer gives up first.
    """

    def __init__(self, batches: Iterable[pa.RecordBatch], encode: Callable[[pa.RecordBatch], T], depth: int = 2):
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._produce, args=(batches, encode), daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, batches: Iterable[pa.RecordBatch], encode: Callable[[pa.RecordBatch], T]) -> None:
        try:
            for batch in batches:
                if batch.num_rows and not self._put(encode(batch)):
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
            self._put(_Failed(error))
            return
        self._put(_DONE)

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                self.error = item.error
                raise item.error
            yield item  # type: ignore[misc]

    def close(self) -> None:
        """Stop the producer and wait for it."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=30)

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
