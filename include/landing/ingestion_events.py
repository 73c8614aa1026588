"""The trips pipeline's stages as ingestion events: ids for every landed file version, and what each stage did to it."""

# Each stage task of the trips DAG calls `report(stage, ds)` after its Spark job. The files of the run are the
# latest versions of the paths `ops.processed_files` records for the run's `ds` (what raw actually read, including
# a file that arrived after the sensor returned); each gets its ingestion id (an upload's, given by the API and
# found by path and ETag, or a new one, with its `landed` event), then the stage's event with that file's figures,
# read with PyIceberg from the tables the stage wrote. An event already emitted for an ingestion is not emitted
# again, so a retried task or a later run of the same day adds only what is new. A failed stage emits `failed` with
# its one-line reason for every file of the run not yet served.

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from include.api import events

log = logging.getLogger(__name__)

DOMAIN = "trips"
# The Airflow connection of the events database: the analytics PostgreSQL (the API's LAKEHOUSE_API_EVENTS_DSN).
CONN_ID_VARIABLE = "LAKEHOUSE_INGESTION_EVENTS_CONN_ID"
DEFAULT_CONN_ID = "analytics_postgres"


def connect(conn_id: str | None = None) -> Any:
    """A psycopg2 connection to the events database (the Airflow connection, resolved now)."""
    import os

    import psycopg2
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id or os.environ.get(CONN_ID_VARIABLE, DEFAULT_CONN_ID))
    return psycopg2.connect(
        host=conn.host,
        port=conn.port or 5432,
        user=conn.login,
        password=conn.password or None,
        dbname=conn.schema or "analytics",
    )


@contextmanager
def _events_db(conn: Any = None) -> Iterator[Any]:
    """``conn``, else a connection of its own closed afterwards; the events schema in place either way."""
    own = conn is None
    conn = conn or connect()
    try:
        events.ensure_schema(conn)
        yield conn
    finally:
        if own:
            conn.close()


def _load_catalog() -> Any:
    from include.serving.source import load_catalog

    return load_catalog()


def run_files(catalog: Any, ds: str) -> dict[str, tuple[str, int, int]]:
    """path -> (etag, size, lines) of the latest version of each trips file processed for ``ds``."""
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
    from pyiceberg.expressions import And, EqualTo

    try:
        table = catalog.load_table("ops.processed_files")
    except (NoSuchTableError, NoSuchNamespaceError):
        return {}
    rows = table.scan(row_filter=And(EqualTo("domain", DOMAIN), EqualTo("ds", ds))).to_arrow().to_pylist()
    latest: dict[str, Mapping] = {}
    for row in rows:
        if row["path"] not in latest or row["processed_at"] > latest[row["path"]]["processed_at"]:
            latest[row["path"]] = row
    return {path: (r["etag"], r["size"], r["row_count"]) for path, r in latest.items()}


def _per_file(catalog: Any, table: str, ds: str, column: str, extra: tuple[str, ...] = ()) -> list[dict]:
    from pyiceberg.expressions import EqualTo

    return catalog.load_table(table).scan(row_filter=EqualTo("ds", ds), selected_fields=(column, *extra)).to_arrow()


def stage_figures(catalog: Any, stage: str, ds: str, files: Mapping[str, tuple[str, int, int]]) -> dict[str, dict]:
    """path -> the event data of ``stage`` for each file of the run."""
    if stage == "raw":
        return {path: {"lines": lines} for path, (_, _, lines) in files.items()}
    if stage == "gold":
        sources = _per_file(catalog, "gold.trips", ds, "source_file").column("source_file").to_pylist()
        return {path: {"trips": sources.count(path)} for path in files}
    accepted = _per_file(catalog, "bronze.trips", ds, "_source_file").column("_source_file").to_pylist()
    rejects = _per_file(catalog, "bronze.trips_rejects", ds, "_source_file", ("_line_number",)).to_pylist()
    figures = {}
    for path, (_, _, lines) in files.items():
        mine = [r["_line_number"] for r in rejects if r["_source_file"] == path]
        # Line 1 is the header unless it was refused (a file without the header is refused whole).
        header = 1 if lines and 1 not in mine else 0
        kept = accepted.count(path)
        figures[path] = {"accepted": kept, "duplicates": lines - header - kept - len(mine), "rejects": len(mine)}
    return figures


def _already(conn: Any, ingestion_id: str, event: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM ingest.events WHERE ingestion_id = %s AND event = %s LIMIT 1", (ingestion_id, event))
        found = cur.fetchone() is not None
    conn.commit()
    return found


def announce_landed(pending: list[Mapping], conn: Any = None) -> dict[str, str]:
    """Ingestion ids (and ``landed`` events) for the files the sensor returned; returns path -> id."""
    with _events_db(conn) as conn:
        return ensure_ids(conn, {f["path"]: (f["etag"], f["size"], 0) for f in pending})


def ensure_ids(conn: Any, files: Mapping[str, tuple[str, int, int]]) -> dict[str, str]:
    """path -> ingestion id for the run's files; a version without one is registered and announced ``landed``."""
    ids = {}
    for path, (etag, size, _) in sorted(files.items()):
        ingestion_id, created = events.register(conn, domain=DOMAIN, path=path, etag=etag, size=size, source="sensor")
        if created:
            events.emit(conn, ingestion_id, "landed", {"path": path, "bytes": size, "source": "sensor"})
        ids[path] = ingestion_id
    return ids


def report(stage: str, ds: str, catalog: Any = None, conn: Any = None) -> dict[str, str]:
    """Emit ``stage`` (raw, bronze or gold) for every file of run ``ds``; returns path -> ingestion id.

    Args:
        stage: the stage just finished.
        ds: the run's slice.
        catalog: a PyIceberg catalog (default: from the Airflow connections).
        conn: a psycopg2 connection to the analytics database (default: the ``analytics_postgres`` connection).
    """
    catalog = _load_catalog() if catalog is None else catalog
    with _events_db(conn) as conn:
        files = run_files(catalog, ds)
        ids = ensure_ids(conn, files)
        figures = stage_figures(catalog, stage, ds, files)
        for path, ingestion_id in ids.items():
            if not _already(conn, ingestion_id, stage):
                events.emit(conn, ingestion_id, stage, {"ds": ds, **figures[path]})
        log.info("%s ds=%s: %s events for %d files", DOMAIN, ds, stage, len(ids))
        return ids


def report_failure(
    stage: str, ds: str, reason: str, pending: list[Mapping] = (), catalog: Any = None, conn: Any = None
) -> list[str]:
    """Emit ``failed`` (the stage and the one-line reason) for the run's files that have not ended yet.

    Args:
        stage: the stage that failed.
        ds: the run's slice.
        reason: the one-line reason.
        pending: the files the sensor returned (``path``, ``etag``, ``size``): raw may have failed before recording
            what it read.
        catalog: a PyIceberg catalog (default: from the Airflow connections).
        conn: a psycopg2 connection to the analytics database (default: the ``analytics_postgres`` connection).
    """
    catalog = _load_catalog() if catalog is None else catalog
    with _events_db(conn) as conn:
        files = {f["path"]: (f["etag"], f["size"], 0) for f in pending}
        files.update(run_files(catalog, ds))
        failed = []
        for ingestion_id in ensure_ids(conn, files).values():
            if not any(_already(conn, ingestion_id, final) for final in events.FINAL):
                events.emit(conn, ingestion_id, "failed", {"ds": ds, "stage": stage, "reason": reason})
                failed.append(ingestion_id)
        return failed


def on_stage_failure(context: Mapping[str, Any]) -> None:
    """``on_failure_callback`` of a trips Spark task: its files' ingestions get ``failed`` with the reason."""
    ti = context["ti"]
    error = context.get("exception")
    reason = str(error).strip().splitlines()[-1] if error and str(error).strip() else type(error).__name__
    try:
        pending = ti.xcom_pull(task_ids="wait_for_files") or []
        report_failure(ti.task_id, context["ds"], reason, pending)
    except Exception:  # noqa: BLE001 - a callback must not hide the task's own failure
        log.exception("could not emit the failed events of %s", ti.task_id)


def _rows_per_file(conn: Any, sql: str, ds: str) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute(sql, (ds,))
        return {path: int(n) for path, n in cur.fetchall()}


def report_served(loads: list[Mapping], conn: Any = None) -> list[str]:
    """Emit ``served`` (PostgreSQL and TiDB rows) for the ingestions whose trips the serve run loaded.

    Args:
        loads: the serve DAG's load results (``table``, ``ds``); only ``trips`` slices concern ingestions.
        conn: a psycopg2 connection to the events database (default: from the Airflow connection).

    The rows of each file are counted in both copies of the slice, so the event says what a reader finds there; a
    slice the run skipped (already served) still counts, for an ingestion still waiting for its ``served``.
    """
    from include.serving import postgres, tidb

    slices = sorted({load["ds"] for load in loads if load["table"] == "trips"})
    if not slices:
        return []
    served = []
    with _events_db(conn) as conn:
        pg, my = postgres.connect(), tidb.connect()
        try:
            for ds in slices:
                in_pg = _rows_per_file(pg, "SELECT source_file, count(*) FROM gold.trips WHERE ds = %s GROUP BY 1", ds)
                in_tidb = _rows_per_file(my, "SELECT source_file, COUNT(*) FROM trips WHERE ds = %s GROUP BY 1", ds)
                for ingestion_id, path in _gold_ingestions(conn, ds):
                    if not _already(conn, ingestion_id, "served"):
                        rows = {"postgres_rows": in_pg.get(path, 0), "tidb_rows": in_tidb.get(path, 0)}
                        events.emit(conn, ingestion_id, "served", {"ds": ds, **rows})
                        served.append(ingestion_id)
        finally:
            pg.close()
            my.close()
    return served


def _gold_ingestions(conn: Any, ds: str) -> list[tuple[str, str]]:
    """(ingestion id, path) of the ingestions whose gold event is for slice ``ds``."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT e.ingestion_id, i.path FROM ingest.events AS e JOIN ingest.ingestions AS i USING (ingestion_id)"
            " WHERE e.event = 'gold' AND e.data->>'ds' = %s ORDER BY e.event_id",
            (ds,),
        )
        found = [(ingestion, path) for ingestion, path in cur.fetchall()]
    conn.commit()
    return found
