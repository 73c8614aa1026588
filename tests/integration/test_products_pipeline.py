"""The products DAG end to end through Airflow (local Spark runner) on the hourly sensor feed in moto S3, under keys
with spaces, ``+``, ``%``, ``#`` and non-ASCII characters, checked against values computed with plain Python from
the generated files (read with pyarrow): first run, identical re-drop, and a corrected file the next day."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from products_oracle import (
    REQUIRED,
    expected_by_department,
    expected_expiring,
    expected_from_files,
    expected_shelf_life,
)

pytestmark = pytest.mark.integration

DS = "2026-11-20"  # the date dag_runner runs every DAG for
NEXT_DS = "2026-11-21"
PREFIX = "products/"
HOURS, SEED = 6, 31
# Hour index -> the key it lands under: every character class a key may hold. Hour 5 lacks product_expire.
KEYS = {
    0: "2024-01-01 00-00-00.parquet",
    1: "2024-01-01 01-00-00+0000.parquet",
    2: "2024-01-01 02-00-00 100%25 sure%.parquet",
    3: "drops #3/2024-01-01 03-00-00 #3.parquet",
    4: "Kühlregal/2024-01-01 04-00-00 ünïcødé 東京.parquet",
    5: "2024-01-01 05-00-00.parquet",
}
COPY = "2024-01-01 00-00-00 (re-sent).parquet"  # hour 0 again under another name: every row a duplicate
CONF = {"max_reject_ratio": 0.5}  # one file in six lacks a column: a sixth of the rows are rejected on purpose
TABLES = ("raw.products", "bronze.products", "bronze.products_rejects", "gold.product_master", "ops.processed_files")


# --- what the pipeline produced, read with PyIceberg -------------------------------------------------------


def rows(catalog, table: str) -> list[dict]:
    return catalog.load_table(table).scan().to_arrow().to_pylist()


def master(catalog) -> dict:
    got = rows(catalog, "gold.product_master")
    readings = {(r["department_name"], r["sensor_serial"], r["product_name"], r["create_at"]): r for r in got}
    assert len(readings) == len(got), "product_master holds a reading twice"
    return readings


def snapshot(catalog) -> dict:
    ids = {t: catalog.load_table(t).current_snapshot().snapshot_id for t in TABLES}
    counts = {t: len(rows(catalog, t)) for t in TABLES}
    return {"snapshots": ids, "counts": counts}


def landed_path(key: str) -> str:
    return f"s3a://landing/{PREFIX}{key}"


# --- the runs ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def feed(tmp_path_factory) -> dict[str, Path]:
    """The generated hours, by landing key (below PREFIX)."""
    from devtools.samples.products import FeedOptions, write_feed

    options = FeedOptions(
        departments=6, sensors_per_department=4, products_per_department=6, defect_rate=0.06,
        missing_column_every=6, drift_from_hour=2,
    )  # fmt: skip
    paths = write_feed(tmp_path_factory.mktemp("products"), HOURS, SEED, options)
    files = {KEYS[i]: path for i, path in enumerate(paths)}
    files[COPY] = paths[0]
    return files


def upload(s3, path: Path, key: str) -> str:
    s3.upload_file(str(path), "landing", PREFIX + key)
    return s3.head_object(Bucket="landing", Key=PREFIX + key)["ETag"].strip('"')


@pytest.fixture(scope="module")
def first_run(lake_env, airflow_db, s3, feed, dag_runner, iceberg_catalog) -> dict:
    assert s3.list_objects_v2(Bucket="landing", Prefix=PREFIX)["KeyCount"] == 0
    etags = {key: upload(s3, path, key) for key, path in feed.items()}
    dag_runner("products", run_conf=CONF)
    return {**snapshot(iceberg_catalog), "etags": etags}


def test_the_sample_is_the_feed(feed):
    import pyarrow.parquet as pq

    schema = pq.read_schema(feed[KEYS[0]])
    assert schema.names == list(REQUIRED) and b"pandas" in schema.metadata
    assert str(schema.field("create_at").type) == "timestamp[us]"
    assert "product_expire" not in pq.read_schema(feed[KEYS[5]]).names
    assert str(pq.read_schema(feed[KEYS[2]]).field("shelf_temperature").type) == "float"
    assert str(pq.read_schema(feed[KEYS[4]]).field("shelf_temperature").type) == "double"


def test_gold_matches_values_computed_from_the_files(first_run, feed, iceberg_catalog):
    want = expected_from_files(feed)
    assert want["duplicates"] and len(want["rejects"]) >= 5  # the sample exercises every path
    got = master(iceberg_catalog)
    assert {k: r["product_expire"] for k, r in got.items()} == want["readings"]
    assert {r["ds"] for r in got.values()} == {dt.date.fromisoformat(DS)}
    for r in got.values():
        assert r["shelf_life_days"] == pytest.approx((r["product_expire"] - r["create_at"]).total_seconds() / 86_400)
    day = dt.date.fromisoformat(DS)
    assert {
        (r["department_name"], r["day"]): (r["products"], r["sensors"], r["readings"])
        for r in rows(iceberg_catalog, "gold.products_by_department")
        if r["ds"] == day
    } == expected_by_department(want["readings"])
    assert {
        r["shelf_life_days"]: (r["readings"], r["products"])
        for r in rows(iceberg_catalog, "gold.product_shelf_life")
        if r["ds"] == day
    } == expected_shelf_life(want["readings"])
    assert {
        (r["department_name"], r["within_days"]): (r["products"], r["readings"])
        for r in rows(iceberg_catalog, "gold.products_expiring")
        if r["ds"] == day
    } == expected_expiring(want["readings"])


def test_every_raw_row_is_accounted_for(first_run, feed, iceberg_catalog):
    import pyarrow.parquet as pq

    want = expected_from_files(feed)
    raw = rows(iceberg_catalog, "raw.products")
    assert Counter(r["_source_file"] for r in raw) == {
        landed_path(k): pq.read_metadata(p).num_rows for k, p in feed.items()
    }
    reasons = Counter(r["reason"] for r in rows(iceberg_catalog, "bronze.products_rejects"))
    assert reasons == want["rejects"]
    bronze = first_run["counts"]["bronze.products"]
    assert bronze == len(want["readings"])
    assert len(raw) == want["raw"] == bronze + want["duplicates"] + sum(reasons.values())
    (run,) = [r for r in rows(iceberg_catalog, "gold.pipeline_runs") if r["domain"] == "products"]
    assert (run["raw_rows"], run["accepted"], run["duplicates"], run["rejects"], run["status"]) == (
        want["raw"], len(want["readings"]), want["duplicates"], sum(reasons.values()), "published",
    )  # fmt: skip


def test_raw_keeps_the_drifted_column_and_names_the_absent_one(first_run, feed, iceberg_catalog):
    import pyarrow.parquet as pq

    raw = rows(iceberg_catalog, "raw.products")
    by_file = defaultdict(list)
    for r in raw:
        by_file[r["_source_file"]].append(r)
    drifted = sorted(by_file[landed_path(KEYS[3])], key=lambda r: r["_row_number"])
    temperatures = pq.read_table(feed[KEYS[3]]).column("shelf_temperature").to_pylist()
    assert [float(dict(r["_extra"])["shelf_temperature"]) for r in drifted] == pytest.approx(temperatures)
    assert {tuple(r["_absent"]) for r in by_file[landed_path(KEYS[5])]} == {("product_expire",)}
    assert {tuple(r["_absent"]) for r in by_file[landed_path(KEYS[0])]} == {()}


def test_every_key_is_recorded_as_landed_and_the_sensor_agrees(first_run, s3, iceberg_catalog):
    from include.landing.new_files import list_objects, pending_files, processed_versions

    processed = rows(iceberg_catalog, "ops.processed_files")  # shared by every domain
    recorded = {r["path"]: r["etag"] for r in processed if r["domain"] == "products"}
    assert recorded == {landed_path(k): etag for k, etag in first_run["etags"].items()}
    objects = list_objects(s3, "landing", PREFIX, ".parquet")
    assert len(objects) == len(KEYS) + 1
    assert pending_files(objects, processed_versions("products", iceberg_catalog), "landing") == []


def test_product_master_is_served_identically_to_postgresql_and_tidb(first_run, iceberg_catalog, serving_databases):
    import pymysql
    from served_rows import pg_query, serve_both

    from include.serving.tidb import SESSION_DEFAULTS

    name, columns = serving_databases, "department_name, sensor_serial, product_name, create_at, product_expire"
    serve_both(iceberg_catalog, ["product_master"], DS, name)
    served_pg = Counter(pg_query(name, f"SELECT {columns} FROM gold.product_master"))
    my = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=name, **SESSION_DEFAULTS)
    try:
        with my.cursor() as cur:
            cur.execute(f"SELECT {columns} FROM product_master")
            served_tidb = Counter(tuple(r) for r in cur.fetchall())
    finally:
        my.close()
    want = Counter((*key[:3], key[3], r["product_expire"]) for key, r in master(iceberg_catalog).items())
    assert served_pg == served_tidb == want


def test_every_products_gold_table_is_served_identically(first_run, iceberg_catalog, serving_databases):
    """What the serve test checked for products' gold when products ran beside it: every table, both targets.

    Products is a test group of its own (tests/conftest.py), so its gold is loaded here with the serve DAG's loaders
    and compared row for row, as a multiset, with the Iceberg slice.
    """
    from served_rows import assert_served_identically, serve_both

    from include.assets import GOLD_TABLES

    tables = [t.removeprefix("gold.") for t in GOLD_TABLES["products"]]
    serve_both(iceberg_catalog, tables, DS, serving_databases)
    assert_served_identically(iceberg_catalog, tables, DS, serving_databases)


@pytest.fixture(scope="module")
def same_redrop(first_run, s3, feed, dag_runner, iceberg_catalog) -> dict:
    upload(s3, feed[KEYS[2]], KEYS[2])  # the same bytes under the same (%) name
    dag_runner("products", run_conf=CONF)
    return snapshot(iceberg_catalog)


def test_redrop_of_the_same_file_changes_nothing(first_run, same_redrop):
    assert same_redrop["counts"] == first_run["counts"]
    for table in ("raw.products", "ops.processed_files", "gold.product_master"):
        assert same_redrop["snapshots"][table] == first_run["snapshots"][table], table


def run_job(lake_env: dict, layer: str, ds: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lakehouse_jobs", "products", layer, "--ds", ds, *_options(layer)],
        env={**os.environ, **lake_env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def _options(layer: str) -> list[str]:
    return ["--max-reject-ratio", "0.5"] if layer == "bronze" else []


@pytest.fixture(scope="module")
def corrected_file(feed, tmp_path_factory) -> Path:
    """The ``+`` hour corrected: some expiries a day later, the last row withdrawn."""
    import pandas as pd

    from devtools.samples.products import corrected, write_frame

    return write_frame(
        corrected(pd.read_parquet(feed[KEYS[1]]), SEED), tmp_path_factory.mktemp("fix") / "fixed.parquet"
    )


@pytest.fixture(scope="module")
def correction_run(same_redrop, lake_env, s3, feed, corrected_file, iceberg_catalog) -> dict:
    before = master(iceberg_catalog)
    upload(s3, corrected_file, KEYS[1])
    for layer in ("raw", "bronze", "gold"):
        run_job(lake_env, layer, NEXT_DS)
    return {"before": before}


def test_a_corrected_file_replaces_its_rows_in_every_slice(correction_run, feed, corrected_file, iceberg_catalog):
    from include.slice_changes import announce_changed_slices

    current = {**feed, KEYS[1]: corrected_file}
    want = expected_from_files(current)
    got = master(iceberg_catalog)
    assert {k: r["product_expire"] for k, r in got.items()} == want["readings"]
    fixed = landed_path(KEYS[1])
    before = [k for k, r in correction_run["before"].items() if r["_source_file"] == fixed]
    changed = {
        k
        for k, e in want["readings"].items()
        if k in correction_run["before"] and e != correction_run["before"][k]["product_expire"]
    }
    assert changed  # corrected readings are taken, not dropped as duplicates of the first version
    day, next_day = dt.date.fromisoformat(DS), dt.date.fromisoformat(NEXT_DS)
    for table in ("raw.products", "bronze.products", "gold.product_master"):
        slices = Counter(r["ds"] for r in rows(iceberg_catalog, table) if r["_source_file"] == fixed)
        assert set(slices) == {next_day}, table
    assert {r["ds"] for r in got.values() if r["_source_file"] != fixed} == {day}
    changes = [
        r for r in rows(iceberg_catalog, "ops.slice_changes") if r["ds"] == next_day and "product" in r["table_name"]
    ]  # the table is shared by every domain
    assert [(r["table_name"], r["changed_ds"], r["rows_out"]) for r in changes] == [
        ("gold.product_master", day, len(before))
    ]
    recorder = RecordingAlias()
    assert announce_changed_slices(recorder, "gold.product_master", NEXT_DS, iceberg_catalog) == [DS]
    # The next day's aggregates cover the whole master.
    assert sum(
        r["readings"] for r in rows(iceberg_catalog, "gold.products_by_department") if r["ds"] == next_day
    ) == len(want["readings"])


class RecordingAlias:
    """Stands in for ``outlet_events[AssetAlias(...)]``: records the events added."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def add(self, asset, extra=None) -> None:
        self.events.append((asset.name, extra))
