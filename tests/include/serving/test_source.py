"""read_slice on a gold Iceberg table written by Spark, and that slice through both loaders."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from include.serving.postgres import load_slice_postgres
from include.serving.source import read_slice
from include.serving.tidb import load_slice_tidb

pytestmark = [pytest.mark.spark, pytest.mark.integration]

UTC = dt.UTC
DS_A = dt.date(2026, 11, 20)
DS_B = dt.date(2026, 11, 21)
ROWS = [
    (DS_A, dt.datetime(2026, 11, 20, 0, 0, tzinfo=UTC), "en", 12, Decimal("1.50")),
    (DS_A, dt.datetime(2026, 11, 20, 1, 0, tzinfo=UTC), "fr", 3, None),
    (DS_A, dt.datetime(2026, 11, 20, 23, 0, tzinfo=UTC), 'it "quoted"\tand\nnewline', 1, Decimal("-0.01")),
    (DS_A, dt.datetime(2026, 11, 20, 5, 0, tzinfo=UTC), None, 7, Decimal("99.99")),
    (DS_A, dt.datetime(2026, 11, 20, 6, 30, 15, 250000, tzinfo=UTC), "und", 0, Decimal("0.00")),
    (DS_B, dt.datetime(2026, 11, 21, 0, 0, tzinfo=UTC), "en", 99, Decimal("2.00")),
]
COLUMNS = ["ds", "hour_start", "lang", "tweets", "amount"]


@pytest.fixture(scope="module")
def probe_table(spark):
    """gold.serving_probe, written by Spark as the gold jobs write (Iceberg, partitioned by ds)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    schema = T.StructType(
        [
            T.StructField("ds", T.DateType()),
            T.StructField("hour_start", T.TimestampType()),
            T.StructField("lang", T.StringType()),
            T.StructField("tweets", T.LongType()),
            T.StructField("amount", T.DecimalType(12, 2)),
        ]
    )
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lake.gold")
    frame = spark.createDataFrame(ROWS, schema)
    frame.writeTo("lake.gold.serving_probe").using("iceberg").partitionedBy(F.col("ds")).createOrReplace()
    snapshots = spark.sql("SELECT snapshot_id FROM lake.gold.serving_probe.snapshots ORDER BY committed_at DESC")
    return snapshots.first()["snapshot_id"]


def expected(ds: dt.date) -> list[dict]:
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in ROWS if row[0] == ds]
    return sorted(rows, key=lambda r: r["hour_start"])


def test_read_slice_streams_the_slice_at_the_current_snapshot(probe_table):
    found = read_slice("serving_probe", DS_A.isoformat(), batch_rows=2)

    assert found.snapshot_id == probe_table
    assert found.schema.names == COLUMNS
    batches = list(found.batches)
    assert all(batch.num_rows <= 2 for batch in batches)
    rows = [row for batch in batches for row in batch.to_pylist()]
    assert sorted(rows, key=lambda r: r["hour_start"]) == expected(DS_A)


def test_slice_from_iceberg_into_both_targets(probe_table, pg_connect, mysql_connect, mysql_database):
    for_pg = read_slice("gold.serving_probe", DS_A)
    result = load_slice_postgres(pg_connect(), "serving_probe", DS_A, for_pg.schema, for_pg.snapshot_id, for_pg.batches)
    for_tidb = read_slice("gold.serving_probe", DS_A)
    load_slice_tidb(
        mysql_connect(),
        "serving_probe",
        DS_A,
        for_tidb.schema,
        for_tidb.snapshot_id,
        for_tidb.batches,
        database=mysql_database,
    )

    assert (result.rows, result.snapshot_id) == (5, probe_table)
    with pg_connect().cursor() as cur:
        cur.execute("SELECT ds, hour_start, lang, tweets, amount FROM gold.serving_probe ORDER BY hour_start")
        assert [dict(zip(COLUMNS, row, strict=True)) for row in cur.fetchall()] == expected(DS_A)
    with mysql_connect().cursor() as cur:
        cur.execute(
            f"SELECT ds, hour_start, lang, tweets, amount FROM `{mysql_database}`.serving_probe ORDER BY hour_start"
        )
        served = [dict(zip(COLUMNS, row, strict=True)) for row in cur.fetchall()]
    assert [{**row, "hour_start": row["hour_start"].replace(tzinfo=UTC)} for row in served] == expected(DS_A)
