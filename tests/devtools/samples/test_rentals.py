"""The DVD-rental database generator: determinism, spread over days, and the defects bronze must refuse."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

import pytest

from devtools import local_stack
from devtools.samples.rentals import TABLES, RentalsOptions, generate_rentals_db, main

pytestmark = pytest.mark.integration

OPTIONS = RentalsOptions(rentals=1500, seed=11, start=dt.date(2026, 3, 28), days=3)


def dsn(name: str) -> str:
    return f"host={local_stack.PG_HOST} port={local_stack.PG_PORT} user={local_stack.PG_USER} dbname={name}"


@pytest.fixture
def database():
    name = f"rentals_gen_{uuid.uuid4().hex[:8]}"
    local_stack.recreate_database(name)
    yield name
    local_stack.drop_database(name)


def query(name: str, sql: str) -> list[tuple]:
    import psycopg2

    conn = psycopg2.connect(dsn(name))
    try:
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def fingerprint(name: str) -> dict[str, str]:
    """A digest of every table's rows in a fixed order."""
    return {
        table: hashlib.sha256(repr(query(name, f"SELECT * FROM {table} ORDER BY 1, 2")).encode()).hexdigest()
        for table in TABLES
    }


def test_same_options_same_rows_and_a_rerun_replaces_the_tables(database):
    first = generate_rentals_db(dsn(database), OPTIONS)
    digest = fingerprint(database)
    assert generate_rentals_db(dsn(database), OPTIONS) == first
    assert fingerprint(database) == digest
    other = generate_rentals_db(dsn(database), RentalsOptions(rentals=1500, seed=12, start=OPTIONS.start, days=3))
    assert other.keys() == first.keys() and fingerprint(database)["rental"] != digest["rental"]


def test_rentals_spread_over_the_days_with_their_edges(database):
    counts = generate_rentals_db(dsn(database), OPTIONS)
    days = query(
        database,
        "SELECT rental_date::date, count(DISTINCT rental_id), min(rental_date)::time, max(rental_date)::time "
        "FROM rental GROUP BY 1 ORDER BY 1",
    )
    assert [d for d, *_ in days] == [dt.date(2026, 3, 28), dt.date(2026, 3, 29), dt.date(2026, 3, 30)]
    assert sum(n for _, n, _, _ in days) == OPTIONS.rentals
    assert all(lo == dt.time(0) and hi == dt.time(23, 59, 59, 999999) for _, _, lo, hi in days)
    assert counts["rental"] == counts["payment"] > OPTIONS.rentals  # re-delivered copies on top
    same_day = query(
        database,
        "SELECT count(*) FROM payment p JOIN rental r USING (rental_id) "
        "WHERE p.payment_date::date <> r.rental_date::date",
    )
    assert same_day == [(0,)]


def test_the_defects_are_there_and_the_source_declares_its_rules(database):
    generate_rentals_db(dsn(database), OPTIONS)
    defects = {
        "orphan city": "SELECT count(*) FROM city WHERE country_id NOT IN (SELECT country_id FROM country)",
        "orphan address": "SELECT count(*) FROM address WHERE city_id NOT IN (SELECT city_id FROM city)",
        "orphan customer": "SELECT count(*) FROM customer WHERE address_id NOT IN (SELECT address_id FROM address)",
        "orphan copy": "SELECT count(*) FROM inventory WHERE film_id NOT IN (SELECT film_id FROM film)",
        "rental of nobody": "SELECT count(*) FROM rental WHERE customer_id NOT IN (SELECT customer_id FROM customer)",
        "returned early": "SELECT count(*) FROM rental WHERE return_date < rental_date",
        "negative payment": "SELECT count(*) FROM payment WHERE amount < 0",
        "payment of nothing": "SELECT count(*) FROM payment WHERE rental_id NOT IN (SELECT rental_id FROM rental)",
        "re-delivered rental": "SELECT count(*) - count(DISTINCT rental_id) FROM rental",
        "re-delivered payment": "SELECT count(*) - count(DISTINCT payment_id) FROM payment",
    }
    found = {name: query(database, sql)[0][0] for name, sql in defects.items()}
    assert all(n > 0 for n in found.values()), found
    constraints = dict(
        query(database, "SELECT conname, convalidated FROM pg_constraint WHERE contype IN ('f', 'c') ORDER BY 1")
    )
    assert constraints["rental_customer_id_fkey"] is False  # declared, NOT VALID: the old rows break it
    assert constraints["payment_amount_not_negative"] is False


def test_cli_creates_the_database_and_leaves_a_seeded_one_alone(database):
    name = f"{database}_cli"
    args = ["--dsn", dsn(name), "--rentals", "300", "--seed", "3", "--start-date", "2026-03-28", "--days", "2"]
    try:
        main([*args, "--create-database", "--skip-if-seeded"])
        before = fingerprint(name)
        main([*args[:3], "900", *args[4:], "--create-database", "--skip-if-seeded"])
        assert fingerprint(name) == before  # a bigger size would have changed every table
    finally:
        local_stack.drop_database(name)
