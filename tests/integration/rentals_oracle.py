"""What a rentals day's bronze and gold must hold, written from the issue's rules as SQL on the source database.

Shared by the rentals DAG test (one day) and the backfill test (days run out of order); imported like served_rows.
A row is kept when every row it references is itself kept and its values are possible; rental and payment only in
the day's interval. ``kept_<t>`` has re-delivered copies too, ``ok_<t>`` has each row once. Some payments are taken
when the copy comes back, days after its rental: a day's rentals are the interval's and those its payments are for.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from devtools import local_stack

SOURCE_TABLES = (  # parents first
    *("country", "city", "address", "category", "film", "film_category"),
    *("store", "staff", "inventory", "customer", "rental", "payment"),
)
GOLD = ("gold.top_countries", "gold.films_per_category")
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


def interval(column: str, day: str) -> str:
    """``column`` in the UTC day ``day`` (the run's data interval)."""
    end = dt.date.fromisoformat(day) + dt.timedelta(days=1)
    return f"{column} >= TIMESTAMPTZ '{day} 00:00:00+00' AND {column} < TIMESTAMPTZ '{end} 00:00:00+00'"


def slices(day: str) -> dict[str, str]:
    """The source rows of the day's slice, for the two tables read by interval (the others are read whole)."""
    paid_for = f"rental_id IN (SELECT rental_id FROM payment WHERE {interval('payment_date', day)})"
    return {"rental": f"({interval('rental_date', day)} OR {paid_for})", "payment": interval("payment_date", day)}


def kept_sql(table: str, day: str) -> str:
    """The rows of ``table`` bronze must keep for ``day`` (re-delivered copies included); keys are ``<parent>_id``."""
    conditions = {
        "rental": [slices(day)["rental"], "(return_date IS NULL OR return_date >= rental_date)"],
        "payment": [slices(day)["payment"], "amount >= 0"],
    }
    where = [f"{parent}_id IN (SELECT {parent}_id FROM ok_{parent})" for parent in REFERENCES.get(table, [])]
    where += conditions.get(table, [])
    return f"SELECT * FROM {table}" + (f" WHERE {' AND '.join(where)}" if where else "")


def top_countries_sql(day: str) -> str:
    """Per country: customers created by the day's end, rentals rented in it, the revenue of its payments, rank."""
    return f"""
WITH place AS (
    SELECT c.customer_id, c.create_date, co.country
    FROM ok_customer c
    JOIN ok_address a ON a.address_id = c.address_id
    JOIN ok_city ci ON ci.city_id = a.city_id
    JOIN ok_country co ON co.country_id = ci.country_id
),
customers AS (SELECT country, count(*) AS n FROM place WHERE create_date <= DATE '{day}' GROUP BY country),
rentals AS (
    SELECT p.country, count(*) AS n FROM ok_rental r JOIN place p USING (customer_id)
    WHERE {interval("r.rental_date", day)} GROUP BY p.country
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


def source_query(database: str, day: str, *sqls: str) -> list[list[tuple]]:
    """Run each query on the source after defining the day's ``kept_<table>`` and ``ok_<table>`` views."""
    import psycopg2

    conn = psycopg2.connect(source_dsn(database))
    try:
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            for table in SOURCE_TABLES:
                cur.execute(f"CREATE TEMP VIEW kept_{table} AS {kept_sql(table, day)}")
                cur.execute(f"CREATE TEMP VIEW ok_{table} AS SELECT DISTINCT * FROM kept_{table}")
            results = []
            for sql in sqls:
                cur.execute(sql)
                results.append(cur.fetchall())
        conn.rollback()
        return results
    finally:
        conn.close()


def expected_gold(database: str, day: str) -> dict[str, Counter]:
    """The day's slice of each rentals gold table as a multiset of rows (``ds`` first, no ``_loaded_at``)."""
    top, films = source_query(database, day, top_countries_sql(day), FILMS_PER_CATEGORY)
    ds = dt.date.fromisoformat(day)
    return {
        "gold.top_countries": Counter((ds, *row) for row in top),
        "gold.films_per_category": Counter((ds, *row) for row in films),
    }


def late_payments(database: str, day: str) -> int:
    """The day's accepted payments for rentals rented on an earlier day."""
    earlier = f"NOT {interval('r.rental_date', day)}"
    sql = f"SELECT count(*) FROM ok_payment JOIN ok_rental r USING (rental_id) WHERE {earlier}"
    [[(count,)]] = source_query(database, day, sql)
    return count
