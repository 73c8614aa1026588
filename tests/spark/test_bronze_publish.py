"""publish_slice: the reconciliation, the reject-ratio gate and what each outcome leaves in the tables."""

from __future__ import annotations

import datetime as dt

import pytest

DS = "2026-01-05"  # a slice no other test writes


@pytest.fixture()
def tables(throwaway_bronze):
    """Throwaway bronze/rejects tables and a domain name of their own (so gold.pipeline_runs rows are ours)."""
    return throwaway_bronze("publish_", "publish_")


def classified_rows(spark, kinds: list[tuple[str, str]]):
    """One classified row per (kind, value); rejects get the reason ``bad_value``."""
    from pyspark.sql import functions as F

    rows = [(dt.date.fromisoformat(DS), kind, value) for kind, value in kinds]
    df = spark.createDataFrame(rows, "ds date, kind string, value string")
    return df.withColumn("reason", F.when(F.col("kind") == "reject", F.lit("bad_value")))


def publish(spark, classified, raw_count, tables, max_reject_ratio):
    from pyspark.sql import functions as F

    from lakehouse_jobs.bronze import publish_slice

    bronze, rejects, domain = tables
    return publish_slice(
        classified,
        raw_count,
        domain=domain,
        ds=DS,
        accepted=lambda rows: rows.where(F.col("kind") == "record").select("ds", "value"),
        rejected=lambda rows: rows.where(F.col("kind") == "reject").select("ds", "reason", "value"),
        bronze=bronze,
        rejects=rejects,
        max_reject_ratio=max_reject_ratio,
    )


def slice_values(spark, table: str) -> list:
    return sorted(r["value"] for r in spark.table(f"lake.{table}").where(f"ds = DATE'{DS}'").collect())


def run_summary(spark, domain: str) -> list[tuple]:
    rows = spark.table("lake.gold.pipeline_runs").where(f"domain = '{domain}'").collect()
    return [(r["raw_rows"], r["accepted"], r["duplicates"], r["rejects"], r["status"]) for r in rows]


KINDS = [("header", "h"), ("record", "a"), ("record", "b"), ("duplicate", "a"), ("reject", "x")]


def test_a_slice_within_the_gate_is_published_with_its_run_summary(spark, tables):
    from lakehouse_jobs.bronze import Reconciliation

    recon = publish(spark, classified_rows(spark, KINDS), len(KINDS), tables, max_reject_ratio=0.5)
    assert recon == Reconciliation(raw=5, accepted=2, duplicates=1, rejects=1, headers=1)
    bronze, rejects, domain = tables
    assert slice_values(spark, bronze.table) == ["a", "b"]
    assert slice_values(spark, rejects.table) == ["x"]
    assert run_summary(spark, domain) == [(4, 2, 1, 1, "published")]  # the header is not a record


def test_above_the_gate_rejects_and_summary_are_written_but_bronze_is_not(spark, tables):
    from lakehouse_jobs.bronze import RejectRatioExceeded

    bronze, rejects, domain = tables
    publish(spark, classified_rows(spark, [("record", "old")]), 1, tables, max_reject_ratio=0.5)
    kinds = [("record", "new"), ("reject", "x"), ("reject", "y")]
    with pytest.raises(RejectRatioExceeded, match=r"2 of 3 records rejected \(66\.67%\) > max_reject_ratio 50\.00%"):
        publish(spark, classified_rows(spark, kinds), 3, tables, max_reject_ratio=0.5)
    assert slice_values(spark, bronze.table) == ["old"]  # the previous slice stays published
    assert slice_values(spark, rejects.table) == ["x", "y"]  # the refused rows are there to inspect
    assert run_summary(spark, domain) == [(3, 1, 0, 2, "rejected")]


def test_a_raw_record_unaccounted_for_fails_before_anything_is_published(spark, tables):
    from lakehouse_jobs import wap

    bronze, rejects, domain = tables
    with pytest.raises(AssertionError, match="records lost in bronze: raw 6 != 5"):
        publish(spark, classified_rows(spark, KINDS), 6, tables, max_reject_ratio=0.5)
    assert not spark.catalog.tableExists(f"lake.{bronze.table}")
    # The kinds are counted in the pass that writes the rejects to the run's branch: main of the table has nothing.
    refs = spark.sql(f"SELECT name FROM lake.{rejects.table}.refs").collect()
    assert [r["name"] for r in refs] == [wap.branch_name(domain, "bronze", DS)]
    if spark.catalog.tableExists("lake.gold.pipeline_runs"):
        assert run_summary(spark, domain) == []
