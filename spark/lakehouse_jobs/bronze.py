"""The bronze engine: classify a raw slice, account for each raw record, gate on rejects, publish.

A domain declares its bronze ``Layer`` (raw table, targets, a pure parse that labels each raw row ``header``,
``record`` (valid) or ``reject`` with a reason, the de-duplication key and the order that decides "first") and calls
``run_layer``. Validation comes first: a ``duplicate`` is a valid record whose key an earlier *valid* record (or the
history of earlier slices) already holds, never a repeat of a rejected one. The engine keeps the first valid record
of each key with one aggregation (``min_by`` over the order), not a window over the slice, and persists nothing.

``publish_parts`` then checks raw = headers + valid + rejects, writes the rejects (always, for inspection), refuses
the slice when the reject ratio passes the run's threshold, writes the accepted records, takes accepted and
duplicate counts from what was written, and upserts the run summary into ``gold.pipeline_runs`` last.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from lakehouse_jobs import ops
from lakehouse_jobs.iceberg import qualified, read_slice, replace_slice

log = logging.getLogger(__name__)

HEADER, RECORD, DUPLICATE, REJECT = "header", "record", "duplicate", "reject"


@dataclass(frozen=True)
class Reconciliation:
    """How the raw records of a slice were accounted for (``headers``: file header lines, which are not data)."""

    raw: int
    accepted: int
    duplicates: int
    rejects: int
    headers: int = 0
    table: str = ""  # the source table, for a domain of several

    @property
    def records(self) -> int:
        """Raw records that are data (everything but the file headers)."""
        return self.raw - self.headers

    @property
    def reject_ratio(self) -> float:
        return self.rejects / self.records if self.records else 0.0

    def check(self) -> None:
        """Fail unless raw = headers + accepted + duplicates + rejects."""
        total = self.headers + self.accepted + self.duplicates + self.rejects
        if total != self.raw or self.duplicates < 0:
            raise AssertionError(f"records lost in bronze: raw {self.raw} != {total} accounted for ({self})")

    @classmethod
    def of(cls, classified: DataFrame, raw_count: int) -> Reconciliation:
        """Count the kinds of ``classified`` (one row per raw record, with its ``kind``)."""
        counts = kind_counts(classified)
        return cls(
            raw=raw_count,
            accepted=counts.get(RECORD, 0),
            duplicates=counts.get(DUPLICATE, 0),
            rejects=counts.get(REJECT, 0),
            headers=counts.get(HEADER, 0),
        )


class RejectRatioExceeded(RuntimeError):
    """Too many refused records for the slice to be published."""


@dataclass(frozen=True)
class Target:
    """An Iceberg table a bronze job replaces the slice of, and its schema."""

    table: str
    schema: object  # pyspark.sql.types.StructType


def _as_is(rows: DataFrame) -> DataFrame:
    return rows  # the target's schema selects the columns when the slice is written


@dataclass(frozen=True)
class Layer:
    """What a domain's bronze layer is made of; ``run_layer`` does the rest.

    Attributes:
        domain: the domain, for ``gold.pipeline_runs``.
        raw: the raw table (an empty slice when the table does not exist yet).
        bronze: the accepted records' table.
        rejects: the refused records' table.
        parse: raw rows -> the same rows with ``kind`` (``HEADER``, ``RECORD`` for every valid row, ``REJECT``),
            ``reason`` (for rejects) and the typed columns; a pure DataFrame function.
        key: the columns (of ``parse``'s output) that identify a record.
        order: SQL expressions, ascending, that decide which valid record of a key is the first.
        to_bronze: valid parsed rows -> bronze rows (by default the rows as they are).
        to_rejects: rejected parsed rows -> reject rows (by default the rows as they are).
        unit: what a record is, for the messages (lines, rows, users).
        history: ``(spark, ds)`` -> the keys accepted in earlier slices that still stand (their repeats are
            duplicates), or ``None``; it may first tidy older slices (a file read again replaces its rows).
    """

    domain: str
    raw: Target
    bronze: Target
    rejects: Target
    parse: Callable[[DataFrame], DataFrame]
    key: tuple[str, ...]
    order: tuple[str, ...]
    to_bronze: Callable[[DataFrame], DataFrame] = _as_is
    to_rejects: Callable[[DataFrame], DataFrame] = _as_is
    unit: str = "records"
    history: Callable[..., DataFrame | None] | None = None

    def classify(self, raw: DataFrame, history: DataFrame | None = None) -> DataFrame:
        """Every raw row with its ``kind`` (header, record, duplicate, reject): the engine's decision, row by row."""
        return label(self.parse(raw), self.key, self.order, history)

    def accepted(self, classified: DataFrame) -> DataFrame:
        """The bronze rows of a classified slice."""
        return self.to_bronze(classified.where(F.col("kind") == RECORD))

    def rejected(self, classified: DataFrame) -> DataFrame:
        """The reject rows of a classified (or parsed) slice."""
        return self.to_rejects(classified.where(F.col("kind") == REJECT))

    def records(self, parsed: DataFrame, history: DataFrame | None = None) -> DataFrame:
        """The bronze rows of a parsed slice, de-duplicated by aggregation (what ``run_layer`` writes)."""
        return self.to_bronze(first_records(parsed, self.key, self.order, history))


def _order(order: Sequence[str]):
    return F.struct(*[F.expr(o).alias(f"_o{i}") for i, o in enumerate(order)])


def first_records(
    parsed: DataFrame, key: Sequence[str], order: Sequence[str], history: DataFrame | None = None
) -> DataFrame:
    """The first valid row of each key (smallest ``order``), leaving out keys in ``history``.

    One aggregation (``min_by``) over the valid rows; rejected rows never compete, so a valid record is never a
    duplicate of a refused one. Rows tied on ``order`` are the same record delivered twice: either may be kept.
    """
    valid = parsed.where(F.col("kind") == RECORD)
    if history is not None:
        valid = valid.join(history.select(*key).distinct(), list(key), "left_anti")
    row = F.struct(*[F.col(f"`{c}`") for c in valid.columns])
    return valid.groupBy(*key).agg(F.min_by(row, _order(order)).alias("_first")).select("_first.*")


def label(parsed: DataFrame, key: Sequence[str], order: Sequence[str], history: DataFrame | None = None) -> DataFrame:
    """``parsed`` with each valid row's ``kind`` settled: the first of its key a ``RECORD``, the others ``DUPLICATE``.

    The row-by-row view of ``first_records`` for tests and inspection; it numbers rows with a window, which
    ``run_layer`` never does (it writes ``first_records``). Keys in ``history`` are duplicates.
    """
    valid = F.col("kind") == RECORD
    if history is not None:
        seen = history.select(*key).distinct().withColumn("_seen", F.lit(True))
        parsed = parsed.join(seen, list(key), "left")
    else:
        parsed = parsed.withColumn("_seen", F.lit(None).cast("boolean"))
    first = Window.partitionBy(*key, valid).orderBy(*[F.expr(o).asc() for o in order])
    repeat = valid & (F.col("_seen").isNotNull() | (F.row_number().over(first) > 1))
    return parsed.withColumn("kind", F.when(repeat, DUPLICATE).otherwise(F.col("kind"))).drop("_seen")


def kind_counts(classified: DataFrame) -> dict[str, int]:
    """Rows per ``kind``, in one pass."""
    return {r["kind"]: r["n"] for r in classified.groupBy("kind").agg(F.count("*").alias("n")).collect()}


def read_raw(spark, layer: Layer, ds: str) -> DataFrame:
    """The raw slice of ``layer`` (empty when nothing was ever loaded)."""
    if not spark.catalog.tableExists(qualified(layer.raw.table)):
        return spark.createDataFrame([], layer.raw.schema)
    return read_slice(spark, layer.raw.table, ds)


def run_layer(spark, layer: Layer, ds: str, *, max_reject_ratio: float) -> Reconciliation:
    """Run a domain's bronze layer for slice ``ds``: classify, reconcile, gate, publish, check what was written."""
    raw = read_raw(spark, layer, ds)
    history = layer.history(spark, ds) if layer.history else None
    parsed = layer.parse(raw)
    return publish_slice(
        parsed,
        raw.count(),
        domain=layer.domain,
        ds=ds,
        accepted=layer.records(parsed, history),
        rejected=layer.rejected(parsed),
        bronze=layer.bronze,
        rejects=layer.rejects,
        max_reject_ratio=max_reject_ratio,
        unit=layer.unit,
    )


@dataclass(frozen=True)
class Part:
    """One table of a slice to publish: its classified rows, raw count, accepted rows, rejects and target."""

    classified: DataFrame
    raw_count: int
    accepted: DataFrame
    rejected: DataFrame
    bronze: Target
    name: str = ""


def publish_slice(
    classified: DataFrame,
    raw_count: int,
    *,
    domain: str,
    ds: str,
    accepted: DataFrame,
    rejected: DataFrame,
    bronze: Target,
    rejects: Target,
    max_reject_ratio: float,
    unit: str = "records",
) -> Reconciliation:
    """``publish_parts`` for a domain of one bronze table; see there."""
    part = Part(classified, raw_count, accepted, rejected, bronze)
    (recon,) = publish_parts(
        [part], domain=domain, ds=ds, rejects=rejects, max_reject_ratio=max_reject_ratio, unit=unit
    )
    return recon


def _valid_counts(part: Part) -> tuple[int, int, int]:
    """(headers, valid, rejects) of a part, from one pass over its classified rows; fails on an unaccounted record."""
    counts = kind_counts(part.classified)
    headers, rejects = counts.get(HEADER, 0), counts.get(REJECT, 0)
    valid = counts.get(RECORD, 0) + counts.get(DUPLICATE, 0)
    if headers + valid + rejects != part.raw_count:
        raise AssertionError(
            f"records lost in bronze: raw {part.raw_count} != {headers + valid + rejects} accounted for "
            f"({part.name or part.bronze.table}: {counts})"
        )
    return headers, valid, rejects


def publish_parts(
    parts: Sequence[Part], *, domain: str, ds: str, rejects: Target, max_reject_ratio: float, unit: str = "records"
) -> list[Reconciliation]:
    """Account for the slice's raw records, then write rejects, accepted records (unless refused) and run summary.

    Args:
        parts: the slice's tables (one for most domains); ``classified`` holds one row per raw record with its
            ``kind`` (a valid row is ``record`` or ``duplicate``), ``accepted`` the rows bronze keeps.
        domain: the domain, for ``gold.pipeline_runs`` (one summary over all parts).
        ds: the slice.
        rejects: the rejects table and schema, shared by the parts.
        max_reject_ratio: refuse the slice when a part's share of rejected data records is above it.
        unit: what a record is, for the messages.

    Raises:
        AssertionError: a record is unaccounted for (before anything is written), or the tables do not hold what
            was classified.
        RejectRatioExceeded: too many rejects; the rejects and the run summary (``rejected``) are written,
            bronze is not.
    """
    spark = parts[0].classified.sparkSession
    counted = [_valid_counts(p) for p in parts]
    all_rejects = parts[0].rejected
    for part in parts[1:]:
        all_rejects = all_rejects.unionByName(part.rejected)
    replace_slice(all_rejects, rejects.table, rejects.schema, ds)
    written_rejects = read_slice(spark, rejects.table, ds).count()
    if written_rejects != sum(c[2] for c in counted):
        raise AssertionError(f"{rejects.table} ds={ds}: wrote {written_rejects} rows, classified {counted}")
    ratios = [Reconciliation(p.raw_count, 0, 0, r, h).reject_ratio for p, (h, _, r) in zip(parts, counted, strict=True)]
    worst = ratios.index(max(ratios))
    refused = ratios[worst] > max_reject_ratio
    written = [p.accepted.count() for p in parts] if refused else [_write(p, ds) for p in parts]
    recons = [
        Reconciliation(p.raw_count, n, valid - n, r, h, p.name)
        for p, n, (h, valid, r) in zip(parts, written, counted, strict=True)
    ]
    for recon in recons:
        log.info("%s ds=%s reconciliation: %s (reject ratio %.4f)", domain, ds, recon, recon.reject_ratio)
        recon.check()
    ops.publish_run(
        spark,
        domain,
        ds,
        raw=sum(r.records for r in recons),
        accepted=sum(r.accepted for r in recons),
        duplicates=sum(r.duplicates for r in recons),
        rejects=sum(r.rejects for r in recons),
        status="rejected" if refused else "published",
    )
    if refused:
        bad = recons[worst]
        raise RejectRatioExceeded(
            f"{bad.rejects} of {bad.records} {bad.table + ' ' if bad.table else ''}{unit} rejected "
            f"({bad.reject_ratio:.2%}) > max_reject_ratio {max_reject_ratio:.2%}; see {rejects.table} ds={ds}"
        )
    return recons


def _write(part: Part, ds: str) -> int:
    """Replace the part's bronze slice; returns the rows the table now holds for it."""
    replace_slice(part.accepted, part.bronze.table, part.bronze.schema, ds)
    return read_slice(part.classified.sparkSession, part.bronze.table, ds).count()
