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

from devtools import local_stack

pytestmark = pytest.mark.integration

DS = "2026-11-20"  # tests/integration/conftest.py runs DAGs for this logical date
RENTALS = 3000
SOURCE_TABLES = (
    *("country", "city", "address", "category", "film", "film_category"),
    *("store", "staff", "inventory", "customer", "rental", "payment"),
)
GOLD = ("gold.top_countries", "gold.films_per_category")
TABLES = [
    *(f"raw.rentals_{t}" for t in SOURCE_TABLES),
    *(f"bronze.rentals_{t}" for t in SOURCE_TABLES),
    "bronze.rentals_rejects",
    *GOLD,
    "gold.pipeline_runs",
]

# What bronze must keep, written from the rules as SQL on the source: a row is kept when every row it
# references is itself kept and its values are possible; rental and payment only in the run's interval. `kept_<t>`
# has re-delivered copies too, `ok_<t>` has each row once. In the sample some payments are taken when the copy comes
# back, days after its rental: the slice's rentals are the interval's and those its payments are for.
INTERVAL = "{col} >= TIMESTAMPTZ '2026-11-20 00:00:00+00' AND {col} < TIMESTAMPTZ '2026-11-21 00:00:00+00'"
PAID_FOR = f"rental_id IN (SELECT rental_id FROM payment WHERE {INTERVAL.format(col='payment_date')})"
SLICE = {
    "rental": f"({INTERVAL.format(col='rental_date')} OR {PAID_FOR})",
    "payment": INTERVAL.format(col="payment_date"),
}
REFERENCES = {
    "city": ["country"],
    "address": ["city"],
    "film_category": ["film", "category"],
    "store": ["address"],
    "staff": ["address", "store"],
    "inventory": ["film", "store"],
    "customer": ["address", "store"],
    "rental": ["inventory", "customer", "staff"],
    "payment": ["rental", "customer", "staff"],
}
CONDITIONS = {
    "rental": [SLICE["rental"], "(return_date IS NULL OR return_date >= rental_date)"],
    "payment": [SLICE["payment"], "amount >= 0"],
}


def kept_sql(table: str) -> str:
    """The rows of ``table`` bronze must keep (re-delivered copies included); every key column is ``<parent>_id``."""
    where = [f"{parent}_id IN (SELECT {parent}_id FROM ok_{parent})" for parent in REFERENCES.get(table, [])]
    where += CONDITIONS.get(table, [])
    return f"SELECT * FROM {table}" + (f" WHERE {' AND '.join(where)}" if where else "")


# Customers: those created by the interval's end; rentals: those rented in the interval.
TOP_COUNTRIES = f"""
WITH place AS (
    SELECT c.customer_id, c.create_date, co.country
    FROM ok_customer c
    JOIN ok_address a ON a.address_id = c.address_id
    JOIN ok_city ci ON ci.city_id = a.city_id
    JOIN ok_country co ON co.country_id = ci.country_id
),
customers AS (SELECT country, count(*) AS n FROM place WHERE create_date <= DATE '2026-11-20' GROUP BY country),
rentals AS (
    SELECT p.country, count(*) AS n FROM ok_rental r JOIN place p USING (customer_id)
    WHERE {INTERVAL.format(col="r.rental_date")} GROUP BY p.country
),
revenue AS (SELECT p.country, sum(amount) AS s FROM ok_payment y JOIN place p USING (customer_id) GROUP BY p.country),
per_country AS (
    SELECT country, coalesce(c.n, 0) AS customers, coalesce(r.n, 0) AS rentals, coalesce(v.s, 0) AS revenue
    FROM customers c FULL JOIN rentals r USING (country) FULL JOIN revenue v USING (country)
)
SELECT country, customers, rentals, revenue, rank() OVER (ORDER BY customers DESC, revenue DESC)::int
FROM per_country
"""
FILMS_PER_CATEGORY = """
SELECT c.name, count(DISTINCT fc.film_id) FROM ok_category c LEFT JOIN ok_film_category fc USING (category_id)
GROUP BY c.name
"""


def source_dsn(database: str) -> str:
    return f"host={local_stack.PG_HOST} port={local_stack.PG_PORT} user={local_stack.PG_USER} dbname={database}"


def source_query(database: str, *sqls: str) -> list[list[tuple]]:
    """Run each query on the source after defining the ``kept_<table>`` and ``ok_<table>`` views."""
    import psycopg2

    conn = psycopg2.connect(source_dsn(database))
    try:
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            for table in SOURCE_TABLES:  # parents first
                cur.execute(f"CREATE TEMP VIEW kept_{table} AS {kept_sql(table)}")
                cur.execute(f"CREATE TEMP VIEW ok_{table} AS SELECT DISTINCT * FROM kept_{table}")
            results = []
            for sql in sqls:
                cur.execute(sql)
                results.append(cur.fetchall())
        conn.rollback()
        return results
    finally:
        conn.close()


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
    top, films = source_query(source_db, TOP_COUNTRIES, FILMS_PER_CATEGORY)
    day = dt.date.fromisoformat(DS)
    assert first_run["gold.top_countries"] == Counter((day, *row) for row in top)
    assert first_run["gold.films_per_category"] == Counter((day, *row) for row in films)
    assert sum(rentals for _, _, _, rentals, _, _ in first_run["gold.top_countries"]) > 0
    [[(late,)]] = source_query(source_db, f"SELECT count(*) FROM ok_payment JOIN ok_rental r USING (rental_id) "
                                          f"WHERE NOT {INTERVAL.format(col='r.rental_date')}")  # fmt: skip
    assert late > 0, "some of the day's accepted payments are for rentals of earlier days"


def test_every_source_row_is_accounted_for(first_run, source_db):
    queries = [
        f"SELECT count(*), (SELECT count(*) FROM kept_{t}), (SELECT count(*) FROM ok_{t}) FROM {t}"
        + (f" WHERE {SLICE[t]}" if t in SLICE else "")
        for t in SOURCE_TABLES
    ]
    results = source_query(source_db, *queries)
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
