"""Test data for the REST API tests: generated tweets, their gold rows, test products, a MariaDB admin connection.

The gold rows are computed here from a generated list of tweets (plain Python counting, independent of the API),
loaded with ``load_slice_tidb`` in two slices, and read back through the API as a read-only MariaDB user.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.trip_cells import SCHEMA as CELLS_SCHEMA
from tests.trip_cells import cell_rows, fine_cell

MYSQL = {
    "host": os.environ.get("LAKEHOUSE_TEST_MYSQL_HOST", "127.0.0.1"),
    "port": int(os.environ.get("LAKEHOUSE_TEST_MYSQL_PORT", "3306")),
    "user": os.environ.get("LAKEHOUSE_TEST_MYSQL_USER", "root"),
    "password": os.environ.get("LAKEHOUSE_TEST_MYSQL_PASSWORD", ""),
}
API_KEY = "test-key-" + "x" * 24
OTHER_KEY = "another-key-" + "y" * 24
DS_OLD, DS_NEW = dt.date(2026, 11, 19), dt.date(2026, 11, 20)
LANGS = ["en"] * 12 + ["es"] * 4 + ["und"] * 2 + ["pt", "fr", "ja", "zh-cn"]
START = dt.datetime(2020, 3, 30, tzinfo=dt.UTC)


@contextmanager
def access_log() -> Iterator[list[logging.LogRecord]]:
    """The records the API's access log emits while the block runs."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("lakehouse.api.access")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


@dataclass(frozen=True)
class Gold:
    """Expected gold rows of one slice, computed from the tweets by counting."""

    per_hour: dict[dt.datetime, int]
    per_day: dict[dt.date, int]
    by_language: dict[str, int]


def make_tweets(seed: int, count: int) -> list[tuple[dt.datetime, str]]:
    """(created_at UTC, lang) pairs over six days, plus three languages with equal counts (ties in the order)."""
    rnd = random.Random(seed)
    tweets = [(START + dt.timedelta(seconds=rnd.randrange(6 * 86400)), rnd.choice(LANGS)) for _ in range(count)]
    tweets += [(START + dt.timedelta(hours=i), lang) for lang in ("aa", "ab", "ac") for i in range(4)]
    return tweets


def count(tweets: list[tuple[dt.datetime, str]]) -> Gold:
    return Gold(
        per_hour=dict(Counter(t.replace(minute=0, second=0, microsecond=0) for t, _ in tweets)),
        per_day=dict(Counter(t.date() for t, _ in tweets)),
        by_language=dict(Counter(lang for _, lang in tweets)),
    )


def gold_batches(ds: dt.date, gold: Gold):
    import pyarrow as pa

    def table(schema, keys, values):
        rows = len(keys)
        half = rows // 2
        arrays = [
            pa.array([ds] * rows, pa.date32()),
            pa.array(keys, schema.field(1).type),
            pa.array(values, pa.int64()),
        ]
        batch = pa.record_batch(arrays, schema=schema)
        # Two batches, so the loader's chunking is exercised.
        return schema, [batch.slice(0, half), batch.slice(half)]

    hour = pa.schema([("ds", pa.date32()), ("hour_start", pa.timestamp("us", tz="UTC")), ("tweets", pa.int64())])
    day = pa.schema([("ds", pa.date32()), ("day", pa.date32()), ("tweets", pa.int64())])
    lang = pa.schema([("ds", pa.date32()), ("lang", pa.string()), ("tweets", pa.int64())])
    return {
        "tweets_per_hour": table(hour, list(gold.per_hour), list(gold.per_hour.values())),
        "tweets_per_day": table(day, list(gold.per_day), list(gold.per_day.values())),
        "tweets_by_language": table(lang, list(gold.by_language), list(gold.by_language.values())),
    }


# A multi-slice dataset with text filters, for what the tweets tables lack: reads across slices, equality and
# substring filters on free text (quotes, wildcards, backslashes), a float range.
PRODUCTS = {
    dt.date(2026, 11, 18): [
        (1, "Red chair", "furniture", 49.5),
        (2, "50% off lamp", "lighting", 19.99),
        (3, "under_score table", "furniture", 120.0),
        (4, "Quote's sofa", "furniture", 499.0),
    ],
    dt.date(2026, 11, 19): [
        (1, "Red chair", "furniture", 45.0),
        (2, "50% off lamp", "lighting", 19.99),
        (5, "back\\slash shelf", "storage", 75.25),
        (6, "Ünïcode 日本 lamp", "lighting", 33.0),
        (7, "plain 50 lamp", "it's; DROP TABLE x", 10.0),
    ],
}


def products_dataset():
    from include.api.datasets import Column, Contains, Dataset, Equals, Range

    return Dataset(
        name="api_test_products",
        path="test/products",
        domain="test",
        summary="Products (test)",
        description="A test dataset read across slices.",
        columns=(
            Column("ds", "date", "Slice.", "2026-11-18"),
            Column("product_id", "int", "Id.", 1),
            Column("name", "str", "Name.", "Red chair"),
            Column("category", "str", "Category.", "furniture"),
            Column("price", "float", "Price.", 49.5),
        ),
        sort=(("product_id", "asc"),),
        key="product_id",
        filters=(
            Range("ds", "ds_from", "ds_to", "Slices.", ("2026-11-18", "2026-11-19"), upper_inclusive=True),
            Equals("category", "category", "Exact category.", "furniture", pattern=r"^[^\x00-\x1f]{1,64}$"),
            Contains("name", "q", "Name contains.", "lamp"),
            Range("price", "min_price", "max_price", "Price.", (10.0, 100.0), upper_inclusive=True),
        ),
        snapshot=False,
    )


def admin():
    import pymysql

    from include.serving.tidb import SESSION_DEFAULTS

    return pymysql.connect(**MYSQL, autocommit=True, local_infile=True, **SESSION_DEFAULTS)


def load_products(conn) -> None:
    import pyarrow as pa

    from include.serving.tidb import load_slice_tidb

    schema = pa.schema(
        [("ds", pa.date32()), ("product_id", pa.int64()), ("name", pa.string()), ("category", pa.string()),
         ("price", pa.float64())]
    )  # fmt: skip
    for ds, rows in PRODUCTS.items():
        columns = list(zip(*rows, strict=True))
        batch = pa.record_batch([pa.array([ds] * len(rows), pa.date32()), *map(pa.array, columns)], schema=schema)
        load_slice_tidb(conn, "api_test_products", ds, schema, 1, [batch])


# Small hand-written slices of the other domains' gold tables (Arrow types as their Spark schemas), so every
# registered route is exercised on data: decimals, nullable columns, timestamps, multi-slice reads.
def _other_gold():
    import decimal

    import pyarrow as pa

    d = decimal.Decimal
    naive = pa.timestamp("us")  # the products feed's zone-less times
    hour = dt.datetime(2024, 1, 1)
    return {
        "top_countries": (
            pa.schema([("ds", pa.date32()), ("country", pa.string()), ("customers", pa.int64()),
                       ("rentals", pa.int64()), ("revenue", pa.decimal128(18, 2)), ("rank", pa.int32())]),
            {DS_NEW: [("India", 60, 42, d("183.58"), 1), ("China", 53, 40, d("170.10"), 2),
                      ("Côte d'Ivoire", 53, 40, d("170.10"), 2), ("Chad", 1, 0, d("0.00"), 4)]},
        ),
        "films_per_category": (
            pa.schema([("ds", pa.date32()), ("category", pa.string()), ("films", pa.int64())]),
            {DS_NEW: [("Action", 64), ("Sci-Fi", 61), ("Documentary", 0)]},
        ),
        "product_master": (
            pa.schema([("ds", pa.date32()), ("department_name", pa.string()), ("sensor_serial", pa.string()),
                       ("product_name", pa.string()), ("create_at", naive), ("product_expire", naive),
                       ("shelf_life_days", pa.float64()), ("_source_file", pa.string())]),
            {DS_OLD: [("Dairy North", "SN-1", "Whole Milk 1L", hour, hour + dt.timedelta(days=88), 88.0,
                       "s3a://landing/products/2024-01-01 00-00-00.parquet")],
             DS_NEW: [("Dairy North", "SN-1", "Butter 250g", hour, hour + dt.timedelta(days=87.5), 87.5,
                       "s3a://landing/products/2024-01-01 00-00-00+fix #2.parquet"),
                      ("Bäckerei Ost", "SN-7", "Crème Fraîche 200ml", hour, hour + dt.timedelta(days=89), 89.0,
                       "s3a://landing/products/2024-01-01 00-00-00+fix #2.parquet")]},
        ),
        "products_by_department": (
            pa.schema([("ds", pa.date32()), ("department_name", pa.string()), ("day", pa.date32()),
                       ("products", pa.int64()), ("sensors", pa.int64()), ("readings", pa.int64())]),
            {DS_NEW: [("Dairy North", hour.date(), 2, 1, 2), ("Bäckerei Ost", hour.date(), 1, 1, 1)]},
        ),
        "product_shelf_life": (
            pa.schema([("ds", pa.date32()), ("shelf_life_days", pa.int32()), ("readings", pa.int64()),
                       ("products", pa.int64()), ("avg_shelf_life_days", pa.float64())]),
            {DS_NEW: [(87, 1, 1, 87.5), (88, 1, 1, 88.0), (89, 1, 1, 89.0)]},
        ),
        "products_expiring": (
            pa.schema([("ds", pa.date32()), ("department_name", pa.string()), ("within_days", pa.int32()),
                       ("as_of", naive), ("products", pa.int64()), ("readings", pa.int64())]),
            {DS_NEW: [("Dairy North", 7, hour, 0, 0), ("Dairy North", 90, hour, 2, 2),
                      ("Bäckerei Ost", 90, hour, 1, 1)]},
        ),
        **_users_and_trips_gold(),
    }  # fmt: skip


# The box of the weekly-average tests (central Prague), and the area the generated origins spread over.
TRIP_BOX = {"min_lon": 14.40, "min_lat": 50.05, "max_lon": 14.46, "max_lat": 50.10}
TRIP_DAYS = (dt.date(2025, 12, 22), dt.date(2026, 2, 15))  # eight whole ISO weeks
EMPTY_WEEK = dt.date(2026, 1, 12)  # no origin in the box that week (trips elsewhere in Prague still)
# Other regions: (centre, datasources); Prague's trips use PRAGUE_SOURCES.
PRAGUE_SOURCES = ("funny_car", "baba_car", "cheap_mobile")
OTHER_REGIONS = {"Brno": ((16.61, 49.19), ("cheap_mobile", "pt_search_app")), "Turin": ((7.68, 45.07), ("baba_car",))}


def _trip_row(region: str, moment: dt.datetime, origin: tuple, destination: tuple, source: str) -> tuple:
    import hashlib
    import math

    def cell(lon, lat):
        return f"{math.floor(lon * 100)}:{math.floor(lat * 100)}"

    trip_id = hashlib.sha256(f"{region}|{origin}|{destination}|{moment}|{source}".encode()).hexdigest()
    day = moment.date()
    bucket = moment.hour // 3 * 3
    return (
        trip_id, region, *origin, *destination, moment, source, day, day - dt.timedelta(days=day.weekday()),
        moment.hour, f"{bucket:02d}-{bucket + 3:02d}", cell(*origin), cell(*destination), *fine_cell(*origin),
        f"s3a://landing/trips/{day:%Y%m%d}.csv",
    )  # fmt: skip


def _trip_dicts(ds: dt.date, rows: list[tuple]) -> list[dict]:
    names = ("region", "origin_longitude", "origin_latitude")
    return [{"ds": ds, **dict(zip(names, r[1:4], strict=True)), "trip_date": r[8]} for r in rows]


def make_trips() -> list[tuple]:
    """Trips as gold rows (without ds): random Prague origins around TRIP_BOX, origins exactly on its edges, and
    trips of other regions."""
    rnd = random.Random(6)
    points = []
    day = TRIP_DAYS[0]
    while day <= TRIP_DAYS[1]:
        for n in range(rnd.randrange(1, 6)):
            # The day's first origin inside the box, so every week but the empty one has trips in it.
            lon = round(rnd.uniform(14.41, 14.45) if n == 0 else rnd.uniform(14.37, 14.49), 6)
            lat = round(rnd.uniform(50.06, 50.09) if n == 0 else rnd.uniform(50.02, 50.13), 6)
            if EMPTY_WEEK <= day < EMPTY_WEEK + dt.timedelta(days=7):
                lon = 14.48  # east of the box
            points.append(("Prague", day, rnd.randrange(86400), lon, lat, rnd.choice(PRAGUE_SOURCES)))
        for region, ((lon, lat), sources) in OTHER_REGIONS.items():
            if rnd.random() < 0.4:
                origin = (round(lon + rnd.uniform(-0.05, 0.05), 6), round(lat + rnd.uniform(-0.05, 0.05), 6))
                points.append((region, day, rnd.randrange(86400), *origin, rnd.choice(sources)))
        day += dt.timedelta(days=1)
    # Corners and edges are inside; a hair beyond an edge is not.
    edges = [(14.40, 50.05), (14.46, 50.10), (14.40, 50.07), (14.43, 50.10), (14.4600001, 50.07), (14.43, 50.0499999)]
    points += [
        ("Prague", dt.date(2026, 1, 7), 3600 * (i + 1), lon, lat, "funny_car") for i, (lon, lat) in enumerate(edges)
    ]
    trips = []
    for region, day, second, lon, lat, source in points:
        moment = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(seconds=second)
        trips.append(_trip_row(region, moment, (lon, lat), (round(lon + 0.01, 6), round(lat - 0.01, 6)), source))
    return trips


def _users_and_trips_gold():

    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")
    reg = dt.datetime(2015, 6, 1, 10, tzinfo=dt.UTC)
    trips = make_trips()
    return {
        "users": (
            pa.schema([("ds", pa.date32()), ("user_id", pa.string()), ("title", pa.string()),
                       ("first_name", pa.string()), ("last_name", pa.string()), ("gender", pa.string()),
                       ("email", pa.string()), ("username", pa.string()), ("date_of_birth", pa.date32()),
                       ("age", pa.int32()), ("nationality", pa.string()), ("street", pa.string()),
                       ("city", pa.string()), ("state", pa.string()), ("country", pa.string()),
                       ("postcode", pa.string()), ("latitude", pa.float64()), ("longitude", pa.float64()),
                       ("timezone_offset", pa.string()), ("registered_at", ts), ("phone", pa.string()),
                       ("cell", pa.string()), ("picture_url", pa.string()), ("first_ds", pa.date32())]),
            {DS_OLD: [("b2c3d4e5-0000-4000-8000-000000000002", "Mr", "Jean", "Dupont", "male", "jean@example.com",
                       "jdupont", dt.date(1980, 2, 29), 46, "FR", "1 rue de l'Église", "Lyon", "Rhône", "France",
                       "69001", 45.764, 4.8357, "+1:00", reg, "04-11-22-33-44", "06-11-22-33-44",
                       "https://example.com/p/2.jpg", DS_OLD)],
             DS_NEW: [("a1b2c3d4-0000-4000-8000-000000000001", "Ms", "Ana", "Silva", "female", "ana@example.com",
                       "anasilva", dt.date(1990, 4, 2), 36, "BR", "8929 Rua Dois", "Manaus", "Amazonas", "Brazil",
                       "69000-000", -3.119, -60.0217, "-4:00", reg, "(92) 3456-7890", "(92) 98765-4321",
                       "https://example.com/p/1.jpg", DS_OLD),
                      ("c3d4e5f6-0000-4000-8000-000000000003", None, "Kim", None, "female", None, None, None, None,
                       "NO", None, None, None, "Norway", None, None, None, None, None, None, None, None, DS_NEW)]},
        ),
        "user_statistics": (
            pa.schema([("ds", pa.date32()), ("gender", pa.string()), ("users", pa.int64()),
                       ("average_age", pa.float64())]),
            {DS_OLD: [("all", 1, 46.0), ("male", 1, 46.0)],
             DS_NEW: [("all", 2, 36.0), ("female", 2, 36.0)]},
        ),
        "trips": (
            pa.schema([("ds", pa.date32()), ("trip_id", pa.string()), ("region", pa.string()),
                       ("origin_longitude", pa.float64()), ("origin_latitude", pa.float64()),
                       ("destination_longitude", pa.float64()), ("destination_latitude", pa.float64()),
                       ("datetime", ts), ("datasource", pa.string()), ("trip_date", pa.date32()),
                       ("week_start", pa.date32()), ("hour_of_day", pa.int32()), ("time_bucket", pa.string()),
                       ("origin_cell", pa.string()), ("destination_cell", pa.string()),
                       ("origin_fine_x", pa.int64()), ("origin_fine_y", pa.int64()), ("source_file", pa.string())]),
            # Every week has trips in both slices: the weekly average reads across slices.
            {DS_OLD: trips[0::2], DS_NEW: trips[1::2]},
        ),
        # The cell counts of each trips slice, worked out in plain Python (tests/trip_cells.py).
        "trip_origin_cells": (
            CELLS_SCHEMA,
            {ds: [tuple(c[f.name] for f in CELLS_SCHEMA if f.name != "ds") for c in cell_rows(_trip_dicts(ds, rows))]
             for ds, rows in ((DS_OLD, trips[0::2]), (DS_NEW, trips[1::2]))},
        ),
        "trip_groups": (
            pa.schema([("ds", pa.date32()), ("region", pa.string()), ("origin_cell", pa.string()),
                       ("destination_cell", pa.string()), ("time_bucket", pa.string()),
                       ("origin_cell_longitude", pa.float64()), ("origin_cell_latitude", pa.float64()),
                       ("destination_cell_longitude", pa.float64()), ("destination_cell_latitude", pa.float64()),
                       ("trips", pa.int64()), ("datasources", pa.string()), ("first_seen", ts), ("last_seen", ts)]),
            {DS_NEW: [("Prague", "1443:5008", "1426:5010", "06-09", 14.435, 50.085, 14.265, 50.105, 3,
                       "cheap_mobile,funny_car", dt.datetime(2026, 1, 5, 6, tzinfo=dt.UTC),
                       dt.datetime(2026, 1, 9, 8, 30, tzinfo=dt.UTC)),
                      ("Turin", "767:4506", "768:4507", "18-21", 7.675, 45.065, 7.685, 45.075, 1, "baba_car",
                       dt.datetime(2026, 1, 6, 19, tzinfo=dt.UTC), dt.datetime(2026, 1, 6, 19, tzinfo=dt.UTC))]},
        ),
        "trips_weekly": (
            pa.schema([("ds", pa.date32()), ("region", pa.string()), ("week_start", pa.date32()),
                       ("days", pa.int32()), ("trips", pa.int64()), ("days_with_trips", pa.int32()),
                       ("average_trips_per_day", pa.float64())]),
            {DS_NEW: [("Prague", dt.date(2026, 1, 5), 7, 21, 6, 3.0), ("Prague", dt.date(2026, 1, 12), 3, 0, 0, 0.0),
                      ("Turin", dt.date(2026, 1, 5), 7, 1, 1, 0.1429),
                      ("Turin", dt.date(2026, 1, 12), 3, 2, 1, 0.6667)]},
        ),
    }  # fmt: skip


OTHER_GOLD = _other_gold()


def load_other_gold(conn) -> None:
    import pyarrow as pa

    from include.api.datasets import key_columns
    from include.serving.table_specs import serving_extras
    from include.serving.tidb import load_slice_tidb

    for table, (schema, slices) in OTHER_GOLD.items():
        for ds, rows in slices.items():
            columns = [[ds] * len(rows), *zip(*rows, strict=True)]
            arrays = [pa.array(list(values), field.type) for values, field in zip(columns, schema, strict=True)]
            batch = pa.record_batch(arrays, schema=schema)
            # As the serve DAG loads them: the API's key index, and the table's secondary indexes (trips: the box).
            load_slice_tidb(conn, table, ds, schema, 1, [batch], key_columns=key_columns(table),
                            indexes=serving_extras(table).indexes)  # fmt: skip
