"""The rentals dbt models (staging and marts) built and tested on a throwaway PostgreSQL database."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DBT_PROJECT = ROOT / "include" / "dbt"
DBT = Path(os.environ.get("LAKEHOUSE_DBT_VENV", ROOT / ".venv-dbt")) / "bin" / "dbt"
PG_DSN = os.environ.get("LAKEHOUSE_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
SELECT = ["stg_top_countries+", "stg_films_per_category+"]

# The gold tables as the serving loader creates them.
GOLD_DDL = """
create schema gold;
create table gold.top_countries (
    ds date, country text, customers bigint, rentals bigint, revenue numeric(18, 2), rank integer,
    _loaded_at timestamptz
);
create table gold.films_per_category (ds date, category text, films bigint, _loaded_at timestamptz);
"""
D19, D20 = date(2026, 11, 19), date(2026, 11, 20)
LOADED = datetime(2026, 11, 21, 23, 30, tzinfo=UTC)

GOLD_ROWS = {
    "top_countries": [
        (D19, "Japan", 3, 5, Decimal("10.00"), 1, LOADED),
        (D19, "Chile", 1, 2, Decimal("3.00"), 2, LOADED),
        (D19, "Nauru", 1, 1, Decimal("0.99"), 3, LOADED),  # its customer moved away before the 20th
        (D20, "Japan", 3, 4, Decimal("8.00"), 1, LOADED),
        (D20, "Chile", 2, 1, Decimal("1.00"), 2, LOADED),
        (D20, "Peru", 1, 0, Decimal("0.00"), 3, LOADED),
    ],
    "films_per_category": [
        (D19, "Action", 2, LOADED),
        (D19, "Comedy", 1, LOADED),
        (D20, "Action", 3, LOADED),
        (D20, "Comedy", 1, LOADED),
        (D20, "Horror", 0, LOADED),
    ],
}
# Worked out by hand: customers from the latest slice, rentals and revenue summed, ranked by customers then revenue.
EXPECTED_BY_COUNTRY = [
    ("Japan", 3, 9, Decimal("18.00"), 2, D20, 1),
    ("Chile", 2, 3, Decimal("4.00"), 2, D20, 2),
    ("Peru", 1, 0, Decimal("0.00"), 1, D20, 3),
    ("Nauru", 0, 1, Decimal("0.99"), 1, D20, 4),
]
EXPECTED_CATEGORIES = [("Action", 3, D20), ("Comedy", 1, D20), ("Horror", 0, D20)]


@contextmanager
def gold_database(rows: dict[str, list[tuple]]) -> Iterator[str]:
    """A fresh database holding the rentals gold tables with ``rows``, dropped afterwards."""
    import psycopg2

    name = f"dbt_rentals_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(PG_DSN)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg2.connect(PG_DSN, dbname=name) as conn, conn.cursor() as cur:
            cur.execute(GOLD_DDL)
            for table, table_rows in rows.items():
                marks = ", ".join(["%s"] * len(table_rows[0]))
                cur.executemany(f"INSERT INTO gold.{table} VALUES ({marks})", table_rows)
        conn.close()
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def dbt_build(database: str, work: Path) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """`dbt build` of the rentals models and their tests into ``database``; each node's status."""
    from psycopg2.extensions import parse_dsn

    assert DBT.exists(), f"{DBT} is missing: run scripts/dbt_setup.sh first"
    dsn = parse_dsn(PG_DSN)
    profile = {
        "type": "postgres",
        "host": dsn.get("host", "127.0.0.1"),
        "port": int(dsn.get("port", 5432)),
        "user": dsn.get("user", "postgres"),
        "password": dsn.get("password", ""),
        "dbname": database,
        "schema": "gold",
        "threads": 2,
    }
    (work / "profiles.yml").write_text(json.dumps({"lakehouse": {"target": "test", "outputs": {"test": profile}}}))
    proc = subprocess.run(
        [str(DBT), "build", "--select", *SELECT, "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(work)]
        + ["--target-path", str(work / "target"), "--log-path", str(work / "logs")],
        capture_output=True,
        text=True,
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        timeout=600,
    )
    results = json.loads((work / "target" / "run_results.json").read_text())["results"]
    return proc, {r["unique_id"]: r["status"] for r in results}


def query(database: str, sql: str) -> list[tuple]:
    import psycopg2

    conn = psycopg2.connect(PG_DSN, dbname=database)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    with gold_database(GOLD_ROWS) as database:
        proc, statuses = dbt_build(database, tmp_path_factory.mktemp("dbt"))
        assert proc.returncode == 0, f"dbt build failed:\n{proc.stdout}\n{proc.stderr}"
        yield database, statuses


def test_models_and_tests_pass(built):
    _, statuses = built
    models = {uid.split(".")[-1] for uid, s in statuses.items() if uid.startswith("model.") and s == "success"}
    assert models == {"stg_top_countries", "stg_films_per_category", "rentals_by_country", "film_categories"}
    tests = {uid: s for uid, s in statuses.items() if uid.startswith("test.")}
    assert len(tests) >= 20 and set(tests.values()) == {"pass"}
    assert "test.lakehouse.assert_country_ranks_follow_customers" in tests


def test_rentals_by_country(built):
    database, _ = built
    rows = query(
        database,
        "SELECT country, customers, rentals, revenue, days, latest_ds, country_rank FROM marts.rentals_by_country "
        "ORDER BY country_rank",
    )
    assert rows == EXPECTED_BY_COUNTRY


def test_film_categories(built):
    database, _ = built
    assert query(database, "SELECT category, films, ds FROM marts.film_categories ORDER BY category") == (
        EXPECTED_CATEGORIES
    )


def test_a_rank_against_the_customer_counts_fails_the_build(tmp_path):
    broken = {**GOLD_ROWS, "top_countries": [*GOLD_ROWS["top_countries"][:-1], (D20, "Peru", 5, 0, 0, 3, LOADED)]}
    with gold_database(broken) as database:
        proc, statuses = dbt_build(database, tmp_path)
    assert proc.returncode != 0
    failed = {uid.split(".")[2] for uid, status in statuses.items() if status in ("fail", "error")}
    assert failed == {"assert_country_ranks_follow_customers"}


def test_the_rentals_dashboard_queries_run_on_the_built_marts(built):
    import psycopg2

    from include.metabase.specs import DASHBOARDS_DIR, load_dashboard

    database, _ = built
    dashboard = load_dashboard(DASHBOARDS_DIR / "rentals_by_country.yml")
    assert dashboard.name == "Rentals by country"

    conn = psycopg2.connect(PG_DSN, dbname=database)
    try:
        for card in dashboard.cards:
            with conn.cursor() as cur:
                cur.execute(card.sql)
                columns = [d.name for d in cur.description]
                assert cur.fetchall(), card.name
            for key in ("graph.dimensions", "graph.metrics"):
                assert set(card.visualization_settings.get(key, [])) <= set(columns), card.name
    finally:
        conn.close()
