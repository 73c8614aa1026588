"""Shared by the serving loaders: the load-log record, Arrow-to-SQL type mapping, and a background batch encoder."""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import pyarrow as pa

# The load-log table, one per target: its primary key (table_name, ds) names the slice a row describes.
LOAD_LOG = "_lakehouse_loads"
# Columns every served table carries besides the Iceberg ones; Iceberg columns of the same name are refused.
LOADED_AT = "_loaded_at"
DS = "ds"
# A MySQL/TiDB key column cannot be TEXT (TiDB and MariaDB index only a prefix of TEXT, and only with a length).
MYSQL_KEY_VARCHAR = 255

T = TypeVar("T")


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
