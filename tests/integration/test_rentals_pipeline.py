"""The rentals DAG end to end through Airflow (local Spark runner): gold against SQL run on the source database."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections import Counter

import pytest
from rentals_oracle import GOLD, SOURCE_TABLES, expected_gold, late_payments, slices, source_dsn, source_query

from devtools import local_stack

pytestmark = pytest.mark.integration

DS = "2026-11-20"  # tests/integration/conftest.py runs DAGs for this logical date
RENTALS = 3000
TABLES = [
    *(f"raw.rentals_{t}" for t in SOURCE_TABLES),
    *(f"bronze.rentals_{t}" for t in SOURCE_TABLES),
    "bronze.rentals_rejects",
    *GOLD,
    "gold.pipeline_runs",
]


def slice_rows(catalog, table: str) -> Counter:
    """The slice's rows as a multiset, without the `_loaded_at` lineage column (the time of the last write)."""
    from pyiceberg.expressions import EqualTo

    arrow = catalog.load_table(table).scan(row_filter=EqualTo("ds", DS)).to_arrow()
    columns = [c for c in arrow.column_names if c != "_loaded_at"]
    return Counter(tuple(row[c] for c in columns) for row in arrow.select(columns).to_pylist())


@pytest.fixture(scope="module")
def source_db():
    """A generated DVD-rental database around DS, and the Airflow connection to it; dropped afterwards."""
    from devtools.samples.rentals import RentalsOptions, generate_rentals_db

    name = f"dvdrental_test_{uuid.uuid4().hex[:8]}"
    local_stack.recreate_database(name)
    options = RentalsOptions(rentals=RENTALS, seed=5, start=dt.date(2026, 11, 18), days=4, pay_on_return_every=10)
    generate_rentals_db(source_dsn(name), options)
    previous = os.environ.get("AIRFLOW_CONN_DVDRENTAL_SOURCE")
    connection = {"conn_type": "postgres", "host": local_stack.PG_HOST, "port": local_stack.PG_PORT}
    os.environ["AIRFLOW_CONN_DVDRENTAL_SOURCE"] = json.dumps(
        {**connection, "login": local_stack.PG_USER, "schema": name}
    )
    yield name
    if previous is None:
        os.environ.pop("AIRFLOW_CONN_DVDRENTAL_SOURCE", None)
    else:
        os.environ["AIRFLOW_CONN_DVDRENTAL_SOURCE"] = previous
    local_stack.drop_database(name)


@pytest.fixture(scope="module")
def first_run(lake_env, airflow_db, source_db, dag_runner, iceberg_catalog):
    dag_runner("rentals")
    return {t: slice_rows(iceberg_catalog, t) for t in TABLES}


def test_gold_matches_sql_on_the_source(first_run, source_db):
    want = expected_gold(source_db, DS)
    assert {table: first_run[table] for table in GOLD} == want
    assert sum(rentals for _, _, _, rentals, _, _ in want["gold.top_countries"]) > 0
    assert late_payments(source_db, DS) > 0, "some of the day's accepted payments are for rentals of earlier days"


def test_every_source_row_is_accounted_for(first_run, source_db):
    queries = [
        f"SELECT count(*), (SELECT count(*) FROM kept_{t}), (SELECT count(*) FROM ok_{t}) FROM {t}"
        + (f" WHERE {slices(DS)[t]}" if t in slices(DS) else "")
        for t in SOURCE_TABLES
    ]
    results = source_query(source_db, DS, *queries)
    rejects = Counter(row[1] for row in first_run["bronze.rentals_rejects"].elements())
    for table, [(raw, kept, once)] in zip(SOURCE_TABLES, results, strict=True):
        got_raw = sum(first_run[f"raw.rentals_{table}"].values())
        got_bronze = sum(first_run[f"bronze.rentals_{table}"].values())
        # raw = accepted + duplicates + rejects, each side computed on its own.
        assert (got_raw, got_bronze, rejects[table]) == (raw, once, raw - kept), table
    assert rejects["rental"] > 0 and rejects["payment"] > 0 and rejects["customer"] > 0
    duplicates = {t: kept - once for t, [(_, kept, once)] in zip(SOURCE_TABLES, results, strict=True)}
    assert duplicates["rental"] > 0 and duplicates["payment"] > 0  # the sample exercises de-duplication
    # The run summary for the Pipeline health dashboard: the source tables' rows together.
    runs = [r for r in first_run["gold.pipeline_runs"] if r[1] == "rentals"]
    totals = [sum(column) for column in zip(*(row for [row] in results), strict=True)]
    raw, kept, once = totals
    assert [(r[6], r[7], r[8], r[9], r[10]) for r in runs] == [(raw, once, kept - once, raw - kept, "published")]


def test_rejects_say_why(first_run):
    reasons = Counter((row[1], row[3]) for row in first_run["bronze.rentals_rejects"].elements())
    assert set(reasons) >= {
        ("city", "orphan_country_id"),
        ("address", "orphan_city_id"),
        ("customer", "orphan_address_id"),
        ("film_category", "orphan_film_id"),
        ("film_category", "orphan_category_id"),
        ("inventory", "orphan_film_id"),
        ("rental", "orphan_customer_id"),
        ("rental", "orphan_inventory_id"),
        ("rental", "return_before_rental"),
        ("payment", "negative_amount"),
        ("payment", "orphan_rental_id"),
    }
    for _, table, key, _, record in first_run["bronze.rentals_rejects"]:
        assert json.loads(key).items() <= json.loads(record).items(), table


def test_the_dag_declares_every_table_it_writes(first_run):
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(local_stack.ROOT / "dags" / "rentals.py")).dags["rentals"]
    declared = {asset.name for task in dag.tasks for asset in task.outlets}
    assert declared == set(TABLES)
    assert all(first_run[t] for t in TABLES), "every declared table has rows for the slice"


def test_gold_is_served_identically_to_postgresql_and_tidb(first_run, iceberg_catalog, serving_databases):
    """The slice through the serve DAG's loaders: rentals is a test group of its own (tests/conftest.py), off the
    serve test's worker, so it serves its own gold, as the products module does."""
    from served_rows import assert_served_identically, serve_both

    tables = [t.removeprefix("gold.") for t in GOLD]
    serve_both(iceberg_catalog, tables, DS, serving_databases)
    assert_served_identically(iceberg_catalog, tables, DS, serving_databases)


def test_rerun_changes_no_table(first_run, dag_runner, iceberg_catalog):
    dag_runner("rentals")
    assert {t: slice_rows(iceberg_catalog, t) for t in TABLES} == first_run


def test_bronze_refuses_to_publish_above_the_reject_ratio(first_run, lake_env, source_db, iceberg_catalog):
    before = slice_rows(iceberg_catalog, "bronze.rentals_payment")
    proc = subprocess.run(
        [sys.executable, "-m", "lakehouse_jobs", "rentals", "bronze", "--ds", DS, "--max-reject-ratio", "0.001"],
        env={**os.environ, **lake_env},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 1
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"rentals bronze ds={DS} failed: RejectRatioExceeded:")
    assert slice_rows(iceberg_catalog, "bronze.rentals_payment") == before
