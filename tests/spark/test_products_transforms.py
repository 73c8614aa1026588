"""Products transformations: input rows beside the rows expected from them."""

from __future__ import annotations

import datetime as dt
import json

import pytest

pytestmark = pytest.mark.spark

D1, D2 = "2026-11-19", "2026-11-20"
DAY1, DAY2 = dt.date(2026, 11, 19), dt.date(2026, 11, 20)
UTC = dt.timezone.utc  # noqa: UP017 - mirrors the job's Python 3.10 code
LOADED = dt.datetime(2026, 11, 20, 6, tzinfo=UTC)
F1 = "s3a://landing/products/2024-01-01 00-00-00.parquet"
F2 = "s3a://landing/products/2024-01-01 01-00-00.parquet"
H0, H1 = dt.datetime(2024, 1, 1, 0), dt.datetime(2024, 1, 1, 1)
# Keys of every character class a sensor may use.
ODD_KEYS = (
    "a b.parquet", "a+b.parquet", "100%.parquet", "50%25.parquet", "x#1.parquet", "Kühl ünï 東京.parquet",
    "[v1] {x}*?.parquet",
)  # fmt: skip


def days(n: float) -> dt.timedelta:
    return dt.timedelta(days=n)


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


def test_glob_characters_are_escaped():
    from lakehouse_jobs.landed_files import glob_escaped

    assert glob_escaped("s3a://l/p/[v1] {x}*?.parquet") == "s3a://l/p/\\[v1\\] \\{x\\}\\*\\?.parquet"
    assert glob_escaped("s3a://l/p/a b+c%d#e ü.parquet") == "s3a://l/p/a b+c%d#e ü.parquet"


def test_files_of_any_key_are_read_under_their_listed_path(spark, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lakehouse_jobs.landed_files import list_landed
    from lakehouse_jobs.products import read_files

    for n, key in enumerate(ODD_KEYS):
        pq.write_table(pa.table({"department_name": ["D"] * (n + 1), "sensor_serial": [key] * (n + 1)}), tmp_path / key)
    landed = list_landed(spark, tmp_path.as_uri(), suffix=".parquet")
    assert sorted(f.path.rsplit("/", 1)[1] for f in landed) == sorted(ODD_KEYS)
    raw, expected = read_files(spark, landed, D2)
    got = {(r["_source_file"], r["sensor_serial"], r["_row_number"]) for r in raw.collect()}
    # Each file's rows carry the path it was listed under, its own rows only, numbered from 1.
    want = {
        (f.path, f.path.rsplit("/", 1)[1], i + 1)
        for f in landed
        for i in range(ODD_KEYS.index(f.path.rsplit("/", 1)[1]) + 1)
    }
    assert got == want
    assert expected == {f.path: ODD_KEYS.index(f.path.rsplit("/", 1)[1]) + 1 for f in landed}


# --- raw ---------------------------------------------------------------------------------------


def test_to_raw_keeps_values_as_strings_and_names_absent_columns(spark):
    from lakehouse_jobs.products import to_raw

    full = spark.createDataFrame(
        [("Dairy", "SN-1", H0, "Milk", H0 + days(88), 4.5, F1, 3)],
        "department_name string, sensor_serial string, create_at timestamp_ntz, product_name string, "
        "product_expire timestamp_ntz, shelf_temperature double, _source_file string, _row_number long",
    )
    lacking = spark.createDataFrame(
        [("Dairy", "SN-1", H1, "Milk", F2, 1)],
        "department_name string, sensor_serial string, create_at timestamp_ntz, product_name string, "
        "_source_file string, _row_number long",
    )
    (row,) = [r.asDict() for r in to_raw(full, D2).collect()]
    assert {k: v for k, v in row.items() if k != "_loaded_at"} == {
        "ds": DAY2, "department_name": "Dairy", "sensor_serial": "SN-1", "create_at": "2024-01-01 00:00:00",
        "product_name": "Milk", "product_expire": "2024-03-29 00:00:00", "_absent": [],
        "_extra": {"shelf_temperature": "4.5"}, "_source_file": F1, "_row_number": 3,
    }  # fmt: skip
    (row,) = to_raw(lacking, D2).collect()
    assert (row["product_expire"], row["_absent"], row["_extra"]) == (None, ["product_expire"], None)


def raw_frame(spark, rows: list[tuple], ds: str = D2, source: str = F1, absent: tuple = ()):
    """Raw rows from (department, serial, create_at, product, expire) strings, numbered in order."""
    from lakehouse_jobs.products import RAW_SCHEMA

    records = [(dt.date.fromisoformat(ds), *r, list(absent), None, source, i + 1, LOADED) for i, r in enumerate(rows)]
    return spark.createDataFrame(records, RAW_SCHEMA)


GOOD = ("Dairy", "SN-1", "2024-01-01 00:00:00", "Milk", "2024-03-29 00:00:00")


def test_classify_every_kind_of_row(spark):
    from lakehouse_jobs.products import classify

    rows = [
        GOOD,  # 1 record
        ("Dairy", "SN-1", "2024-01-01 00:00:00", "Butter", "2024-03-29 00:00:00"),  # 2 same serial, other product
        (" Dairy ", "SN-1", "2024-01-01 00:00:00", "Milk", "2024-03-30 00:00:00"),  # 3 duplicate of 1 once trimmed
        (None, "SN-1", "2024-01-01 00:00:00", "Milk", "2024-03-29 00:00:00"),
        ("Dairy", "  ", "2024-01-01 00:00:00", "Milk", "2024-03-29 00:00:00"),
        ("Dairy", "SN-1", "2024-01-01 00:00:00", "", "2024-03-29 00:00:00"),
        ("Dairy", "SN-1", None, "Milk", "2024-03-29 00:00:00"),
        ("Dairy", "SN-1", "yesterday", "Milk", "2024-03-29 00:00:00"),
        ("Dairy", "SN-1", "2024-01-01 00:00:00", "Milk", None),
        ("Dairy", "SN-1", "2024-01-01 00:00:00", "Milk", "soon"),
        ("Dairy", "SN-1", "1970-01-01 00:00:00", "Milk", "2024-03-29 00:00:00"),
        ("Dairy", "SN-1", "2024-01-01 00:00:00", "Milk", "2262-04-11 00:00:00"),
        ("Dairy", "SN-1", "2024-01-01 00:00:00", "Milk", "2023-12-31 23:59:59"),
        ("Dairy", "SN-2", "2024-01-01 00:00:00", "Milk", "2024-01-01 00:00:00"),  # 14 expires as created: valid
        ("Dairy", "SN-9", "2023-12-31 23:00:00", "Milk", "2024-03-28 00:00:00"),  # 15 in history
    ]
    history = spark.createDataFrame(
        [("Dairy", "SN-9", "Milk", dt.datetime(2023, 12, 31, 23))],
        "department_name string, sensor_serial string, product_name string, create_at timestamp_ntz",
    )
    got = {r["_row_number"]: (r["kind"], r["reason"]) for r in classify(raw_frame(spark, rows), history).collect()}
    reasons = [
        "missing_department", "missing_sensor_serial", "missing_product_name", "missing_create_at", "bad_create_at",
        "missing_product_expire", "bad_product_expire", "timestamp_out_of_range", "timestamp_out_of_range",
        "expire_before_create",
    ]  # fmt: skip
    assert got == {
        1: ("record", None),
        2: ("record", None),
        3: ("duplicate", None),
        **{4 + i: ("reject", reason) for i, reason in enumerate(reasons)},
        14: ("record", None),
        15: ("duplicate", None),
    }


def test_a_reject_never_takes_the_place_of_a_valid_reading(spark):
    from lakehouse_jobs.products import classify

    rows = [("Dairy", "SN-1", "2024-01-01 00:00:00", "Milk", "2023-01-01 00:00:00"), GOOD]
    got = [(r["_row_number"], r["kind"]) for r in classify(raw_frame(spark, rows)).orderBy("_row_number").collect()]
    assert got == [(1, "reject"), (2, "record")]


def test_the_engine_keeps_the_first_valid_reading_as_computed_in_python(spark):
    """What bronze writes (an aggregation over two files): a reading first seen on a refused row is kept."""
    import random

    from lakehouse_jobs.products import LAYER

    rng = random.Random(7)
    rows = []
    for _ in range(300):
        serial, product, hour = f"SN-{rng.randint(1, 6)}", rng.choice(["Milk", "Eggs"]), rng.randint(0, 3)
        expire = rng.choice(["2024-03-29 00:00:00", "2024-04-01 00:00:00", "soon", "2023-01-01 00:00:00"])
        rows.append(("Dairy", serial, f"2024-01-01 0{hour}:00:00", product, expire))
    halves = {F1: rows[:150], F2: rows[150:]}

    def valid(row) -> bool:  # the rules these rows can break: an unreadable expiry, or one before the reading
        return row[4] != "soon" and row[4] >= row[2]

    want: dict[tuple, tuple] = {}
    for path in sorted(halves):
        for number, row in enumerate(halves[path], start=1):
            key = (row[0], row[1], row[3], row[2])
            if valid(row) and key not in want:
                want[key] = (path, number, row[4])
    first_seen: dict[tuple, tuple] = {}
    for path in sorted(halves):
        for row in halves[path]:
            first_seen.setdefault((row[0], row[1], row[3], row[2]), row)
    assert any(not valid(row) for key, row in first_seen.items() if key in want)  # a key first seen on a reject
    raw = raw_frame(spark, halves[F1], source=F1).unionByName(raw_frame(spark, halves[F2], source=F2))
    got = {
        (r["department_name"], r["sensor_serial"], r["product_name"], r["create_at"].isoformat(" ")): (
            r["_source_file"],
            r["_row_number"],
            r["product_expire"].isoformat(" "),
        )
        for r in LAYER.records(LAYER.parse(raw)).collect()
    }
    assert got == want


def test_a_file_lacking_a_column_is_rejected_whole(spark):
    from lakehouse_jobs.products import classify

    kinds = {(r["kind"], r["reason"]) for r in classify(raw_frame(spark, [GOOD, GOOD], absent=("x",))).collect()}
    assert kinds == {("reject", "missing_column")}


def test_accepted_and_rejected_rows(spark):
    from lakehouse_jobs.products import accepted, classify, rejected

    classified = classify(raw_frame(spark, [(" Dairy", "SN-1 ", *GOOD[2:]), (None, *GOOD[1:])]))
    (row,) = [r.asDict() for r in accepted(classified).collect()]
    assert {k: row[k] for k in ("department_name", "sensor_serial", "product_name", "create_at", "product_expire")} == {
        "department_name": "Dairy", "sensor_serial": "SN-1", "product_name": "Milk", "create_at": H0,
        "product_expire": H0 + days(88),
    }  # fmt: skip
    (bad,) = rejected(classified).collect()
    assert (bad["reason"], bad["_row_number"], bad["_source_file"]) == ("missing_department", 2, F1)
    assert json.loads(bad["record"]) == {
        "sensor_serial": "SN-1", "create_at": GOOD[2], "product_name": "Milk", "product_expire": GOOD[4], "_absent": [],
    }  # fmt: skip


# --- gold --------------------------------------------------------------------------------------

READINGS = [
    # department, serial, product, created, expires
    ("Dairy", "SN-1", "Milk", H0, H0 + days(88)),
    ("Dairy", "SN-1", "Butter", H0, H0 + days(87.5)),
    ("Dairy", "SN-2", "Milk", H0, H0 + days(89)),
    ("Dairy", "SN-1", "Milk", H1, H1 + days(88.25)),
    ("Bakery", "SN-7", "Bread", H0 + days(1), H0 + days(4)),
]


def master_frame(spark, readings=READINGS):
    from lakehouse_jobs.products import BRONZE_SCHEMA, master_rows

    bronze = [(DAY2, *r[:2], r[2], r[3], r[4], F1, i + 1, LOADED) for i, r in enumerate(readings)]
    return master_rows(spark.createDataFrame(bronze, BRONZE_SCHEMA))


def test_master_rows_carry_the_shelf_life(spark):
    got = {
        (r["sensor_serial"], r["product_name"], r["create_at"]): r["shelf_life_days"]
        for r in master_frame(spark).collect()
    }
    assert got == {
        ("SN-1", "Milk", H0): 88.0,
        ("SN-1", "Butter", H0): 87.5,
        ("SN-2", "Milk", H0): 89.0,
        ("SN-1", "Milk", H1): 88.25,
        ("SN-7", "Bread", H0 + days(1)): 3.0,
    }


def test_products_and_sensors_per_department_and_day(spark):
    from lakehouse_jobs.products import by_department

    got = {(r["department_name"], r["day"]): (r["products"], r["sensors"], r["readings"])
           for r in by_department(master_frame(spark), D2).collect()}  # fmt: skip
    assert got == {("Dairy", dt.date(2024, 1, 1)): (2, 2, 4), ("Bakery", dt.date(2024, 1, 2)): (1, 1, 1)}


def test_shelf_life_distribution_in_whole_days(spark):
    from lakehouse_jobs.products import shelf_life

    got = {r["shelf_life_days"]: (r["readings"], r["products"], r["avg_shelf_life_days"])
           for r in shelf_life(master_frame(spark), D2).collect()}  # fmt: skip
    assert got == {87: (1, 1, 87.5), 88: (2, 1, 88.125), 89: (1, 1, 89.0), 3: (1, 1, 3.0)}


def test_products_expiring_within_n_days_of_the_latest_reading(spark):
    from lakehouse_jobs.products import expiring

    got = {(r["department_name"], r["within_days"]): (r["products"], r["readings"], r["as_of"])
           for r in expiring(master_frame(spark), D2, horizons=(3, 88)).collect()}  # fmt: skip
    # Now is the latest create_at (day 1, 00:00). Latest readings: Milk/SN-1 at H1 (expires day 88 + 7h), Butter
    # (day 87.5), Milk/SN-2 (day 89), Bread (day 4: within 3 days of day 1).
    now = H0 + days(1)
    assert got == {
        ("Dairy", 3): (0, 0, now),
        # Butter (86.5 days on), Milk/SN-1 (87.3) and Milk/SN-2 (exactly 88: the bound is included).
        ("Dairy", 88): (2, 3, now),
        ("Bakery", 3): (1, 1, now),
        ("Bakery", 88): (1, 1, now),
    }
