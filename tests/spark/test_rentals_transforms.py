"""Rentals transformations: input rows beside the rows expected from them."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from decimal import Decimal

import pytest

pytestmark = pytest.mark.spark

DS = "2026-11-20"
DAY = dt.date(2026, 11, 20)
LOADED = dt.datetime(2026, 11, 21, 1, 0)
T0 = "2026-11-20 10:00:00"


def raw_rows(spark, table_name: str, rows: list[dict]):
    """A raw slice of ``table_name``: every column a string, unspecified ones NULL."""
    from lakehouse_jobs.rentals import TABLES

    table = TABLES[table_name]
    tuples = [(DAY, *[row.get(c) for c in table.columns], table_name, LOADED) for row in rows]
    return spark.createDataFrame(tuples, table.raw_schema)


def keys(spark, table_name: str, ids: list[int]):
    """Accepted rows of a parent table: only the key column matters."""
    from pyspark.sql import types as T

    from lakehouse_jobs.rentals import TABLES

    key = TABLES[table_name].key[0]
    return spark.createDataFrame([(i,) for i in ids], T.StructType([T.StructField(key, T.IntegerType())]))


def verdicts(classified, *columns: str) -> Counter:
    """The classified rows as a multiset of (columns..., kind, reason)."""
    return Counter(tuple(r[c] for c in (*columns, "kind", "reason")) for r in classified.collect())


def rental(rental_id, rental_date=T0, return_date="2026-11-22 10:00:00", customer="1", inventory="1", staff="1", **kw):
    row = {
        "rental_id": rental_id,
        "rental_date": rental_date,
        "inventory_id": inventory,
        "customer_id": customer,
        "return_date": return_date,
        "staff_id": staff,
        "last_update": "2026-11-20 10:00:00",
    }
    return {**row, **kw}


def test_to_raw_keeps_every_column_as_a_string(spark):
    from lakehouse_jobs.rentals import PAYMENT, TABLES, to_raw

    source = spark.createDataFrame(
        [
            (1, 7, 2, 10, Decimal("2.99"), dt.datetime(2026, 11, 20, 0, 0, tzinfo=dt.UTC)),
            (2, 7, 2, 11, Decimal("-0.50"), dt.datetime(2026, 11, 20, 23, 59, 59, 999999, tzinfo=dt.UTC)),
        ],
        PAYMENT,
    )
    raw = to_raw(source, TABLES["payment"], DS)
    assert [(f.name, f.dataType) for f in raw.schema] == [(f.name, f.dataType) for f in TABLES["payment"].raw_schema]
    got = sorted((r["payment_id"], r["amount"], r["payment_date"], r["_source_table"], r["ds"]) for r in raw.collect())
    assert got == [
        ("1", "2.99", "2026-11-20 00:00:00", "payment", DAY),
        ("2", "-0.50", "2026-11-20 23:59:59.999999", "payment", DAY),
    ]


def test_interval_predicate_is_the_utc_day_half_open():
    from lakehouse_jobs.rentals import interval_predicate

    assert interval_predicate("rental_date", "2026-12-31") == (
        "rental_date >= TIMESTAMPTZ '2026-12-31 00:00:00+00' AND rental_date < TIMESTAMPTZ '2027-01-01 00:00:00+00'"
    )


def test_classify_rentals_every_kind(spark):
    from lakehouse_jobs.rentals import TABLES, classify

    rows = [
        rental("1"),  # valid
        rental("1"),  # exact copy: duplicate
        rental("2", return_date=None),  # not returned yet: valid
        rental("3", return_date=T0),  # returned the moment it was rented: valid
        rental("4", return_date="2026-11-20 09:59:59"),  # returned before rented
        rental("5", customer="99"),  # no such customer
        rental("6", inventory="99"),  # no such copy
        rental("7", staff="99"),  # no such staff member
        rental(None),  # no key
        rental("x8"),  # key not a number
        rental("9", rental_date="2026-02-30 10:00:00"),  # no such day
        rental("10", rental_date=None),
        rental("11", last_update="2026-11-21 08:00:00", return_date="2026-11-21 08:00:00"),  # the latest version...
        rental("11"),  # ...wins over an older one
        rental("12", customer="99", return_date="2026-11-19 00:00:00"),  # two problems: the value check comes first
    ]
    parents = {
        "customer": keys(spark, "customer", [1, 2]),
        "inventory": keys(spark, "inventory", [1]),
        "staff": keys(spark, "staff", [1, 2]),
    }
    got = verdicts(classify(raw_rows(spark, "rental", rows), TABLES["rental"], parents), "rental_id", "last_update")
    updated, later = dt.datetime(2026, 11, 20, 10), dt.datetime(2026, 11, 21, 8)
    assert got == Counter(
        [
            (1, updated, "record", None),
            (1, updated, "duplicate", None),
            (2, updated, "record", None),
            (3, updated, "record", None),
            (4, updated, "reject", "return_before_rental"),
            (5, updated, "reject", "orphan_customer_id"),
            (6, updated, "reject", "orphan_inventory_id"),
            (7, updated, "reject", "orphan_staff_id"),
            (None, updated, "reject", "missing_rental_id"),
            (None, updated, "reject", "bad_rental_id"),
            (9, updated, "reject", "bad_rental_date"),
            (10, updated, "reject", "missing_rental_date"),
            (11, later, "record", None),
            (11, updated, "duplicate", None),
            (12, updated, "reject", "return_before_rental"),
        ]
    )


def test_classify_payments(spark):
    from lakehouse_jobs.rentals import TABLES, classify

    def payment(payment_id, amount="2.99", rental_id="1", customer="1"):
        return {
            "payment_id": payment_id,
            "customer_id": customer,
            "staff_id": "1",
            "rental_id": rental_id,
            "amount": amount,
            "payment_date": T0,
        }

    rows = [
        payment("1"),
        payment("1"),  # re-delivered
        payment("2", amount="0.00"),  # free rentals exist
        payment("3", amount="-2.99"),
        payment("4", rental_id="99"),  # no such rental
        payment("5", customer="99"),
        payment("6", amount="2,99"),
        payment("7", amount="-1.00", rental_id="99"),  # an impossible value is reported before an orphan
    ]
    parents = {
        "rental": keys(spark, "rental", [1]),
        "customer": keys(spark, "customer", [1]),
        "staff": keys(spark, "staff", [1]),
    }
    got = verdicts(classify(raw_rows(spark, "payment", rows), TABLES["payment"], parents), "payment_id", "amount")
    assert got == Counter(
        [
            (1, Decimal("2.99"), "record", None),
            (1, Decimal("2.99"), "duplicate", None),
            (2, Decimal("0.00"), "record", None),
            (3, Decimal("-2.99"), "reject", "negative_amount"),
            (4, Decimal("2.99"), "reject", "orphan_rental_id"),
            (5, Decimal("2.99"), "reject", "orphan_customer_id"),
            (6, None, "reject", "bad_amount"),
            (7, Decimal("-1.00"), "reject", "negative_amount"),
        ]
    )


def test_orphans_cascade_through_rejected_parents(spark):
    """A city of a lost country is refused, and so is an address in that city: parents are the accepted rows."""
    from lakehouse_jobs.rentals import TABLES, accepted, classify

    stamp = "2026-01-01 00:00:00"
    countries = raw_rows(spark, "country", [{"country_id": "1", "country": "Japan", "last_update": stamp}])
    cities = raw_rows(
        spark,
        "city",
        [
            {"city_id": "10", "city": "Osaka", "country_id": "1", "last_update": stamp},
            {"city_id": "11", "city": "Atlantis", "country_id": "404", "last_update": stamp},
        ],
    )
    address = {"address": "1 Way", "district": "D", "phone": "1", "last_update": stamp}
    addresses = raw_rows(
        spark,
        "address",
        [{**address, "address_id": "100", "city_id": "10"}, {**address, "address_id": "101", "city_id": "11"}],
    )
    country_ok = accepted(classify(countries, TABLES["country"], {}), TABLES["country"])
    city = classify(cities, TABLES["city"], {"country": country_ok})
    assert verdicts(city, "city_id") == Counter([(10, "record", None), (11, "reject", "orphan_country_id")])
    address_result = classify(addresses, TABLES["address"], {"city": accepted(city, TABLES["city"])})
    assert verdicts(address_result, "address_id") == Counter([(100, "record", None), (101, "reject", "orphan_city_id")])


def test_rejects_carry_table_key_reason_and_the_record_as_received(spark):
    from lakehouse_jobs.rentals import TABLES, classify, rejected

    rows = [{"film_id": "5", "category_id": "404", "last_update": "2026-01-01 00:00:00"}]
    parents = {"film": keys(spark, "film", [5]), "category": keys(spark, "category", [1])}
    out = rejected(
        classify(raw_rows(spark, "film_category", rows), TABLES["film_category"], parents), TABLES["film_category"]
    )
    (row,) = out.collect()
    assert (row["ds"], row["table_name"], row["reason"]) == (DAY, "film_category", "orphan_category_id")
    assert json.loads(row["record_key"]) == {"film_id": "5", "category_id": "404"}
    assert json.loads(row["record"]) == rows[0]


def test_reconciliation_must_add_up():
    from lakehouse_jobs.rentals import Reconciliation

    ok = Reconciliation(raw=10, accepted=7, duplicates=1, rejects=2, table="rental")
    ok.check()
    assert ok.reject_ratio == pytest.approx(0.2)
    with pytest.raises(AssertionError, match="lost in bronze"):
        Reconciliation(raw=10, accepted=7, duplicates=1, rejects=1, table="rental").check()


def test_a_payment_first_seen_on_a_refused_row_is_kept(spark):
    """Validate first, de-duplicate after: computed in Python from generated rows, checked on what bronze writes."""
    import random

    from lakehouse_jobs.rentals import TABLES, layer

    rng = random.Random(11)
    rows = []
    for _ in range(200):
        amount = rng.choice(["2.99", "0.99", "-1.00", "x"])
        stamp = f"2026-11-20 {rng.randint(10, 12)}:00:00"
        rows.append({"payment_id": str(rng.randint(1, 40)), "customer_id": "1", "staff_id": "1",
                     "rental_id": "1", "amount": amount, "payment_date": stamp})  # fmt: skip

    def valid(row) -> bool:
        return row["amount"] in ("2.99", "0.99")

    # No last_update: the first version of a payment is the smallest record as received (its JSON, column order).
    def as_json(row) -> str:
        return json.dumps({c: row[c] for c in TABLES["payment"].columns}, separators=(",", ":"))

    want: dict[int, str] = {}
    for row in sorted((r for r in rows if valid(r)), key=as_json):
        want.setdefault(int(row["payment_id"]), row["amount"])
    first_seen = {}
    for row in rows:
        first_seen.setdefault(int(row["payment_id"]), row)
    assert any(not valid(first_seen[key]) for key in want)  # some payment's first row is refused

    parents = {"rental": keys(spark, "rental", [1]), "customer": keys(spark, "customer", [1]),
               "staff": keys(spark, "staff", [1])}  # fmt: skip
    payments = layer(TABLES["payment"], parents)
    records = payments.records(payments.parse(raw_rows(spark, "payment", rows))).collect()
    got = {r["payment_id"]: str(r["amount"]) for r in records}
    assert got == want


def test_top_countries_counts_customers_by_country_not_city(spark):
    from pyspark.sql import types as T

    from lakehouse_jobs.rentals import PAYMENT, RENTAL, customer_countries, top_countries

    def frame(schema_fields, rows):
        return spark.createDataFrame(rows, T.StructType([T.StructField(n, t) for n, t in schema_fields]))

    i, s, d = T.IntegerType(), T.StringType(), T.DateType()
    country = frame([("country_id", i), ("country", s)], [(1, "Japan"), (2, "Chile"), (3, "Peru"), (4, "Nauru")])
    # Japan: 3 customers in 2 cities; Chile: 1 customer; Peru: 3 customers in 1 city; Nauru: a city, no address.
    city = frame([("city_id", i), ("country_id", i)], [(10, 1), (11, 1), (20, 2), (30, 3), (40, 4)])
    address = frame([("address_id", i), ("city_id", i)], [(100, 10), (101, 10), (102, 11), (200, 20), (300, 30)])
    joined = dt.date(2026, 1, 1)
    customer = frame(
        [("customer_id", i), ("address_id", i), ("create_date", d)],
        [(c, a, joined) for c, a in [(1, 100), (2, 101), (3, 102), (4, 200), (5, 300), (6, 300), (7, 300)]],
    )
    at = dt.datetime(2026, 11, 20, 12)
    rentals = spark.createDataFrame(
        [(r, at, 1, c, None, 1, at) for r, c in [(1, 1), (2, 1), (3, 3), (4, 4), (5, 5)]],
        RENTAL,
    )
    payments = spark.createDataFrame(
        [(p, c, 1, p, Decimal(a), at) for p, c, a in [(1, 1, "2.99"), (2, 3, "4.99"), (3, 4, "0.99"), (5, 5, "0.99")]],
        PAYMENT,
    )
    places = customer_countries(customer, address, city, country)
    got = [tuple(r) for r in top_countries(places, rentals, payments, DS).collect()]
    assert got == [
        (DAY, "Japan", 3, 3, Decimal("7.98"), 1),
        (DAY, "Peru", 3, 1, Decimal("0.99"), 2),  # as many customers as Japan, less revenue
        (DAY, "Chile", 1, 1, Decimal("0.99"), 3),
    ]


def test_top_countries_ties_share_a_rank_and_quiet_countries_count_zero(spark):
    from pyspark.sql import types as T

    from lakehouse_jobs.rentals import PAYMENT, RENTAL, top_countries

    places = spark.createDataFrame(
        [(c, country, DAY) for c, country in [(1, "Chile"), (2, "Peru"), (3, "Japan"), (4, "Japan")]],
        T.StructType(
            [
                T.StructField("customer_id", T.IntegerType()),
                T.StructField("country", T.StringType()),
                T.StructField("create_date", T.DateType()),
            ]
        ),
    )
    got = [
        tuple(r)
        for r in top_countries(
            places, spark.createDataFrame([], RENTAL), spark.createDataFrame([], PAYMENT), DS
        ).collect()
    ]
    assert got == [
        (DAY, "Japan", 2, 0, Decimal("0.00"), 1),
        (DAY, "Chile", 1, 0, Decimal("0.00"), 2),
        (DAY, "Peru", 1, 0, Decimal("0.00"), 2),
    ]


def test_films_per_category(spark):
    from pyspark.sql import types as T

    from lakehouse_jobs.rentals import films_per_category

    i = T.IntegerType()
    category = spark.createDataFrame(
        [(1, "Action"), (2, "Comedy"), (3, "Horror")],
        T.StructType([T.StructField("category_id", i), T.StructField("name", T.StringType())]),
    )
    # Film 7 is in two categories; Horror has none.
    film_category = spark.createDataFrame(
        [(7, 1), (8, 1), (7, 2)], T.StructType([T.StructField("film_id", i), T.StructField("category_id", i)])
    )
    got = [tuple(r) for r in films_per_category(category, film_category, DS).collect()]
    assert got == [(DAY, "Action", 2), (DAY, "Comedy", 1), (DAY, "Horror", 0)]
