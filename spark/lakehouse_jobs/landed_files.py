"""Files dropped into the landing bucket at any time, and the versions of them a domain has processed."""

# `ops.processed_files` remembers each file version a domain processed (path, ETag, size): an identical re-drop is
# skipped, a file with new content is read again. The Airflow-side sensor (include/landing/new_files.py) reads the
# same table with PyIceberg and must agree with `plan_files` on what is pending, so the path form
# (`s3a://<bucket>/<key>`) and the ETag form (without quotes) recorded here are part of the contract.

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from lakehouse_jobs.iceberg import ensure_table, merge_rows, qualified, read_slice, replace_slice
from lakehouse_jobs.schemas import schema
from lakehouse_jobs.wap import retry_conflicts

log = logging.getLogger(__name__)

PROCESSED = "ops.processed_files"
PROCESSED_SCHEMA = schema(
    "domain string NOT NULL, path string NOT NULL, etag string NOT NULL, size bigint NOT NULL, "
    "ds date NOT NULL, row_count bigint NOT NULL, processed_at timestamp NOT NULL",
)


@dataclass(frozen=True)
class LandedFile:
    """A file in the landing bucket: its URI, size and ETag (the version S3 gives its content)."""

    path: str
    size: int
    etag: str


@dataclass(frozen=True)
class ProcessedFile:
    """The latest version of a path that a run processed."""

    path: str
    etag: str
    size: int
    ds: dt.date
    processed_at: dt.datetime


def landing_uri(prefix: str, landing_bucket: str = "landing") -> str:
    """``prefix`` as a URI: a key prefix in the landing bucket (``trips/``), or already a full URI."""
    return prefix if "://" in prefix else f"s3a://{landing_bucket}/{prefix.lstrip('/')}"


def plan_files(landed: Iterable[LandedFile], processed: Mapping[str, ProcessedFile]) -> list[LandedFile]:
    """The landed files to process: new paths, and paths whose content (ETag or size) differs from the last processed.

    Args:
        landed: the files now in the landing folder.
        processed: the latest processed version of each path.
    """
    todo = []
    for file in landed:
        last = processed.get(file.path)
        if last is None or (last.etag, last.size) != (file.etag, file.size):
            todo.append(file)
    return sorted(todo, key=lambda f: f.path)


def latest_processed(rows: Iterable[Mapping]) -> dict[str, ProcessedFile]:
    """Reduce ``ops.processed_files`` rows of one domain to the latest processed version of each path."""
    latest: dict[str, ProcessedFile] = {}
    for row in rows:
        seen = ProcessedFile(row["path"], row["etag"], row["size"], row["ds"], row["processed_at"])
        if seen.path not in latest or seen.processed_at > latest[seen.path].processed_at:
            latest[seen.path] = seen
    return latest


def is_landed_name(name: str, suffix: str) -> bool:
    """A data file's name: ends with ``suffix``; ``_``/``.`` names (manifests, uploads in flight) are not data."""
    return name.endswith(suffix) and not name.startswith(("_", "."))


def list_landed(spark, uri: str, suffix: str = ".parquet") -> list[LandedFile]:
    """Every file named ``*<suffix>`` under ``uri`` (recursively), skipping ``_``/``.`` names."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(path):
        return []
    files, listing = [], fs.listFiles(path, True)
    while listing.hasNext():
        status = listing.next()
        if not is_landed_name(status.getPath().getName(), suffix):
            continue
        files.append(LandedFile(status.getPath().toString(), int(status.getLen()), _etag(status)))
    return sorted(files, key=lambda f: f.path)


def _etag(status) -> str:
    """S3A reports the object's ETag; other file systems (local runs) fall back to the modification time."""
    try:
        etag = status.getETag()
    except Exception:  # noqa: BLE001 - py4j raises a generic error for a missing method
        etag = None
    return str(etag).strip('"') if etag else f"mtime:{status.getModificationTime()}"


def read_processed(spark, domain: str) -> dict[str, ProcessedFile]:
    """The latest processed version of each path of ``domain`` (the table is created when missing)."""
    from pyspark.sql import functions as F

    table = ensure_table(spark, PROCESSED, PROCESSED_SCHEMA, partitioned_by=())
    rows = spark.table(table).where(F.col("domain") == domain).collect()
    return latest_processed(row.asDict() for row in rows)


def record_processed(spark, domain: str, files: Sequence[LandedFile], rows: Mapping[str, int], ds: str) -> None:
    """Remember that run ``ds`` of ``domain`` processed ``files`` (``rows``: each path's row or line count).

    Every domain shares the table: a commit conflict with another domain's run is retried (``wap.retry_conflicts``).
    """
    now = dt.datetime.now(dt.timezone.utc)  # noqa: UP017 - the image runs Python 3.10
    day = dt.date.fromisoformat(ds)
    records = [(domain, f.path, f.etag, f.size, day, rows[f.path], now) for f in files]
    frame = spark.createDataFrame(records, PROCESSED_SCHEMA)
    retry_conflicts(
        lambda: merge_rows(frame, PROCESSED, PROCESSED_SCHEMA, keys=("domain", "path", "etag")),
        what=f"{PROCESSED} {domain} ds={ds}",
    )


# Spark's file sources treat a path as a glob pattern and report a scanned file as its URL-encoded URI (a space
# is `%20`, `%` is `%25`, non-ASCII is UTF-8 percent-encoded), while listings and `ops.processed_files` hold the
# decoded path. These helpers are the one translation between the two, so a key may hold any character.
_GLOB_CHARACTERS = "\\[]{}*?"


def glob_escaped(path: str) -> str:
    """``path`` with Hadoop's glob characters escaped, so a file source reads exactly that file."""
    return "".join(f"\\{c}" if c in _GLOB_CHARACTERS else c for c in path)


def scanned_uris(spark, paths: Sequence[str]) -> dict[str, str]:
    """The URI Spark reports for each listed path (``_metadata.file_path``, ``input_file_name()``) -> the path."""
    jvm = spark.sparkContext._jvm
    encoded = {str(jvm.org.apache.hadoop.fs.Path(p).toUri().toString()): p for p in paths}
    # A local file is listed as file:/x but scanned as file:///x (local runs and benchmarks).
    encoded.update({"file://" + uri[5:]: p for uri, p in list(encoded.items()) if uri.startswith("file:/")})
    return encoded


def with_listed_paths(df, column: str, paths: Sequence[str]):
    """Replace the scanned URIs in ``column`` of ``df`` with the listed paths they came from.

    A broadcast join rather than a literal map: a run may read thousands of files.
    """
    from pyspark.sql import functions as F

    spark = df.sparkSession
    lookup = spark.createDataFrame(list(scanned_uris(spark, paths).items()), "_uri string, _listed string")
    joined = df.join(F.broadcast(lookup), df[column] == lookup["_uri"], "left")
    return joined.withColumn(column, F.coalesce(F.col("_listed"), F.col(column))).drop("_uri", "_listed")


def superseded_slices(spark, table: str, paths: Sequence[str], ds: str, *, branch: str | None = None) -> dict:
    """Rows of ``table`` (of its ``branch``) outside slice ``ds`` from ``paths`` (``_source_file``), per slice.

    A file read again replaces its earlier rows wherever a run counted them, not only in the run's own slice.
    """
    from pyspark.sql import functions as F

    if not paths or not spark.catalog.tableExists(qualified(table)):
        return {}
    files = spark.createDataFrame([(p,) for p in paths], "_source_file string")
    rows = (
        spark.table(qualified(table, branch))
        .where(F.col("ds") != F.lit(ds).cast("date"))
        .join(F.broadcast(files), "_source_file", "left_semi")
        .groupBy("ds")
        .agg(F.count("*").alias("n"))
        .collect()
    )
    return {r["ds"]: int(r["n"]) for r in rows}


def drop_superseded(
    spark, table: str, schema, paths: Sequence[str], ds: str, *, branch: str | None = None
) -> dict[dt.date, int]:
    """Remove the rows of ``paths`` from every slice of ``table`` (of its ``branch``) but ``ds``.

    Returns the rows removed per slice.
    """
    from pyspark.sql import functions as F

    slices = superseded_slices(spark, table, paths, ds, branch=branch)
    if slices:
        files = spark.createDataFrame([(p,) for p in paths], "_source_file string")
    for day in slices:
        rows = read_slice(spark, table, day.isoformat(), branch=branch)
        kept = rows.join(F.broadcast(files), "_source_file", "left_anti")
        replace_slice(kept, table, schema, day.isoformat(), branch=branch)
    return slices


def slice_files(spark, raw: str, ds: str) -> list[str]:
    """The files whose records raw slice ``ds`` holds: the slice owns every record of them, in every layer."""
    if not spark.catalog.tableExists(qualified(raw)):
        return []
    return sorted(r["_source_file"] for r in read_slice(spark, raw, ds).select("_source_file").distinct().collect())


# --- one raw loader for every feed of landed files ---------------------------------------------------------------


class LandingMismatch(RuntimeError):
    """Raw holds a different number of records for a file than the file itself says it has."""


@dataclass(frozen=True)
class LandedFeed:
    """A feed of files landed at any time, and what is its own: how to read them into raw rows.

    Attributes:
        domain: the domain, in ``ops.processed_files``.
        raw: the raw table; ``raw_schema`` its schema (with ``_source_file`` and the 1-based ``position``).
        suffix: what a data file's name ends with.
        read: ``(spark, files, ds)`` -> (the raw rows of ``files``, each path's record count as the file says).
        position: the column numbering a file's records from 1 (``_line_number``, ``_row_number``).
        unit: what a record is, for the summary and the messages (lines, rows).
        replace_everywhere: a file read again replaces its rows in every slice of raw, not only in the run's.
    """

    domain: str
    raw: str
    raw_schema: object
    suffix: str
    read: Callable[..., tuple]
    position: str
    unit: str
    replace_everywhere: bool = False


def load_landed(spark, feed: LandedFeed, ds: str, *, prefix: str, landing_bucket: str = "landing") -> dict:
    """Add the records of new or changed files under ``prefix`` to raw slice ``ds``; returns a summary.

    A file whose ETag and size match its last processed version is skipped. The records of a file processed again
    replace its earlier records in the slice (and in every older one with ``replace_everywhere``); the slice's other
    records stay. Each file's records are checked against the file's own count before it is recorded as processed.
    """
    from pyspark.sql import functions as F

    source = landing_uri(prefix, landing_bucket)
    landed = list_landed(spark, source, suffix=feed.suffix)
    todo = plan_files(landed, read_processed(spark, feed.domain))
    summary = {"landed_files": len(landed), "new_files": len(todo), f"new_{feed.unit}": 0}
    if not todo:
        log.info("%s ds=%s: nothing new among %d files under %s", feed.raw, ds, len(landed), source)
        return summary
    new, expected = feed.read(spark, todo, ds)
    ensure_table(spark, feed.raw, feed.raw_schema)
    paths = [f.path for f in todo]
    if feed.replace_everywhere:
        dropped = drop_superseded(spark, feed.raw, feed.raw_schema, paths, ds)
        summary["superseded"] = {str(k): v for k, v in dropped.items()}
    files = spark.createDataFrame([(p,) for p in paths], "_source_file string")
    kept = read_slice(spark, feed.raw, ds).join(F.broadcast(files), "_source_file", "left_anti")
    replace_slice(kept.unionByName(new), feed.raw, feed.raw_schema, ds)
    check_counts(spark, feed, ds, expected)
    record_processed(spark, feed.domain, todo, expected, ds)
    summary[f"new_{feed.unit}"] = sum(expected.values())
    log.info("%s ds=%s: %s", feed.raw, ds, summary)
    return summary


def check_counts(spark, feed: LandedFeed, ds: str, expected: Mapping[str, int]) -> None:
    """Fail unless raw slice ``ds`` holds exactly records 1..n of each file, n being the file's own count."""
    from pyspark.sql import functions as F

    files = spark.createDataFrame([(p,) for p in expected], "_source_file string")
    written = {
        r["_source_file"]: (r["n"], r["last"])
        for r in read_slice(spark, feed.raw, ds)
        .join(F.broadcast(files), "_source_file", "left_semi")
        .groupBy("_source_file")
        .agg(F.count("*").alias("n"), F.max(feed.position).alias("last"))
        .collect()
    }
    wrong = {
        p: (written.get(p, (0, None)), n) for p, n in expected.items() if written.get(p, (0, None)) != (n, n or None)
    }
    if wrong:
        path, ((count, last), n) = next(iter(wrong.items()))
        raise LandingMismatch(
            f"raw {feed.unit} != file {feed.unit} for {len(wrong)} files, e.g. {path}: {count} (last {last}) of {n}"
        )
