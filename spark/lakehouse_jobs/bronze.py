"""The bronze engine: classify a raw slice, account for each raw record, gate on rejects, publish.

A domain declares its bronze ``Layer`` (raw table, targets, a pure parse that labels each raw row ``header``,
``record`` (valid) or ``reject`` with a reason, the de-duplication key and the order that decides "first") and calls
``run_layer``. Validation comes first: a ``duplicate`` is a valid record whose key an earlier *valid* record (or the
history of earlier slices) already holds, never a repeat of a rejected one. The engine keeps the first valid record
of each key with one aggregation (``min_by`` over the order), not a window over the slice, and persists nothing.

``publish_parts`` then checks raw = headers + valid + rejects, and publishes by write-audit-publish
(lakehouse_jobs.wap, whose docstring says what a reader sees at every moment): rejects and accepted records go to the
run's branch ``wap_<domain>_bronze_<ds>``, the branch is audited (reconciliation with the accepted and duplicate
counts taken from what was written, rows written = rows classified, the bronze key unique in the slice), ``main`` is
fast-forwarded (only the rejects when the reject ratio refuses the slice, nothing when the audit fails), and the run
summary is upserted into ``gold.pipeline_runs`` last, saying ``published``, ``rejected`` or ``failed_audit``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from pyspark.sql import DataFrame, Observation, Window
from pyspark.sql import functions as F

from lakehouse_jobs import ops, wap
from lakehouse_jobs.iceberg import qualified, read_slice, replace_slice
from lakehouse_jobs.landed_files import drop_superseded
from lakehouse_jobs.steps import step

log = logging.getLogger(__name__)

HEADER, RECORD, DUPLICATE, REJECT = "header", "record", "duplicate", "reject"
FAILED_AUDIT = "failed_audit"


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
        history: ``(spark, ds, superseded)`` -> the keys accepted in earlier slices that still stand, without the
            rows of the ``superseded`` files (their repeats are duplicates), or ``None``.
        superseded: ``(spark, ds)`` -> the files read again by run ``ds`` whose rows in older slices the run takes
            out (on its branch, published with its slice: a file read again replaces its rows), or ``None``.
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
    superseded: Callable[..., Sequence[str]] | None = None

    def bronze_key(self) -> tuple[str, ...]:
        """The key as bronze columns: ``_t_<c>`` (a typed column of the parse) is ``c``; empty when not in bronze."""
        names = tuple(k.removeprefix("_t_") for k in self.key)
        return names if set(names) <= set(self.bronze.schema.fieldNames()) else ()

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
    superseded = layer.superseded(spark, ds) if layer.superseded else ()
    history = layer.history(spark, ds, superseded) if layer.history else None
    return publish_slice(
        layer.parse(raw),
        raw.count(),  # from Iceberg's metadata: no pass over the data
        domain=layer.domain,
        ds=ds,
        accepted=lambda parsed: layer.records(parsed, history),
        rejected=layer.rejected,
        bronze=layer.bronze,
        rejects=layer.rejects,
        max_reject_ratio=max_reject_ratio,
        unit=layer.unit,
        key=layer.bronze_key(),
        superseded=superseded,
    )


@dataclass(frozen=True)
class Part:
    """One table of a slice to publish.

    Attributes:
        classified: one row per raw record with its ``kind`` (a valid row is ``record`` or ``duplicate``).
        raw_count: the raw records of the slice, counted on their own (the classification must account for each).
        accepted: classified rows -> the rows bronze keeps (de-duplicated).
        rejected: classified rows -> the reject rows.
        bronze: the bronze table.
        name: the source table, for a domain of several.
        key: the bronze columns that identify a row, audited unique in the slice.

    ``accepted`` and ``rejected`` are functions of the classified rows because the engine counts the kinds while
    the rejects are written (an ``Observation`` on the same pass), rather than in a pass of its own.
    """

    classified: DataFrame
    raw_count: int
    accepted: Callable[[DataFrame], DataFrame]
    rejected: Callable[[DataFrame], DataFrame]
    bronze: Target
    name: str = ""
    key: tuple[str, ...] = ()


def publish_slice(
    classified: DataFrame,
    raw_count: int,
    *,
    domain: str,
    ds: str,
    accepted: Callable[[DataFrame], DataFrame],
    rejected: Callable[[DataFrame], DataFrame],
    bronze: Target,
    rejects: Target,
    max_reject_ratio: float,
    unit: str = "records",
    key: Sequence[str] = (),
    superseded: Sequence[str] = (),
) -> Reconciliation:
    """``publish_parts`` for a domain of one bronze table (``key``: its bronze key); see there."""
    part = Part(classified, raw_count, accepted, rejected, bronze, key=tuple(key))
    (recon,) = publish_parts(
        [part],
        domain=domain,
        ds=ds,
        rejects=rejects,
        max_reject_ratio=max_reject_ratio,
        unit=unit,
        superseded=superseded,
    )
    return recon


KINDS = (HEADER, RECORD, DUPLICATE, REJECT)
# AQE replaces a stage whose result is empty by an empty relation, and the Observation on it is dropped with it: its
# metrics never arrive and ``Observation.get`` waits for ever. Off (for the session's SQL) while an observed write runs.
_EXCLUDED_RULES = "spark.sql.adaptive.optimizer.excludedRules"
_EMPTY_RELATION_RULE = "org.apache.spark.sql.execution.adaptive.AQEPropagateEmptyRelation"


@contextmanager
def _observable(spark) -> Iterator[None]:
    """Run the block with AQE's empty-relation propagation off, so that every ``Observation`` in it is reported."""
    previous = spark.conf.get(_EXCLUDED_RULES, None)
    spark.conf.set(_EXCLUDED_RULES, f"{previous},{_EMPTY_RELATION_RULE}" if previous else _EMPTY_RELATION_RULE)
    try:
        yield
    finally:
        if previous:
            spark.conf.set(_EXCLUDED_RULES, previous)
        else:
            spark.conf.unset(_EXCLUDED_RULES)


def _observed(part: Part, index: int) -> tuple[DataFrame, Observation]:
    """The part's classified rows, counting each kind in whichever pass reads them first."""
    observation = Observation(f"kinds_{index}")
    metrics = [F.count(F.when(F.col("kind") == kind, 1)).alias(kind) for kind in KINDS]
    return part.classified.observe(observation, *metrics), observation


OBSERVATION_WAIT_S = 60.0


def _metrics(observation: Observation, recount: Callable[[], dict[str, int]], what: str) -> dict[str, int]:
    """The metrics of ``observation`` once its write has run, or ``recount()`` if they do not arrive in time.

    They arrive through Spark's listener bus just after the action; ``Observation.get`` would wait for ever if a plan
    rewrite dropped the observation (see ``_observable``), so the wait is bounded and a pass of its own counts instead.
    """
    arrived: dict[str, dict] = {}
    waiter = threading.Thread(target=lambda: arrived.setdefault("metrics", observation.get), daemon=True)
    waiter.start()
    waiter.join(OBSERVATION_WAIT_S)
    if "metrics" in arrived:
        return arrived["metrics"]
    log.warning("%s: no observed counts after %.0f s; counting in a pass of its own", what, OBSERVATION_WAIT_S)
    return recount()


def _valid_counts(part: Part, counts: dict[str, int]) -> tuple[int, int, int]:
    """(headers, valid, rejects) of a part from its kind counts; fails on an unaccounted record."""
    headers, rejects = counts.get(HEADER, 0), counts.get(REJECT, 0)
    valid = counts.get(RECORD, 0) + counts.get(DUPLICATE, 0)
    if headers + valid + rejects != part.raw_count:
        raise AssertionError(
            f"records lost in bronze: raw {part.raw_count} != {headers + valid + rejects} accounted for "
            f"({part.name or part.bronze.table}: {counts})"
        )
    return headers, valid, rejects


def publish_parts(
    parts: Sequence[Part],
    *,
    domain: str,
    ds: str,
    rejects: Target,
    max_reject_ratio: float,
    unit: str = "records",
    superseded: Sequence[str] = (),
) -> list[Reconciliation]:
    """Account for the slice's raw records, write its tables to the run's branch, audit it, publish, sum it up.

    Write-audit-publish (lakehouse_jobs.wap): the rejects and each part's accepted records are written to the
    branch ``wap_<domain>_bronze_<ds>`` of their tables; the branch is audited (raw = headers + accepted +
    duplicates + rejects, the rows written = the rows classified, each part's key unique in its slice); then
    ``main`` is fast-forwarded (the rejects only when the reject ratio refuses the slice) and the run summary is
    upserted into ``gold.pipeline_runs`` last, with the status ``published``, ``rejected`` or ``failed_audit``.

    Each part's classified rows are read twice, once per write: the rejects' write also counts every kind (an
    ``Observation``), the bronze write counts the rows it keeps; the audit's counts are Iceberg metadata.

    Args:
        parts: the slice's tables (one for most domains); see ``Part``.
        domain: the domain, for ``gold.pipeline_runs`` (one summary over all parts).
        ds: the slice.
        rejects: the rejects table and schema, shared by the parts.
        max_reject_ratio: refuse the slice when a part's share of rejected data records is above it.
        unit: what a record is, for the messages.
        superseded: files read again: their rows leave every older slice of the rejects and bronze tables, on the
            branch, and are published with the slice (the rejects' with the rejects when the gate refuses bronze).

    Raises:
        AssertionError: a record is unaccounted for in the classification (found while the rejects are written to
            the branch, before anything is published).
        AuditFailed: the branch does not hold what was classified; ``main`` is unchanged, the branch kept.
        RejectRatioExceeded: too many rejects; the rejects and the run summary (``rejected``) are published,
            bronze is not (its branch is kept for inspection).
    """
    spark = parts[0].classified.sparkSession
    branch = wap.branch_name(domain, "bronze", ds)
    observed = [_observed(part, i) for i, part in enumerate(parts)]
    all_rejects = None
    for part, (classified, _) in zip(parts, observed, strict=True):
        refused = part.rejected(classified)
        all_rejects = refused if all_rejects is None else all_rejects.unionByName(refused)
    with step(spark, f"{domain} bronze: write rejects"), _observable(spark):  # the pass that also counts every kind
        wap.start_branch(spark, rejects.table, rejects.schema, branch)
        replace_slice(all_rejects, rejects.table, rejects.schema, ds, branch=branch)
    written = {rejects.table: [ds, *_drop_superseded(spark, rejects, superseded, ds, branch)]}
    counted = [
        _valid_counts(part, _metrics(obs, lambda p=part: kind_counts(p.classified), f"{domain} bronze kinds"))
        for part, (_, obs) in zip(parts, observed, strict=True)
    ]
    accepted_counts = []
    for part in parts:
        counter = Observation(f"accepted_{len(accepted_counts)}")
        kept = part.accepted(part.classified).observe(counter, F.count(F.lit(1)).alias("rows"))
        with step(spark, f"{domain} bronze: write {part.bronze.table}"), _observable(spark):
            wap.start_branch(spark, part.bronze.table, part.bronze.schema, branch)
            replace_slice(kept, part.bronze.table, part.bronze.schema, ds, branch=branch)
        written[part.bronze.table] = [ds, *_drop_superseded(spark, part.bronze, superseded, ds, branch)]
        recount = lambda p=part: {"rows": p.accepted(p.classified).count()}  # noqa: E731
        accepted_counts.append(_metrics(counter, recount, f"{domain} bronze {part.bronze.table}")["rows"])
    with step(spark, f"{domain} bronze: audit"):
        recons, problems = _audit(parts, counted, accepted_counts, rejects, ds, branch)
    totals = {
        "raw": sum(r.records for r in recons),
        "accepted": sum(r.accepted for r in recons),
        "duplicates": sum(r.duplicates for r in recons),
        "rejects": sum(r.rejects for r in recons),
    }
    for recon in recons:
        log.info("%s ds=%s reconciliation: %s (reject ratio %.4f)", domain, ds, recon, recon.reject_ratio)
    if problems:
        ops.publish_run(spark, domain, ds, **totals, status=FAILED_AUDIT)
        tables = ", ".join([rejects.table, *(p.bronze.table for p in parts)])
        raise wap.AuditFailed(
            f"{domain} bronze ds={ds}: audit of branch {branch} failed, main left as it was ({tables}): "
            + "; ".join(problems)
        )
    worst = max(recons, key=lambda r: r.reject_ratio)
    if worst.reject_ratio > max_reject_ratio:
        with step(spark, f"{domain} bronze: publish"):
            wap.publish(spark, {rejects.table: written[rejects.table]}, branch, ds)
        ops.publish_run(spark, domain, ds, **totals, status="rejected")
        raise RejectRatioExceeded(
            f"{worst.rejects} of {worst.records} {worst.table + ' ' if worst.table else ''}{unit} rejected "
            f"({worst.reject_ratio:.2%}) > max_reject_ratio {max_reject_ratio:.2%}; see {rejects.table} ds={ds} "
            f"(the refused bronze slice is on branch {branch})"
        )
    with step(spark, f"{domain} bronze: publish"):
        wap.publish(spark, {**{p.bronze.table: written[p.bronze.table] for p in parts}, **written}, branch, ds)
    with step(spark, f"{domain} bronze: run summary"):
        ops.publish_run(spark, domain, ds, **totals, status="published")
    return recons


def _drop_superseded(spark, target: Target, files: Sequence[str], ds: str, branch: str) -> list[str]:
    """Take the rows of ``files`` out of every older slice of ``target`` on ``branch``; returns the slices changed."""
    if not files:
        return []
    return [str(day) for day in drop_superseded(spark, target.table, target.schema, files, ds, branch=branch)]


def _audit(
    parts, counted, accepted_counts, rejects: Target, ds: str, branch: str
) -> tuple[list[Reconciliation], list[str]]:
    """Reconcile each part against what its branch holds; returns the reconciliations and the problems found.

    The slices' row counts come from the branch's Iceberg metadata (what the commits recorded); only the key check
    reads data, and only the key columns.
    """
    spark = parts[0].classified.sparkSession
    problems = []
    written_rejects = read_slice(spark, rejects.table, ds, branch=branch).count()
    if written_rejects != sum(c[2] for c in counted):
        problems.append(f"{rejects.table} holds {written_rejects} rows, {sum(c[2] for c in counted)} were refused")
    recons = []
    for part, (headers, valid, refused), accepted in zip(parts, counted, accepted_counts, strict=True):
        written = read_slice(spark, part.bronze.table, ds, branch=branch)
        n = written.count()
        recon = Reconciliation(part.raw_count, n, valid - n, refused, headers, part.name)
        recons.append(recon)
        label = part.name or part.bronze.table
        try:
            recon.check()
        except AssertionError as exc:
            problems.append(str(exc))
        if n != accepted:
            problems.append(f"{part.bronze.table} holds {n} rows, {accepted} were accepted ({label})")
        if part.key:
            repeated = written.groupBy(*part.key).count().where(F.col("count") > 1).count()
            if repeated:
                problems.append(f"{part.bronze.table}: {repeated} keys ({', '.join(part.key)}) repeated ({label})")
    return recons, problems
