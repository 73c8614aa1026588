"""Bodies of the serve DAG's tasks: which slices changed, load them into each target, refresh Metabase."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable, Mapping

from include.assets import GOLD_TABLES

log = logging.getLogger(__name__)


def gold_tables() -> list[str]:
    """Names of the gold tables (without namespace) in registry order."""
    return [t.split(".", 1)[1] for tables in GOLD_TABLES.values() for t in tables]


def existing_gold_tables() -> set[str]:
    """The registered gold tables that exist in the Iceberg catalog (a domain may not have run yet)."""
    from include.serving.source import load_catalog

    catalog = load_catalog()
    return {table for table in gold_tables() if catalog.table_exists(f"gold.{table}")}


def plan_slices(
    events: Mapping | None,
    ds: str | None = None,
    tables: Iterable[str] | None = None,
    available: set[str] | None = None,
) -> list[dict[str, str]]:
    """The (table, ds) slices a serve run loads.

    Args:
        events: ``triggering_asset_events`` of an asset-scheduled run: each gold asset event carries the ``ds``
            the Spark job wrote in its ``extra``.
        ds: for a manual run, the slice to serve.
        tables: for a manual run, the gold tables to serve (default: all of them that exist).
        available: the gold tables that exist; a manual run without ``tables`` skips the others.
    """
    known = set(gold_tables())
    wanted: set[tuple[str, str]] = set()
    for asset, asset_events in (events or {}).items():
        name = getattr(asset, "name", "") or ""
        if not name.startswith("gold.") or name.split(".", 1)[1] not in known:
            continue
        for event in asset_events:
            event_ds = (getattr(event, "extra", None) or {}).get("ds")
            if event_ds:
                wanted.add((name.split(".", 1)[1], event_ds))
    if ds:
        dt.date.fromisoformat(ds)  # a clear error for a malformed date
        chosen = list(tables or (known if available is None else known & available))
        unknown = sorted(set(chosen) - known)
        if unknown:
            raise ValueError(f"unknown gold tables {unknown}; known: {sorted(known)}")
        if available is not None and not tables:
            log.info(
                "manual run for ds=%s: serving %s; not yet in the lake: %s",
                ds,
                sorted(chosen),
                sorted(known - available),
            )
        wanted |= {(table, ds) for table in chosen}
    if not wanted:
        raise ValueError("nothing to serve: no gold asset event carried a ds, and no ds param was given")
    return [{"table": table, "ds": slice_ds} for table, slice_ds in sorted(wanted)]


def _result(result) -> dict:
    out = dataclasses.asdict(result)
    out["ds"] = str(out["ds"])
    return out


def serve_postgres(table: str, ds: str, conn_id: str = "analytics_postgres") -> dict:
    """Load one gold slice into PostgreSQL ``gold.<table>``."""
    from include.serving import postgres
    from include.serving.source import read_slice
    from include.serving.table_specs import serving_extras

    gold = read_slice(f"gold.{table}", ds)
    conn = postgres.connect(conn_id)
    try:
        result = postgres.load_slice_postgres(
            conn,
            table,
            ds,
            gold.schema,
            gold.snapshot_id,
            gold.batches,
            point_columns=serving_extras(table).points,
        )
    finally:
        conn.close()
    log.info("PostgreSQL gold.%s ds=%s: %s", table, ds, result)
    return _result(result)


def serve_tidb(table: str, ds: str, conn_id: str = "tidb") -> dict:
    """Load one gold slice into TiDB ``<database>.<table>`` (the connection's schema is the database)."""
    from airflow.sdk import BaseHook

    from include.api.datasets import key_columns
    from include.serving import tidb
    from include.serving.source import read_slice
    from include.serving.table_specs import serving_extras

    database = BaseHook.get_connection(conn_id).schema or tidb.DATABASE
    gold = read_slice(f"gold.{table}", ds)
    conn = tidb.connect(conn_id)
    try:
        # The REST API's lookup/page key is indexed, so its queries are index range scans in TiDB.
        result = tidb.load_slice_tidb(
            conn,
            table,
            ds,
            gold.schema,
            gold.snapshot_id,
            gold.batches,
            database=database,
            key_columns=key_columns(table),
            indexes=serving_extras(table).tidb_indexes,
        )
    finally:
        conn.close()
    log.info("TiDB %s.%s ds=%s: %s", database, table, ds, result)
    return _result(result)


def refresh_metabase(conn_id: str = "metabase", database_conn_id: str = "analytics_postgres") -> dict:
    """Make Metabase match the dashboard files (idempotent); the connection holds its URL and admin login."""
    from airflow.sdk import BaseHook

    from include.metabase.provision import database_from_airflow, provision

    conn = BaseHook.get_connection(conn_id)
    scheme = conn.conn_type if conn.conn_type in ("http", "https") else "http"
    host = conn.host if "://" in (conn.host or "") else f"{scheme}://{conn.host}"
    base_url = f"{host}:{conn.port}" if conn.port else host
    summary = provision(base_url, conn.login, conn.password, database_from_airflow(database_conn_id))
    log.info("Metabase: %s", summary.as_dict())
    return summary.as_dict()
