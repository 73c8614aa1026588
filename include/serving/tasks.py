"""Bodies of the serve DAG's tasks: which slices changed (each pinned to one snapshot), load both targets, Metabase."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from include.assets import GOLD_TABLES

# include.serving.source.CURRENT, spelled again so that importing this module stays light (source imports pyarrow).
CURRENT = "current"

log = logging.getLogger(__name__)


def gold_tables() -> list[str]:
    """Names of the gold tables (without namespace) in registry order."""
    return [t.split(".", 1)[1] for tables in GOLD_TABLES.values() for t in tables]


def existing_gold_tables(catalog: Any = None) -> set[str]:
    """The registered gold tables that exist in the Iceberg catalog (a domain may not have run yet)."""
    from include.serving.source import load_catalog

    catalog = catalog or load_catalog()
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


def pin_snapshots(slices: Iterable[Mapping[str, str]], catalog: Any = None) -> list[dict]:
    """The slices, each with the ``snapshot_id`` both serving targets load: its table's current one, read once.

    A snapshot committed after this (by a Spark job of another run) is served by the next serve run, never by one
    target of this run only, so PostgreSQL and TiDB hold the same snapshot of every slice a run served.
    """
    from include.serving.source import current_snapshot_id, load_catalog

    catalog = catalog or load_catalog()
    pinned: dict[str, int | None] = {}
    out = []
    for gold_slice in slices:
        table = gold_slice["table"]
        if table not in pinned:
            pinned[table] = current_snapshot_id(f"gold.{table}", catalog)
        out.append({**gold_slice, "snapshot_id": pinned[table]})
    return out


def plan_run(events: Mapping | None, ds: str | None, tables: Iterable[str] | None) -> list[dict]:
    """The serve run's slices (``plan_slices``), each pinned to its table's current snapshot (``pin_snapshots``)."""
    from include.serving.source import load_catalog

    catalog = load_catalog()
    return pin_snapshots(plan_slices(events, ds, tables, existing_gold_tables(catalog)), catalog)


def _serve(target: str, connect, load, table: str, ds: str, snapshot_id, catalog: Any, **options) -> dict:
    """Read the slice at ``snapshot_id`` and load it with ``load(conn, ...)`` on a connection of its own."""
    from include.serving.source import read_slice

    gold = read_slice(f"gold.{table}", ds, snapshot_id=snapshot_id, catalog=catalog)
    conn = connect()
    try:
        result = load(conn, table, ds, gold.schema, gold.snapshot_id, gold.batches, **options)
    finally:
        conn.close()
    log.info("%s %s ds=%s: %s", target, table, ds, result)
    out = dataclasses.asdict(result)
    out["ds"] = str(out["ds"])
    return out


def serve_postgres(
    table: str, ds: str, conn_id: str = "analytics_postgres", snapshot_id: int | str | None = CURRENT, catalog=None
) -> dict:
    """Load one gold slice into PostgreSQL ``gold.<table>``, at ``snapshot_id`` (the run's pin; default current)."""
    from include.serving import postgres
    from include.serving.table_specs import serving_extras

    extras = serving_extras(table)
    connect = functools.partial(postgres.connect, conn_id)
    options = {"point_columns": extras.points, "indexes": extras.indexes}
    return _serve("PostgreSQL", connect, postgres.load_slice_postgres, table, ds, snapshot_id, catalog, **options)


def serve_tidb(
    table: str, ds: str, conn_id: str = "tidb", snapshot_id: int | str | None = CURRENT, catalog=None
) -> dict:
    """Load one gold slice into TiDB ``<database>.<table>`` (the connection's schema is the database), likewise."""
    from airflow.sdk import BaseHook

    from include.api.datasets import key_columns
    from include.serving import tidb
    from include.serving.table_specs import serving_extras

    options = {
        "database": BaseHook.get_connection(conn_id).schema or tidb.DATABASE,
        # The REST API's lookup/page key is indexed, so its queries are index range scans in TiDB.
        "key_columns": key_columns(table),
        "indexes": serving_extras(table).indexes,
    }
    connect = functools.partial(tidb.connect, conn_id)
    return _serve("TiDB", connect, tidb.load_slice_tidb, table, ds, snapshot_id, catalog, **options)


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


# The load-log as of the last dbt build that succeeded (one row), in the served schema beside the load-log itself.
MARTS_BUILT = "_lakehouse_marts_built"


def _load_log_fingerprint(cur: Any) -> str:
    """An md5 of every load-log row (table, slice, snapshot, load time): it changes with every load that wrote."""
    from include.serving.loads import LOAD_LOG
    from include.serving.postgres import TARGET_SCHEMA

    cur.execute("SELECT to_regclass(%s)", (f"{TARGET_SCHEMA}.{LOAD_LOG}",))
    if cur.fetchone()[0] is None:
        return "no loads"
    cur.execute(
        "SELECT md5(coalesce(string_agg(concat_ws('|', table_name, ds, snapshot_id, rows, loaded_at), ','"
        f" ORDER BY table_name, ds), '')) FROM {TARGET_SCHEMA}.{LOAD_LOG}"
    )
    return cur.fetchone()[0]


def _with_connection(body):
    """``body(conn)`` on ``conn``, or on a connection of its own to ``conn_id`` (opened and closed here)."""

    @functools.wraps(body)
    def run(*args: Any, conn: Any = None, conn_id: str = "analytics_postgres") -> Any:
        from include.serving.postgres import connect

        if conn is not None:
            return body(conn, *args)
        own = connect(conn_id)
        try:
            return body(own, *args)
        finally:
            own.close()

    return run


@_with_connection
def marts_to_build(conn: Any) -> str | None:
    """A fingerprint of what the marts are built from when they are older than it, None when they are current.

    They are current when the last dbt build that succeeded started from this same load-log and this same dbt
    project (its parsed manifest): every load since changed the one, a new release the other, and a build that
    failed recorded nothing, so the next run builds again.
    """
    import hashlib

    from include.cosmos_config import manifest_path
    from include.serving.postgres import TARGET_SCHEMA

    manifest = manifest_path()
    project = hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.exists() else "no manifest"
    with conn.cursor() as cur:
        fingerprint = f"{_load_log_fingerprint(cur)} {project}"
        cur.execute("SELECT to_regclass(%s)", (f"{TARGET_SCHEMA}.{MARTS_BUILT}",))
        built = None
        if cur.fetchone()[0] is not None:
            cur.execute(f"SELECT load_log_md5 FROM {TARGET_SCHEMA}.{MARTS_BUILT}")
            built = (cur.fetchone() or (None,))[0]
    conn.rollback()
    return None if built == fingerprint else fingerprint


@_with_connection
def record_marts_built(conn: Any, fingerprint: str) -> None:
    """Record that the marts were built, and tested, from the load-log ``fingerprint`` (``marts_to_build``'s)."""
    from include.serving.postgres import TARGET_SCHEMA

    with conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {TARGET_SCHEMA}")
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {TARGET_SCHEMA}.{MARTS_BUILT} (one boolean PRIMARY KEY DEFAULT true"
            " CHECK (one), load_log_md5 text NOT NULL, built_at timestamptz NOT NULL)"
        )
        cur.execute(
            f"INSERT INTO {TARGET_SCHEMA}.{MARTS_BUILT} (load_log_md5, built_at) VALUES (%s, now())"
            " ON CONFLICT (one) DO UPDATE SET load_log_md5 = excluded.load_log_md5, built_at = excluded.built_at",
            (fingerprint,),
        )
    conn.commit()
