"""The rentals dbt models (staging and marts) built and tested on a throwaway PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from dbt_harness import PG_DSN, built_project, dbt_build, failed_nodes, gold_database, outcome, query

SELECT = ["stg_top_countries+", "stg_films_per_category+"]

# The gold tables as the serving loader creates them.
GOLD_DDL = """
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


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    with built_project(tmp_path_factory.mktemp("dbt"), GOLD_DDL, GOLD_ROWS, SELECT, prefix="dbt_rentals") as built:
        yield built


def test_models_and_tests_pass(built):
    models, tests = outcome(built[1])
    assert models == {"stg_top_countries", "stg_films_per_category", "rentals_by_country", "film_categories"}
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
    with gold_database(GOLD_DDL, broken, prefix="dbt_rentals") as database:
        proc, statuses = dbt_build(database, tmp_path, SELECT)
    assert proc.returncode != 0
    assert failed_nodes(statuses) == {"assert_country_ranks_follow_customers"}


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
