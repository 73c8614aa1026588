"""Pipeline metadata in the ``ops`` namespace: extraction runs recorded from landing manifests."""

from __future__ import annotations

import datetime as dt
import json
import logging

from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse_jobs.iceberg import merge_rows, qualified, read_text_file
from lakehouse_jobs.schemas import DS, schema
from lakehouse_jobs.session import CATALOG
from lakehouse_jobs.wap import retry_conflicts

log = logging.getLogger(__name__)

EXTRACTIONS = "ops.extractions"
# `records` and `pages` came with the users domain (a paged API); older tables grow these columns.
EXTRACTIONS_SCHEMA = schema(
    "domain string NOT NULL, ds date NOT NULL, source string, object_key string, bytes bigint, "
    "lines bigint, sha256 string, downloader string, started_at timestamp, finished_at timestamp, "
    "duration_s double, status string, raw_rows bigint, records bigint, pages bigint",
)
MANIFEST_FIELDS = ("domain", "ds", "source", "object_key", "bytes", "lines", "sha256", "status")


class ManifestError(RuntimeError):
    """The landing manifest is missing, unreadable or disagrees with the landed data."""


def manifest_uri(bucket: str, domain: str, ds: str) -> str:
    """Location of the manifest the Airflow land task writes next to the landed files."""
    return f"s3a://{bucket}/{domain}/ds={ds}/_manifest.json"


def load_manifest(spark, uri: str) -> dict | None:
    """Parse the manifest at ``uri``; ``None`` when there is none (data landed by other means)."""
    text = read_text_file(spark, uri)
    if text is None:
        return None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{uri} is not valid JSON: {exc}") from exc
    missing = [f for f in MANIFEST_FIELDS if f not in manifest]
    if missing:
        raise ManifestError(f"{uri} lacks fields {missing}")
    return manifest


def record_extraction(spark, manifest: dict, raw_rows: int) -> None:
    """Upsert one extraction run (keyed by domain and ds) into ``ops.extractions``."""
    from pyspark.sql import functions as F

    row = {name: manifest.get(name) for name in EXTRACTIONS_SCHEMA.fieldNames()}
    row["raw_rows"] = raw_rows
    strings = T.StructType([T.StructField(f.name, T.StringType()) for f in EXTRACTIONS_SCHEMA.fields])
    df = spark.createDataFrame([{k: None if v is None else str(v) for k, v in row.items()}], strings)
    # ISO-8601 with offset ("...+00:00") is parsed by the cast; the session time zone is UTC.
    df = df.select([F.col(f.name).cast(f.dataType).alias(f.name) for f in EXTRACTIONS_SCHEMA.fields])
    merge_rows(df, EXTRACTIONS, EXTRACTIONS_SCHEMA, keys=("domain", "ds"))
    log.info("recorded extraction %s ds=%s: %s bytes, %s lines", row["domain"], row["ds"], row["bytes"], row["lines"])


PIPELINE_RUNS = "gold.pipeline_runs"
PIPELINE_RUNS_SCHEMA = schema(
    DS,
    "domain string NOT NULL, source string, bytes bigint, lines bigint, extraction_s double, "
    "raw_rows bigint NOT NULL, accepted bigint NOT NULL, duplicates bigint NOT NULL, "
    "rejects bigint NOT NULL, status string NOT NULL",
)


def publish_run(spark, domain: str, ds: str, *, raw: int, accepted: int, duplicates: int, rejects: int, status: str):
    """Upsert the run summary of one domain and ds (extraction + bronze reconciliation) into ``gold.pipeline_runs``.

    Served like any gold table, it feeds the "Pipeline health" dashboard: what was extracted, and how bronze
    accounted for it. ``status`` is ``published``, ``rejected`` (the reject-ratio gate refused the slice) or
    ``failed_audit`` (the audit of the run's branch failed: nothing was published). The bronze engine writes it last,
    after the fast-forwards. A summary equal to the one there is not written again (a re-run changes nothing); a
    commit conflict with another run's summary is retried (``wap.retry_conflicts``).
    """
    from pyspark.sql import functions as F

    extraction = None
    if spark.catalog.tableExists(f"{CATALOG}.{EXTRACTIONS}"):
        extraction = (
            spark.table(f"{CATALOG}.{EXTRACTIONS}")
            .where((F.col("domain") == domain) & (F.col("ds") == F.lit(ds).cast("date")))
            .first()
        )
    row = (
        dt.date.fromisoformat(ds),
        domain,
        extraction["source"] if extraction else None,
        extraction["bytes"] if extraction else None,
        extraction["lines"] if extraction else None,
        extraction["duration_s"] if extraction else None,
        raw,
        accepted,
        duplicates,
        rejects,
        status,
    )
    if _current_run(spark, domain, ds) == row:
        log.info("pipeline run %s ds=%s: %s (unchanged)", domain, ds, status)
        return
    df = spark.createDataFrame([row], PIPELINE_RUNS_SCHEMA)
    retry_conflicts(
        lambda: merge_rows(df, PIPELINE_RUNS, PIPELINE_RUNS_SCHEMA, keys=("domain", "ds"), partitioned_by=("ds",)),
        what=f"{PIPELINE_RUNS} {domain} ds={ds}",
    )
    log.info("pipeline run %s ds=%s: %s", domain, ds, status)


def _current_run(spark, domain: str, ds: str) -> tuple | None:
    """The summary ``gold.pipeline_runs`` holds for a domain and ds, as a tuple of its columns; ``None`` if none."""
    from pyspark.sql import functions as F

    if not spark.catalog.tableExists(f"{CATALOG}.{PIPELINE_RUNS}"):
        return None
    found = (
        spark.table(f"{CATALOG}.{PIPELINE_RUNS}")
        .where((F.col("domain") == domain) & (F.col("ds") == F.lit(ds).cast("date")))
        .select(*PIPELINE_RUNS_SCHEMA.fieldNames())
        .collect()
    )
    return tuple(found[0]) if len(found) == 1 else None


# Older slices of a gold table a run moved rows out of (a table whose `ds` is "the run that last changed the row"):
# the DAG announces them, so the serving copies reload them too (include/slice_changes.py reads this table).
SLICE_CHANGES = "ops.slice_changes"
# `ds` is the run, `changed_ds` an older slice the run took `rows_out` rows out of.
SLICE_CHANGES_SCHEMA = schema(
    "table_name string NOT NULL, ds date NOT NULL, changed_ds date NOT NULL, rows_out bigint NOT NULL, "
    "recorded_at timestamp NOT NULL",
)


def record_slice_changes(spark, table: str, ds: str, changed) -> None:
    """Record that run ``ds`` takes ``rows_out`` rows out of each older slice of ``table`` (``{changed_ds: rows_out}``).

    Called before the change itself: a re-run after a crash in between still announces those slices for serving.
    """
    now = dt.datetime.now(dt.timezone.utc)  # noqa: UP017 - the image runs Python 3.10
    day = dt.date.fromisoformat(ds)
    rows = [(table, day, changed_ds, int(n), now) for changed_ds, n in sorted(changed.items())]
    frame = spark.createDataFrame(rows, SLICE_CHANGES_SCHEMA)
    merge_rows(frame, SLICE_CHANGES, SLICE_CHANGES_SCHEMA, keys=("table_name", "ds", "changed_ds"))


def changed_slices(spark, table: str, ds: str) -> list[str]:
    """The older slices of ``table`` that run ``ds`` recorded as changed (``record_slice_changes``), oldest first."""
    if not spark.catalog.tableExists(qualified(SLICE_CHANGES)):
        return []
    rows = (
        spark.table(qualified(SLICE_CHANGES))
        .where((F.col("table_name") == table) & (F.col("ds") == F.lit(ds).cast("date")))
        .select("changed_ds")
        .collect()
    )
    return sorted({row["changed_ds"].isoformat() for row in rows} - {ds})
