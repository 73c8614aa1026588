"""Rentals: a day's gold is a function of the source and its interval, whatever days were loaded before.

The source rows come from the sample generator; the slice holds what the source read must deliver for the day
(the interval's rentals and payments, the rentals those payments are for by key, the reference tables whole),
and the expected figures are worked out in plain Python from the same rows.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from decimal import Decimal

import pytest

pytestmark = pytest.mark.spark

START = dt.date(2026, 11, 18)
DS = "2026-11-20"  # the third day: the two before it are never loaded
DAY = dt.date.fromisoformat(DS)
INTERVAL = (dt.datetime(2026, 11, 20, tzinfo=dt.UTC), dt.datetime(2026, 11, 21, tzinfo=dt.UTC))
# Column positions in the generator's rows (Pagila's column order).
PARENTS = {  # table: [(column position, parent table)]
    "city": [(2, "country")],
    "address": [(4, "city")],
    "store": [(2, "address")],
    "staff": [(3, "address"), (5, "store")],
    "inventory": [(1, "film"), (2, "store")],
    "customer": [(5, "address"), (1, "store")],
    "rental": [(2, "inventory"), (3, "customer"), (5, "staff")],
    "payment": [(3, "rental"), (1, "customer"), (2, "staff")],
}


def in_interval(moment: dt.datetime) -> bool:
    return INTERVAL[0] <= moment < INTERVAL[1]


@pytest.fixture(scope="module")
def source():
    from devtools.samples.rentals import RentalsOptions, generate_rows

    return generate_rows(RentalsOptions(rentals=900, seed=3, start=START, days=3, pay_on_return_every=3))


def slice_of(source) -> dict[str, list[tuple]]:
    """What the source read of DS delivers: interval rows, the rentals its payments are for, the rest whole."""
    payments = [p for p in source["payment"] if in_interval(p[5])]
    paid_for = {p[3] for p in payments}
    rentals = [r for r in source["rental"] if in_interval(r[1]) or r[0] in paid_for]
    return {**source, "rental": rentals, "payment": payments}


def expected_top_countries(rows: dict[str, list[tuple]]) -> list[tuple]:
    """(country, customers, rentals, revenue, rank) by the rules, in Python."""
    valid: dict[str, dict[int, tuple]] = {}
    for table in ("country", "city", "address", "category", "film", "store", "staff", "inventory", "customer"):
        valid[table] = {
            row[0]: row for row in rows[table] if all(row[i] in valid[p] for i, p in PARENTS.get(table, []))
        }
    valid["rental"] = {
        r[0]: r
        for r in rows["rental"]
        if all(r[i] in valid[p] for i, p in PARENTS["rental"]) and (r[4] is None or r[4] >= r[1])
    }
    payments = {p[0]: p for p in rows["payment"] if all(p[i] in valid[q] for i, q in PARENTS["payment"]) and p[4] >= 0}
    city_country = {c[0]: valid["country"][c[2]][1] for c in valid["city"].values()}
    country_of = {c[0]: city_country[valid["address"][c[5]][4]] for c in valid["customer"].values()}
    customers = Counter(country_of[c[0]] for c in valid["customer"].values() if c[7] <= DAY)
    rentals = Counter(country_of[r[3]] for r in valid["rental"].values() if in_interval(r[1]))
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    for p in payments.values():
        revenue[country_of[p[1]]] += p[4]
    figures = [(c, customers[c], rentals[c], revenue[c]) for c in set(customers) | set(rentals) | set(revenue)]
    ordered = sorted(figures, key=lambda f: (-f[1], -f[3]))
    ranks = {f: 1 + sum(1 for g in ordered if (g[1], g[3]) > (f[1], f[3])) for f in ordered}
    return sorted((*f, ranks[f]) for f in figures)


def gold_of(spark, rows: dict[str, list[tuple]]) -> list[tuple]:
    from lakehouse_jobs.rentals import SOURCE_TABLES, customer_countries, layer, parse_slice, to_raw, top_countries

    raws = {t.name: to_raw(spark.createDataFrame(rows[t.name], t.schema), t, DS) for t in SOURCE_TABLES}
    parsed = parse_slice(raws)
    bronze = {t.name: layer(t, {}).records(parsed[t.name]) for t in SOURCE_TABLES}
    places = customer_countries(bronze["customer"], bronze["address"], bronze["city"], bronze["country"])
    gold = top_countries(places, bronze["rental"], bronze["payment"], DS)
    return sorted((r["country"], r["customers"], r["rentals"], r["revenue"], r["rank"]) for r in gold.collect())


def test_payments_for_rentals_of_days_never_loaded_count_in_revenue(spark, source):
    rows = slice_of(source)
    late = [p for p in rows["payment"] if p[3] in {r[0] for r in rows["rental"] if not in_interval(r[1])}]
    assert len(late) >= 10, "the sample has payments on DS for rentals of the days before"
    late_revenue = sum(p[4] for p in late if p[4] >= 0)
    want = expected_top_countries(rows)
    assert sum(r[3] for r in want) > late_revenue > 0
    assert gold_of(spark, rows) == want


def test_customers_are_those_created_by_the_day(spark):
    """A customer who joined after DS is not counted in DS's gold; the rentals and revenue are the slice's."""
    from pyspark.sql import types as T

    from lakehouse_jobs.rentals import PAYMENT, RENTAL, top_countries

    places = spark.createDataFrame(
        [(1, "Chile", dt.date(2026, 1, 1)), (2, "Chile", DAY), (3, "Chile", DAY + dt.timedelta(days=1)),
         (4, "Peru", dt.date(2026, 12, 1))],
        T.StructType([T.StructField("customer_id", T.IntegerType()), T.StructField("country", T.StringType()),
                      T.StructField("create_date", T.DateType())]),
    )  # fmt: skip
    earlier, during = dt.datetime(2026, 11, 19, 23, tzinfo=dt.UTC), dt.datetime(2026, 11, 20, 23, tzinfo=dt.UTC)
    rentals = spark.createDataFrame([(1, earlier, 1, 1, None, 1, earlier), (2, during, 1, 4, None, 1, during)], RENTAL)
    payments = spark.createDataFrame([(1, 1, 1, 1, Decimal("2.99"), during)], PAYMENT)
    got = [tuple(r) for r in top_countries(places, rentals, payments, DS).collect()]
    # Chile: customers 1 and 2 (3 joined the day after), the rental of the 19th is not the slice's, its payment is.
    assert got == [(DAY, "Chile", 2, 0, Decimal("2.99"), 1), (DAY, "Peru", 0, 1, Decimal("0.00"), 2)]


def test_source_predicate_reads_the_rentals_the_intervals_payments_are_for():
    from lakehouse_jobs.rentals import TABLES, interval_predicate, source_predicate

    assert source_predicate(TABLES["customer"], DS) is None
    assert source_predicate(TABLES["payment"], DS) == interval_predicate("payment_date", DS)
    assert source_predicate(TABLES["rental"], DS) == (
        f"({interval_predicate('rental_date', DS)}) OR rental_id IN "
        f"(SELECT rental_id FROM payment WHERE {interval_predicate('payment_date', DS)})"
    )
