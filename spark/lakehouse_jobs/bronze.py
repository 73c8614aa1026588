"""What every single-table bronze job shares: accounting for each raw record, the reject-ratio gate, publishing.

A bronze job classifies each raw record of its slice into one of four kinds (a ``kind`` column): a file ``header``
line, the ``record`` bronze keeps, a ``duplicate`` of a record, or a ``reject`` with a reason. ``publish_slice`` then
checks raw = headers + accepted + duplicates + rejects, writes the rejects (always, for inspection), upserts the run
summary into ``gold.pipeline_runs``, refuses the slice when the reject ratio passes the run's threshold, writes the
accepted records, and checks both tables hold what was classified.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse_jobs import ops
from lakehouse_jobs.iceberg import read_slice, replace_slice

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
        if total != self.raw:
            raise AssertionError(f"records lost in bronze: raw {self.raw} != {total} accounted for ({self})")

    @classmethod
    def of(cls, classified: DataFrame, raw_count: int) -> Reconciliation:
        """Count the kinds of ``classified`` (one row per raw record, with its ``kind``)."""
        counts = {row["kind"]: row["n"] for row in classified.groupBy("kind").agg(F.count("*").alias("n")).collect()}
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
    """Account for the slice's raw records, then write rejects, run summary and (unless refused) accepted records.

    Args:
        classified: one row per raw record of the slice, with its ``kind``; persist it first, it is read often.
        raw_count: the raw records of the slice, counted on the raw table.
        domain: the domain, for ``gold.pipeline_runs``.
        ds: the slice.
        accepted: the bronze rows (derived from ``classified``).
        rejected: the reject rows, each with its reason (derived from ``classified``).
        bronze: the bronze table and schema.
        rejects: the rejects table and schema.
        max_reject_ratio: refuse the slice above this share of rejected data records.
        unit: what a record is, for the messages (lines, rows, users).

    Raises:
        AssertionError: a record is unaccounted for, or the tables do not hold what was classified.
        RejectRatioExceeded: too many rejects; the rejects and the run summary (``rejected``) are written,
            bronze is not.
    """
    spark = classified.sparkSession
    recon = Reconciliation.of(classified, raw_count)
    recon.check()
    log.info("%s ds=%s reconciliation: %s (reject ratio %.4f)", bronze.table, ds, recon, recon.reject_ratio)
    replace_slice(rejected, rejects.table, rejects.schema, ds)
    refused = recon.reject_ratio > max_reject_ratio
    ops.publish_run(
        spark,
        domain,
        ds,
        raw=recon.records,
        accepted=recon.accepted,
        duplicates=recon.duplicates,
        rejects=recon.rejects,
        status="rejected" if refused else "published",
    )
    if refused:
        raise RejectRatioExceeded(
            f"{recon.rejects} of {recon.records} {unit} rejected ({recon.reject_ratio:.2%}) "
            f"> max_reject_ratio {max_reject_ratio:.2%}; see {rejects.table} ds={ds}"
        )
    replace_slice(accepted, bronze.table, bronze.schema, ds)
    written = (read_slice(spark, bronze.table, ds).count(), read_slice(spark, rejects.table, ds).count())
    if written != (recon.accepted, recon.rejects):
        raise AssertionError(f"written (accepted, rejects) {written} != classified {(recon.accepted, recon.rejects)}")
    return recon
