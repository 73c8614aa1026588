"""The serving source: one ``ds`` slice of a gold Iceberg table, read with PyIceberg as a stream of Arrow batches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from include.serving.loads import as_date
from include.settings import load_settings

DEFAULT_NAMESPACE = "gold"
# read_slice's default: the table's current snapshot, whichever it is when the slice is opened.
CURRENT = "current"


@dataclass
class Slice:
    """A slice of an Iceberg table as of one snapshot.

    Attributes:
        schema: the Arrow schema of the batches.
        snapshot_id: the snapshot read (None when the table has none yet).
        batches: the slice's rows, streamed: iterate once.
    """

    schema: pa.Schema
    snapshot_id: int | None
    batches: Iterator[pa.RecordBatch]


def load_catalog(catalog_conn_id: str | None = None, s3_conn_id: str | None = None) -> Any:
    """The PyIceberg ``SqlCatalog`` of the lakehouse, from the Airflow connections (resolved now, at run time).

    Args:
        catalog_conn_id: the PostgreSQL connection of the Iceberg JDBC catalog (default from settings,
            ``iceberg_catalog``); its schema is the catalog database.
        s3_conn_id: the S3/MinIO connection (default ``lakehouse_s3``): login and password are the keys,
            extra ``endpoint_url`` and ``region_name``.

    Returns:
        A ``pyiceberg.catalog.sql.SqlCatalog`` named ``lake``.
    """
    from airflow.sdk import BaseHook
    from pyiceberg.catalog.sql import SqlCatalog
    from sqlalchemy.engine import URL

    settings = load_settings()
    catalog = BaseHook.get_connection(catalog_conn_id or settings.catalog_conn_id)
    s3 = BaseHook.get_connection(s3_conn_id or settings.s3_conn_id)
    extra = s3.extra_dejson or {}
    uri = URL.create(
        "postgresql+psycopg2",
        username=catalog.login or None,
        password=catalog.password or None,
        host=catalog.host,
        port=catalog.port or 5432,
        database=catalog.schema or "iceberg_catalog",
    )
    properties = {
        "uri": uri.render_as_string(hide_password=False),
        # Spark writes s3a:// locations; PyIceberg reads them, but its own warehouse must be s3://.
        "warehouse": settings.warehouse.replace("s3a://", "s3://", 1),
        "s3.access-key-id": s3.login or "",
        "s3.secret-access-key": s3.password or "",
        "s3.region": extra.get("region_name") or extra.get("region") or "us-east-1",
    }
    endpoint = extra.get("endpoint_url") or extra.get("host")
    if endpoint:
        properties["s3.endpoint"] = endpoint
    return SqlCatalog("lake", **properties)


def _rebatch(batches: Iterable[pa.RecordBatch], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """At most ``batch_rows`` rows a batch (slices are zero-copy views), empty batches dropped."""
    for batch in batches:
        for offset in range(0, batch.num_rows, batch_rows):
            yield batch.slice(offset, batch_rows)


def qualified(table: str) -> str:
    """``<namespace>.<table>``: a bare name is in the ``gold`` namespace."""
    return table if "." in table else f"{DEFAULT_NAMESPACE}.{table}"


def current_snapshot_id(table: str, catalog: Any = None) -> int | None:
    """The id of the table's current snapshot (None when it has none yet)."""
    snapshot = (catalog or load_catalog()).load_table(qualified(table)).current_snapshot()
    return snapshot.snapshot_id if snapshot is not None else None


def read_slice(
    table: str,
    ds: dt.date | str,
    *,
    batch_rows: int = 65_536,
    catalog: Any = None,
    snapshot_id: int | str | None = CURRENT,
) -> Slice:
    """Open the ``ds`` slice of an Iceberg table as of one snapshot, as a stream of Arrow batches.

    Only the data files of the slice's partition are planned (the filter prunes on ``ds``), and their batches
    are read one at a time when the returned iterator is consumed.

    Args:
        table: ``<table>`` (in the ``gold`` namespace) or ``<namespace>.<table>``.
        ds: the slice date.
        batch_rows: the most rows a yielded batch holds.
        catalog: a PyIceberg catalog; by default ``load_catalog()``.
        snapshot_id: the snapshot to read: an id (e.g. pinned once for both serving targets, see
            ``include.serving.tasks.pin_snapshots``), ``None`` for "the table had no snapshot" (an empty slice), or
            ``CURRENT`` (the default) for the table's current snapshot now.

    Returns:
        The ``Slice``: schema, snapshot id and batches.

    Raises:
        ValueError: the table has no snapshot ``snapshot_id`` (it expired since it was pinned).
    """
    from pyiceberg.expressions import EqualTo

    if batch_rows < 1:
        raise ValueError("batch_rows must be positive")
    identifier = qualified(table)
    iceberg_table = (catalog or load_catalog()).load_table(identifier)
    if snapshot_id == CURRENT:
        current = iceberg_table.current_snapshot()
        snapshot_id = current.snapshot_id if current is not None else None
    if snapshot_id is None:
        return Slice(iceberg_table.schema().as_arrow(), None, iter(()))
    if iceberg_table.snapshot_by_id(int(snapshot_id)) is None:
        raise ValueError(f"{identifier} has no snapshot {snapshot_id} (expired since it was pinned?)")
    scan = iceberg_table.scan(row_filter=EqualTo("ds", as_date(ds).isoformat()), snapshot_id=int(snapshot_id))
    reader = scan.to_arrow_batch_reader()
    return Slice(reader.schema, int(snapshot_id), _rebatch(reader, batch_rows))
