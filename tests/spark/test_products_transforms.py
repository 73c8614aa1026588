"""Products transformations: input rows beside the rows expected from them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

pytestmark = pytest.mark.spark

D1, D2 = "2026-11-19", "2026-11-20"
DAY1, DAY2 = dt.date(2026, 11, 19), dt.date(2026, 11, 20)
UTC = dt.timezone.utc  # noqa: UP017 - mirrors the job's Python 3.10 code
LOADED = dt.datetime(2026, 11, 20, 6, tzinfo=UTC)
F1 = "s3a://landing/products/products_a.parquet"
F2 = "s3a://landing/products/products_b.parquet"


def at(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, 18, hour, minute)


# --- which files a run reads ---------------------------------------------------------------------


def test_plan_files_reads_new_and_changed_files_only():
    from lakehouse_jobs.landed_files import LandedFile, ProcessedFile, latest_processed, plan_files

    seen = dt.datetime(2026, 11, 19, 1)
    processed = latest_processed(
        [
            {"path": "s3a://l/p/same.parquet", "etag": "e1", "size": 10, "ds": DAY1, "processed_at": seen},
            {"path": "s3a://l/p/etag.parquet", "etag": "e1", "size": 10, "ds": DAY1, "processed_at": seen},
            {"path": "s3a://l/p/size.parquet", "etag": "e1", "size": 10, "ds": DAY1, "processed_at": seen},
            # Content A, then B, then A again: the latest processed version (B) is what counts.
            {"path": "s3a://l/p/back.parquet", "etag": "A", "size": 10, "ds": DAY1, "processed_at": seen},
            {
                "path": "s3a://l/p/back.parquet",
                "etag": "B",
                "size": 10,
                "ds": DAY2,
                "processed_at": seen.replace(hour=5),
            },
        ]
    )
    assert processed["s3a://l/p/back.parquet"] == ProcessedFile(
        "s3a://l/p/back.parquet", "B", 10, DAY2, seen.replace(hour=5)
    )
    landed = [
        LandedFile("s3a://l/p/same.parquet", 10, "e1"),  # re-dropped unchanged: skipped
        LandedFile("s3a://l/p/etag.parquet", 10, "e2"),  # same size, new content
        LandedFile("s3a://l/p/size.parquet", 12, "e1"),
        LandedFile("s3a://l/p/back.parquet", 10, "A"),
        LandedFile("s3a://l/p/new.parquet", 5, "n"),
    ]
    assert [f.path.rsplit("/", 1)[1] for f in plan_files(landed, processed)] == [
        "back.parquet",
        "etag.parquet",
        "new.parquet",
        "size.parquet",
    ]


# --- raw ---------------------------------------------------------------------------------------


def test_to_raw_keeps_every_schema_version_as_strings(spark):
    from pyspark.sql import types as T

    from lakehouse_jobs.products import FIELDS, to_raw

    v1 = T.StructType(
        [
            T.StructField("product_id", T.StringType()),
            T.StructField("price", T.FloatType()),  # float32, as the early drops
            T.StructField("updated_at", T.TimestampType()),
            T.StructField("_source_file", T.StringType()),
            T.StructField("_row_number", T.LongType()),
        ]
    )
    v3 = T.StructType(
        [
            T.StructField("product_id", T.StringType()),
            T.StructField("price", T.DoubleType()),
            T.StructField("stock_quantity", T.LongType()),
            T.StructField("Ean", T.StringType()),  # case differs from raw's name
            T.StructField("origin", T.StringType()),  # unknown to raw
            T.StructField("dims", T.StructType([T.StructField("w", T.IntegerType())])),
            T.StructField("_source_file", T.StringType()),
            T.StructField("_row_number", T.LongType()),
        ]
    )
    stamp = dt.datetime(2026, 11, 18, 9, 30, 15, 250000, tzinfo=UTC)
    first = to_raw(spark.createDataFrame([("P1", 19.99, stamp, F1, 1)], v1), D2)
    second = to_raw(spark.createDataFrame([("P2", 5.1, 9_000_000_000, "400", "DE", (3,), F2, 7)], v3), D2)
    rows = [r.asDict() for r in first.unionByName(second).orderBy("_row_number").collect()]
    expected = [
        {"product_id": "P1", "price": "19.99", "updated_at": "2026-11-18 09:30:15.25", "_extra": None},
        {
            "product_id": "P2",
            "price": "5.1",
            "stock_quantity": "9000000000",
            "ean": "400",
            "_extra": {"dims": '{"w":3}', "origin": "DE"},
        },
    ]
    for row, want in zip(rows, expected, strict=True):
        assert {k: row[k] for k in want} == want
        assert all(row[k] is None for k in FIELDS if k not in want)
    assert [(r["ds"], r["_source_file"], r["_row_number"]) for r in rows] == [(DAY2, F1, 1), (DAY2, F2, 7)]


# --- bronze -------------------------------------------------------------------------------------

RAW_COLUMNS = ("product_id", "price", "currency", "updated_at", "color", "weight_kg", "stock_quantity")


def raw_frame(spark, rows: list[tuple], ds: str = D2, source: str = F1):
    """Raw rows from (product_id, price, currency, updated_at, color, weight_kg, stock_quantity) string tuples."""
    from lakehouse_jobs.products import FIELDS, RAW_SCHEMA

    records = []
    for n, values in enumerate(rows, start=1):
        given = dict(zip(RAW_COLUMNS, values, strict=True))
        fields = {f: given.get(f) for f in FIELDS}
        fields.update(name=f"Name {given['product_id']}", category="Toys", brand="Acme")
        records.append((dt.date.fromisoformat(ds), *fields.values(), None, source, n, LOADED))
    return spark.createDataFrame(records, RAW_SCHEMA)


def test_classify_every_kind_of_row(spark):
    from lakehouse_jobs.products import classify

    rows = [
        ("P1", "19.99", "EUR", "2026-11-18 10:00:00", "Red", "1.5", "12"),  # 1 valid
        ("P1", "19.99", "EUR", "2026-11-18 10:00:00", "Red", "1.5", "12"),  # 2 same version again
        ("P1", "18.50", "EUR", "2026-11-18 11:00:00", None, None, None),  # 3 later version: a record
        ("P1", "17.00", "EUR", "2026-11-18T10:00:00Z", None, None, None),  # 4 version 1 (same instant), other price
        (None, "1", "EUR", "2026-11-18 10:00:00", None, None, None),  # 5
        ("  ", "-1", "EUR", "2026-11-18 10:00:00", None, None, None),  # 6 blank id wins over the bad price
        ("P2", "1", "EUR", None, None, None, None),  # 7
        ("P2", "1", "EUR", "yesterday", None, None, None),  # 8
        ("P2", "1", "EUR", "2026-02-30 10:00:00", None, None, None),  # 9 no such day
        ("P2", None, "EUR", "2026-11-18 10:00:00", None, None, None),  # 10
        ("P2", "abc", "EUR", "2026-11-18 10:00:00", None, None, None),  # 11
        ("P2", "NaN", "EUR", "2026-11-18 10:00:00", None, None, None),  # 12 a float NaN as received
        ("P2", "-0.01", "EUR", "2026-11-18 10:00:00", None, None, None),  # 13
        ("P2", "1", "XXX", "2026-11-18 10:00:00", None, None, None),  # 14
        ("P2", "1", "", "2026-11-18 10:00:00", None, None, None),  # 15
        ("P2", "1", "€", "2026-11-18 10:00:00", None, None, None),  # 16
        ("P2", "0", " usd ", "2026-11-18 10:00:00", "", "heavy", "x"),  # 17 valid: free, currency normalised
        ("P3", "5", "GBP", "2026-11-17 08:00:00", None, None, None),  # 18 already in bronze's history
        ("P3", "6", "GBP", "2026-11-18 08:00:00", None, None, None),  # 19 newer than history: a record
    ]
    history = spark.createDataFrame([("P3", at(8).replace(day=17))], "product_id string, updated_at timestamp")
    classified = classify(raw_frame(spark, rows), history)
    got = sorted((r["_row_number"], r["kind"], r["reason"]) for r in classified.collect())
    assert got == [
        (1, "record", None),
        (2, "duplicate", None),
        (3, "record", None),
        (4, "duplicate", None),
        (5, "reject", "missing_product_id"),
        (6, "reject", "missing_product_id"),
        (7, "reject", "missing_updated_at"),
        (8, "reject", "bad_updated_at"),
        (9, "reject", "bad_updated_at"),
        (10, "reject", "missing_price"),
        (11, "reject", "bad_price"),
        (12, "reject", "bad_price"),
        (13, "reject", "negative_price"),
        (14, "reject", "unknown_currency"),
        (15, "reject", "unknown_currency"),
        (16, "reject", "unknown_currency"),
        (17, "record", None),
        (18, "duplicate", None),
        (19, "record", None),
    ]


def test_accepted_rows_are_typed(spark):
    from lakehouse_jobs.products import accepted, classify

    rows = [
        ("P1", "19.99", "EUR", "2026-11-18 10:00:00", " Red ", "1.5", "12"),
        ("P2", "0.125", "usd", "2026-11-18T12:00:00+02:00", "", "heavy", "x"),  # half a cent rounds up
    ]
    got = [r.asDict() for r in accepted(classify(raw_frame(spark, rows))).orderBy("product_id").collect()]
    keys = ("product_id", "price", "currency", "updated_at", "color", "weight_kg", "stock_quantity", "category")
    assert [tuple(r[k] for k in keys) for r in got] == [
        ("P1", Decimal("19.99"), "EUR", at(10), "red", 1.5, 12, "Toys"),
        ("P2", Decimal("0.13"), "USD", at(10), None, None, None, "Toys"),
    ]
    assert [(r["_source_file"], r["_row_number"], r["ds"]) for r in got] == [(F1, 1, DAY2), (F1, 2, DAY2)]


def test_rejected_rows_keep_their_raw_values(spark):
    import json

    from lakehouse_jobs.products import classify, rejected

    rows = [("P9", "-3", "EUR", "2026-11-18 10:00:00", None, None, None)]
    (row,) = rejected(classify(raw_frame(spark, rows))).collect()
    assert (row["reason"], row["product_id"], row["_row_number"]) == ("negative_price", "P9", 1)
    record = json.loads(row["record"])
    assert (record["price"], record["currency"], record["name"]) == ("-3", "EUR", "Name P9")


def test_reconciliation_accounts_for_every_raw_row(spark):
    from lakehouse_jobs.products import Reconciliation, classify

    rows = [
        ("P1", "1", "EUR", "2026-11-18 10:00:00", None, None, None),
        ("P1", "1", "EUR", "2026-11-18 10:00:00", None, None, None),
        ("P2", "-1", "EUR", "2026-11-18 10:00:00", None, None, None),
    ]
    recon = Reconciliation.of(classify(raw_frame(spark, rows)), 3)
    assert recon == Reconciliation(raw=3, accepted=1, duplicates=1, rejects=1)
    recon.check()
    assert recon.reject_ratio == pytest.approx(1 / 3)
    with pytest.raises(AssertionError, match="records lost"):
        Reconciliation(raw=4, accepted=1, duplicates=1, rejects=1).check()


# --- gold ---------------------------------------------------------------------------------------


def bronze_frame(spark, rows: list[tuple]):
    """Bronze rows from (ds, product_id, price, updated_at hour, source file, row) tuples."""
    from lakehouse_jobs.products import BRONZE_SCHEMA

    records = [
        (dt.date.fromisoformat(ds), pid, f"Name {pid}", "Toys", "Acme", Decimal(price), "EUR", at(hour))
        + (None, None, None, None, source, n, LOADED)
        for ds, pid, price, hour, source, n in rows
    ]
    return spark.createDataFrame(records, BRONZE_SCHEMA)


def master_frame(spark, rows: list[tuple]):
    """Master rows from (ds, product_id, price, updated_at hour, first_ds) tuples."""
    from lakehouse_jobs.products import MASTER_SCHEMA

    records = [
        (dt.date.fromisoformat(ds), pid, f"Name {pid}", "Toys", "Acme", Decimal(price), "EUR", at(hour))
        + (None, None, None, None, F1, 1, dt.date.fromisoformat(first))
        for ds, pid, price, hour, first in rows
    ]
    return spark.createDataFrame(records, MASTER_SCHEMA)


def test_latest_versions_by_updated_at_then_slice_file_row(spark):
    from lakehouse_jobs.products import latest_versions

    bronze = bronze_frame(
        spark,
        [
            (D1, "A", "1.00", 9, F1, 1),
            (D2, "A", "2.00", 8, F2, 1),  # later slice, earlier version
            (D1, "B", "1.00", 9, F1, 2),
            (D2, "B", "3.00", 9, F1, 5),  # same time: the later slice wins
            (D2, "B", "4.00", 9, F1, 4),
        ],
    )
    got = sorted((r["product_id"], r["price"]) for r in latest_versions(bronze).collect())
    assert got == [("A", Decimal("1.00")), ("B", Decimal("3.00"))]


def test_master_changes(spark):
    from lakehouse_jobs.products import master_changes, moved_slices

    bronze = bronze_frame(
        spark,
        [
            (D2, "NEW", "5.00", 10, F2, 1),  # first seen in this run
            (D1, "UPD", "1.00", 8, F1, 1),
            (D2, "UPD", "1.50", 10, F2, 2),  # a newer version: updated, moves out of slice D1
            (D1, "LATE", "2.00", 10, F1, 2),
            (D2, "LATE", "2.50", 7, F2, 3),  # arrives late, older than the master's version: no change
            (D1, "BACK", "3.00", 8, F1, 3),  # this run's files no longer hold BACK's newer version
            (D1, "SAME", "4.00", 8, F1, 4),  # not in this run
        ],
    )
    master = master_frame(
        spark,
        [
            (D1, "UPD", "1.00", 8, D1),
            (D1, "LATE", "2.00", 10, D1),
            (D2, "BACK", "3.30", 11, D1),  # written by an earlier attempt of this run
            (D2, "GONE", "9.00", 11, D2),  # ditto, and no version of it is left in bronze
            (D1, "SAME", "4.00", 8, D1),
        ],
    )
    changes = master_changes(bronze, master, D2)
    got = sorted(
        (r["product_id"], r["_op"], r["_new_ds"], r["price"], r["first_ds"], r["_previous_ds"])
        for r in changes.collect()
    )
    assert got == [
        ("BACK", "upsert", DAY2, Decimal("3.00"), DAY1, DAY2),
        ("GONE", "delete", DAY2, None, DAY2, DAY2),
        ("NEW", "upsert", DAY2, Decimal("5.00"), DAY2, None),
        ("UPD", "upsert", DAY2, Decimal("1.50"), DAY1, DAY1),
    ]
    assert [(r["changed_ds"], r["rows_out"]) for r in moved_slices(changes, D2).collect()] == [(DAY1, 1)]
    # Lineage of an upsert points at the bronze row of its version.
    upd = changes.where("product_id = 'UPD'").first()
    assert (upd["_source_file"], upd["_row_number"], upd["updated_at"]) == (F2, 2, at(10))


def test_by_category_per_currency_over_the_whole_master(spark):
    from lakehouse_jobs.products import MASTER_SCHEMA, by_category

    def row(ds, pid, category, brand, price, currency, hour):
        day = dt.date.fromisoformat(ds)
        return (day, pid, pid, category, brand, Decimal(price), currency, at(hour)) + (None,) * 4 + (F1, 1, day)

    master = spark.createDataFrame(
        [
            row(D1, "A", "Toys", "Acme", "1.00", "EUR", 8),
            row(D2, "B", "Toys", "Acme", "2.00", "EUR", 9),
            row(D2, "C", "Toys", "Orbis", "2.01", "EUR", 7),
            row(D1, "D", "Toys", None, "10.00", "USD", 6),
            row(D1, "E", "Books", "Acme", "7.50", "EUR", 5),
        ],
        MASTER_SCHEMA,
    )
    got = sorted(tuple(r) for r in by_category(master, D2).collect())
    assert got == [
        (DAY2, "Books", "EUR", 1, 1, Decimal("7.50"), Decimal("7.50"), Decimal("7.50"), 0, at(5)),
        (DAY2, "Toys", "EUR", 3, 2, Decimal("1.67"), Decimal("1.00"), Decimal("2.01"), 2, at(9)),
        (DAY2, "Toys", "USD", 1, 0, Decimal("10.00"), Decimal("10.00"), Decimal("10.00"), 0, at(6)),
    ]
