"""The users and trips dbt models built on hand-written gold rows, their Metabase cards, and the weekly average.

The marts are built with `dbt build --select` on a throwaway PostgreSQL database with PostGIS. The expected rows
are worked out by hand from the gold rows below. The weekly-average question is run three ways on the same trips:
the Metabase card in PostgreSQL/PostGIS, the API's query in MariaDB (loaded by the real TiDB loader), and plain
Python; all three must agree.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from dbt_harness import PG_DSN, dbt_build, failed_nodes, gold_database, query

pytestmark = pytest.mark.integration

SELECT = ["stg_users+", "stg_user_statistics+", "stg_trips+", "stg_trips_daily+"]
MODELS = {
    *("stg_users", "stg_user_statistics", "stg_trips", "stg_trips_daily"),
    *("user_directory", "user_demographics", "user_age_groups", "user_statistics_daily"),
    *("trips_by_day", "trips_by_week", "trips_by_hour", "trip_facts"),
}
POINT = (
    "geometry(Point, 4326) generated always as (case when {lon} is null or {lat} is null then null"
    " else st_setsrid(st_makepoint({lon}, {lat}), 4326) end) stored"
)
# The tables as the PostgreSQL loader creates them from the Iceberg schemas (include/serving/loads.postgres_type),
# with the generated PostGIS points and GiST index it adds to gold.trips (include/serving/table_specs.py).
GOLD_DDL = f"""
create table gold.users (
    ds date, user_id text, title text, first_name text, last_name text, gender text, email text, username text,
    date_of_birth date, age integer, nationality text, street text, city text, state text, country text,
    postcode text, latitude double precision, longitude double precision, timezone_offset text,
    registered_at timestamptz, phone text, cell text, picture_url text, first_ds date, _loaded_at timestamptz
);
create table gold.user_statistics (
    ds date, gender text, users bigint, average_age double precision, _loaded_at timestamptz
);
create table gold.trips (
    ds date, trip_id text, pickup_at timestamptz, dropoff_at timestamptz, pickup_date date, passenger_count integer,
    trip_distance double precision, duration_minutes double precision, pickup_longitude double precision,
    pickup_latitude double precision, dropoff_longitude double precision, dropoff_latitude double precision,
    fare_amount numeric(10, 2), total_amount numeric(10, 2), _loaded_at timestamptz,
    pickup_geom {POINT.format(lon="pickup_longitude", lat="pickup_latitude")},
    dropoff_geom {POINT.format(lon="dropoff_longitude", lat="dropoff_latitude")}
);
create index trips__pickup_geom_gist on gold.trips using gist (pickup_geom);
create table gold.trips_daily (
    ds date, pickup_date date, trips bigint, average_distance double precision, average_fare double precision,
    total_fare numeric(18, 2), _loaded_at timestamptz
);
"""
D19, D20 = date(2026, 11, 19), date(2026, 11, 20)
LOADED = datetime(2026, 11, 21, 1, tzinfo=UTC)
REGISTERED = datetime(2015, 6, 1, 10, tzinfo=UTC)


def user(ds, user_id, gender, age, nationality, lat, lon, first="Ana", last="Silva"):
    return (
        ds, user_id, "Ms", first, last, gender, f"{user_id}@example.com", user_id, None, age, nationality,
        "1 Main St", "Town", "State", {"BR": "Brazil", "FR": "France"}.get(nationality), "12345", lat, lon, "+0:00",
        REGISTERED, "555", "556", "https://example.com/p.jpg", D19, LOADED,
    )  # fmt: skip


# U1 was seen again by the run of the 20th, which moved it to that slice; the slice of the 19th is not reloaded
# yet, so it still holds U1's older row. U5 has neither gender, nationality, age nor coordinates.
USER_ROWS = [
    user(D19, "u1", "male", 30, "BR", -3.1, -60.0, "Rui", "Costa"),
    user(D19, "u2", "female", 45, "FR", 48.85, 2.35, "Léa", "Martin"),
    user(D20, "u1", "male", 31, "BR", -3.2, -60.1, "Rui", "Costa"),
    user(D20, "u3", "male", 52, "FR", 45.76, 4.83, "Jean", None),
    user(D20, "u4", "female", 17, "BR", None, None, "Bia", "Lima"),
    user(D20, "u5", None, None, None, None, None, None, None),
]
STATISTICS_ROWS = [
    (D19, "all", 2, 37.5, LOADED),
    (D19, "female", 1, 45.0, LOADED),
    (D19, "male", 1, 30.0, LOADED),
    (D20, "all", 3, 33.33, LOADED),
    (D20, "female", 1, 17.0, LOADED),
    (D20, "male", 2, 41.5, LOADED),
]


def trip(ds, trip_id, pickup, lon, lat, distance, fare):
    pickup_at = datetime.fromisoformat(pickup).replace(tzinfo=UTC)
    minutes = 10 + int(distance * 3)
    return (
        ds, trip_id, pickup_at, pickup_at + dt.timedelta(minutes=minutes), pickup_at.date(), 1, distance,
        float(minutes), lon, lat, -73.98, 40.74, Decimal(fare), Decimal(fare) + Decimal("2.50"), LOADED,
    )  # fmt: skip


# The Metabase question's default box is lon -74.00..-73.96, lat 40.74..40.78 (Midtown), its default days
# 2026-11-01 (a Sunday) to 2026-12-31. t02 and t04 sit on the box's corners, t07 just inside its south edge; t06 and
# t09 just outside; t03 is at the airport. No trip at all in the week of 2026-11-16.
TRIP_ROWS = [
    trip(D19, "t10", "2026-11-11 22:00:00", -73.98, 40.76, 1.2, "7.00"),
    trip(D19, "t01", "2026-11-12 08:10:00", -73.985, 40.758, 2.0, "10.00"),
    trip(D19, "t02", "2026-11-12 23:30:00", -74.00, 40.74, 1.0, "6.50"),
    trip(D19, "t03", "2026-11-14 12:00:00", -73.78, 40.645, 15.0, "52.00"),
    trip(D19, "t04", "2026-11-15 09:05:00", -73.96, 40.78, 3.0, "14.00"),
    trip(D20, "t05", "2026-11-23 07:45:00", -73.99, 40.75, 1.5, "8.00"),
    trip(D20, "t06", "2026-11-25 18:20:00", -73.9599, 40.76, 4.0, "16.50"),
    trip(D20, "t07", "2026-11-29 08:55:00", -73.99, 40.7401, 2.5, "11.00"),
    trip(D20, "t08", "2026-11-30 00:15:00", -73.97, 40.77, 6.0, "21.50"),
    trip(D20, "t09", "2026-12-01 08:30:00", -73.98, 40.7399, 0.8, "5.00"),
]
# The gold job's snapshots: the 19th's run saw the first five trips, the 20th's all ten.
DAILY_19 = [
    (date(2026, 11, 11), 1, 1.2, 7.0, Decimal("7.00")),
    (date(2026, 11, 12), 2, 1.5, 8.25, Decimal("16.50")),
    (date(2026, 11, 14), 1, 15.0, 52.0, Decimal("52.00")),
    (date(2026, 11, 15), 1, 3.0, 14.0, Decimal("14.00")),
]
DAILY_20 = DAILY_19 + [
    (date(2026, 11, 23), 1, 1.5, 8.0, Decimal("8.00")),
    (date(2026, 11, 25), 1, 4.0, 16.5, Decimal("16.50")),
    (date(2026, 11, 29), 1, 2.5, 11.0, Decimal("11.00")),
    (date(2026, 11, 30), 1, 6.0, 21.5, Decimal("21.50")),
    (date(2026, 12, 1), 1, 0.8, 5.0, Decimal("5.00")),
]
GOLD_ROWS = {
    "users": USER_ROWS,
    "user_statistics": STATISTICS_ROWS,
    "trips": TRIP_ROWS,
    "trips_daily": [(D19, *row, LOADED) for row in DAILY_19] + [(D20, *row, LOADED) for row in DAILY_20],
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    with gold_database(GOLD_DDL, GOLD_ROWS, prefix="dbt_users_trips", extensions=("postgis",)) as database:
        proc, statuses = dbt_build(database, tmp_path_factory.mktemp("dbt"), SELECT)
        assert proc.returncode == 0, f"dbt build failed:\n{proc.stdout}\n{proc.stderr}"
        yield database, statuses


def test_models_and_tests_pass(built):
    _, statuses = built
    models = {uid.split(".")[-1] for uid, s in statuses.items() if uid.startswith("model.") and s == "success"}
    assert models == MODELS
    tests = {uid: s for uid, s in statuses.items() if uid.startswith("test.")}
    assert len(tests) >= 40 and set(tests.values()) == {"pass"}
    assert "test.lakehouse.assert_user_genders_add_up_to_all" in tests


def test_trip_facts_is_a_view_and_the_other_marts_tables(built):
    database, _ = built
    relations = dict(
        query(database, "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'marts'")
    )
    assert relations == {
        **{m: "BASE TABLE" for m in MODELS if not m.startswith("stg_") and m != "trip_facts"},
        "trip_facts": "VIEW",
    }
    types = query(
        database,
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = 'marts.trip_facts'::regclass AND attname IN ('pickup_geom', 'dropoff_geom') ORDER BY 1",
    )
    assert types == [("dropoff_geom", "geometry(Point,4326)"), ("pickup_geom", "geometry(Point,4326)")]


# --- users -------------------------------------------------------------------------------------------------------


def test_user_directory_keeps_the_newest_row_of_each_user(built):
    database, _ = built
    rows = query(
        database,
        "SELECT user_id, full_name, gender, age, nationality, latitude, longitude, first_ds, last_seen_ds"
        " FROM marts.user_directory ORDER BY user_id",
    )
    assert rows == [
        ("u1", "Rui Costa", "male", 31, "BR", -3.2, -60.1, D19, D20),
        ("u2", "Léa Martin", "female", 45, "FR", 48.85, 2.35, D19, D19),
        ("u3", "Jean", "male", 52, "FR", 45.76, 4.83, D19, D20),
        ("u4", "Bia Lima", "female", 17, "BR", None, None, D19, D20),
        ("u5", None, None, None, None, None, None, D19, D20),
    ]
    columns = {
        row[0]
        for row in query(
            database,
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'marts' AND table_name = 'user_directory'",
        )
    }
    assert not {c for c in columns if any(word in c for word in ("password", "salt", "md5", "sha", "hash"))}


def test_user_demographics(built):
    database, _ = built
    rows = query(
        database,
        "SELECT nationality, gender, users, average_age, min_age, max_age, share_of_users"
        " FROM marts.user_demographics ORDER BY nationality, gender",
    )
    assert rows == [
        ("BR", "female", 1, Decimal("17.00"), 17, 17, Decimal("0.2000")),
        ("BR", "male", 1, Decimal("31.00"), 31, 31, Decimal("0.2000")),
        ("FR", "female", 1, Decimal("45.00"), 45, 45, Decimal("0.2000")),
        ("FR", "male", 1, Decimal("52.00"), 52, 52, Decimal("0.2000")),
        ("unknown", "unknown", 1, None, None, None, Decimal("0.2000")),
    ]


def test_user_age_groups_cover_the_youngest_to_the_oldest(built):
    database, _ = built
    rows = query(database, "SELECT age_group_start, age_group, users FROM marts.user_age_groups ORDER BY 1")
    assert rows == [(10, "10-19", 1), (20, "20-29", 0), (30, "30-39", 1), (40, "40-49", 1), (50, "50-59", 1)]


def test_user_statistics_daily(built):
    database, _ = built
    rows = query(
        database, "SELECT ds, gender, users, average_age, share_of_users FROM marts.user_statistics_daily ORDER BY 1, 2"
    )
    assert rows == [
        (D19, "all", 2, 37.5, Decimal("1.0000")),
        (D19, "female", 1, 45.0, Decimal("0.5000")),
        (D19, "male", 1, 30.0, Decimal("0.5000")),
        (D20, "all", 3, 33.33, Decimal("1.0000")),
        (D20, "female", 1, 17.0, Decimal("0.3333")),
        (D20, "male", 2, 41.5, Decimal("0.6667")),
    ]


# --- trips -------------------------------------------------------------------------------------------------------


def test_trips_by_day_is_the_latest_snapshot(built):
    database, _ = built
    rows = query(
        database,
        "SELECT pickup_date, trips, average_distance, average_fare, total_fare, ds FROM marts.trips_by_day ORDER BY 1",
    )
    assert rows == [(*row, D20) for row in DAILY_20]


def test_trips_by_week_includes_the_empty_week_and_partial_ends(built):
    database, _ = built
    rows = query(
        database,
        "SELECT week_start, days, trips, days_with_trips, average_trips_per_day, average_distance, average_fare,"
        " total_fare FROM marts.trips_by_week ORDER BY 1",
    )
    # First pickup Wed 2026-11-11, last Tue 2026-12-01: 5 and 2 days at the ends.
    assert rows == [
        (date(2026, 11, 9), 5, 5, 4, Decimal("1.0000"), Decimal("4.4400"), Decimal("17.9000"), Decimal("89.50")),
        (date(2026, 11, 16), 7, 0, 0, Decimal("0.0000"), None, None, Decimal("0.00")),
        (date(2026, 11, 23), 7, 3, 3, Decimal("0.4286"), Decimal("2.6667"), Decimal("11.8333"), Decimal("35.50")),
        (date(2026, 11, 30), 2, 2, 2, Decimal("1.0000"), Decimal("3.4000"), Decimal("13.2500"), Decimal("26.50")),
    ]


def test_trips_by_hour(built):
    database, _ = built
    rows = query(
        database,
        "SELECT pickup_hour, trips, share_of_trips, average_distance, average_fare FROM marts.trips_by_hour ORDER BY 1",
    )
    assert [row[0] for row in rows] == list(range(24))
    busy = {row[0]: row[1:] for row in rows if row[1]}
    assert busy == {
        0: (1, Decimal("0.1000"), Decimal("6.0000"), Decimal("21.5000")),
        7: (1, Decimal("0.1000"), Decimal("1.5000"), Decimal("8.0000")),
        8: (3, Decimal("0.3000"), Decimal("1.7667"), Decimal("8.6667")),  # t01, t07, t09
        9: (1, Decimal("0.1000"), Decimal("3.0000"), Decimal("14.0000")),
        12: (1, Decimal("0.1000"), Decimal("15.0000"), Decimal("52.0000")),
        18: (1, Decimal("0.1000"), Decimal("4.0000"), Decimal("16.5000")),
        22: (1, Decimal("0.1000"), Decimal("1.2000"), Decimal("7.0000")),
        23: (1, Decimal("0.1000"), Decimal("1.0000"), Decimal("6.5000")),
    }
    assert all(row[1:] == (0, Decimal("0.0000"), None, None) for row in rows if row[0] not in busy)


def test_trip_facts_points(built):
    database, _ = built
    rows = query(
        database,
        "SELECT trip_id, ST_X(pickup_geom), ST_Y(pickup_geom), ST_SRID(pickup_geom), pickup_weekday, pickup_hour"
        " FROM marts.trip_facts ORDER BY trip_id",
    )
    by_id = {row[1]: row for row in TRIP_ROWS}
    assert [r[:4] for r in rows] == [(t, by_id[t][8], by_id[t][9], 4326) for t in sorted(by_id)]
    assert rows[0][4:] == (4, 8)  # t01: Thursday 2026-11-12, 08:10 UTC


# --- Metabase ----------------------------------------------------------------------------------------------------


def dashboards():
    from include.metabase.specs import DASHBOARDS_DIR, load_dashboard

    return {path: load_dashboard(DASHBOARDS_DIR / path) for path in ("users.yml", "trips.yml")}


def run_card(database: str, card, values=None) -> tuple[list[str], list[tuple]]:
    import psycopg2

    conn = psycopg2.connect(PG_DSN, dbname=database)
    try:
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            cur.execute(card.rendered_sql(values))
            return [d.name for d in cur.description], cur.fetchall()
    finally:
        conn.close()


def test_every_users_and_trips_card_runs_on_the_built_marts(built):
    """Each card, its template tags at their defaults, returns rows holding the columns its chart or map names."""
    database, _ = built
    results = {}
    for dashboard in dashboards().values():
        for card in dashboard.cards:
            columns, rows = run_card(database, card)
            assert rows, card.name
            settings = card.visualization_settings
            named = [*settings.get("graph.dimensions", []), *settings.get("graph.metrics", [])]
            named += [settings[key] for key in ("pie.dimension", "pie.metric") if key in settings]
            named += [settings[key] for key in ("map.latitude_column", "map.longitude_column") if key in settings]
            assert set(named) <= set(columns), (card.name, named, columns)
            results[card.name] = dict(zip(columns, zip(*rows, strict=True), strict=True))
    assert results["Users"]["users"] == (5,)
    assert results["Nationalities"]["nationalities"] == (2,)
    assert results["Average user age"]["average_age"] == (Decimal("36.3"),)  # (31 + 45 + 52 + 17) / 4 = 36.25
    assert results["Users accepted by the latest run"]["users"] == (3,)
    pins = results["Where users live"]
    assert sorted(zip(pins["latitude"], pins["longitude"], strict=True)) == [
        (-3.2, -60.1), (45.76, 4.83), (48.85, 2.35),
    ]  # fmt: skip
    assert results["Trips (all days)"]["trips"] == (10,)
    assert results["Average trip distance"]["average_distance"] == (Decimal("3.70"),)  # 37 miles / 10 trips
    assert results["Average fare"]["average_fare"] == (Decimal("15.15"),)  # 151.50 / 10
    assert len(results["Where trips start"]["latitude"]) == len(TRIP_ROWS)


def test_the_maps_are_pin_maps_of_coordinates():
    for dashboard in dashboards().values():
        maps = [card for card in dashboard.cards if card.display == "map"]
        assert len(maps) == 1, dashboard.name
        assert maps[0].visualization_settings["map.type"] == "pin"


# --- the weekly average, three ways ------------------------------------------------------------------------------

WEEKLY_CARD = "Weekly average trips in a bounding box"
MYSQL = {
    "host": os.environ.get("LAKEHOUSE_TEST_MYSQL_HOST", "127.0.0.1"),
    "port": int(os.environ.get("LAKEHOUSE_TEST_MYSQL_PORT", "3306")),
    "user": os.environ.get("LAKEHOUSE_TEST_MYSQL_USER", "root"),
    "password": os.environ.get("LAKEHOUSE_TEST_MYSQL_PASSWORD", ""),
}


def weekly_card():
    [card] = [card for card in dashboards()["trips.yml"].cards if card.name == WEEKLY_CARD]
    return card


def python_weeks(box: dict, start: date, end: date) -> list[tuple]:
    """(week_start, days, trips, average) worked out day by day over TRIP_ROWS."""
    weeks: dict[date, list[int]] = {}
    day = start
    while day <= end:
        counts = weeks.setdefault(day - dt.timedelta(days=day.weekday()), [0, 0])
        counts[0] += 1
        counts[1] += sum(
            1
            for row in TRIP_ROWS
            if row[4] == day
            and box["min_lon"] <= row[8] <= box["max_lon"]
            and box["min_lat"] <= row[9] <= box["max_lat"]
        )
        day += dt.timedelta(days=1)
    return [
        (monday, days, trips, (Decimal(trips) / days).quantize(Decimal("0.0001"), ROUND_HALF_UP))
        for monday, (days, trips) in sorted(weeks.items())
    ]


@pytest.fixture(scope="module")
def mariadb_trips() -> Iterator[str]:
    """The same trips loaded into a throwaway MariaDB database by the real TiDB loader, one load per slice."""
    import pyarrow as pa
    import pymysql

    from include.api.datasets import key_columns
    from include.serving.table_specs import serving_extras
    from include.serving.tidb import (
        SESSION_DEFAULTS,  # TiDB's sql_mode and collation
        load_slice_tidb,
    )

    schema = pa.schema(
        [("ds", pa.date32()), ("trip_id", pa.string()), ("pickup_at", pa.timestamp("us", tz="UTC")),
         ("dropoff_at", pa.timestamp("us", tz="UTC")), ("pickup_date", pa.date32()), ("passenger_count", pa.int32()),
         ("trip_distance", pa.float64()), ("duration_minutes", pa.float64()), ("pickup_longitude", pa.float64()),
         ("pickup_latitude", pa.float64()), ("dropoff_longitude", pa.float64()), ("dropoff_latitude", pa.float64()),
         ("fare_amount", pa.decimal128(10, 2)), ("total_amount", pa.decimal128(10, 2))]
    )  # fmt: skip
    name = f"weekly_{uuid.uuid4().hex[:8]}"
    conn = pymysql.connect(**MYSQL, autocommit=True, local_infile=True, **SESSION_DEFAULTS)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    conn.select_db(name)
    try:
        for ds in (D19, D20):
            rows = [row[:-1] for row in TRIP_ROWS if row[0] == ds]  # without _loaded_at: the loader adds it
            arrays = [
                pa.array(list(values), field.type)
                for values, field in zip(zip(*rows, strict=True), schema, strict=True)
            ]
            batch = pa.record_batch(arrays, schema=schema)
            load_slice_tidb(conn, "trips", ds, schema, 1, [batch], key_columns=key_columns("trips"),
                            indexes=serving_extras("trips").tidb_indexes)  # fmt: skip
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def api_weeks(database: str, box: dict, start: date, end: date) -> list[tuple]:
    import pymysql

    from include.api.queries import BoundingBox, weekly_average_query
    from include.serving.tidb import SESSION_DEFAULTS  # TiDB's sql_mode and collation

    sql, params = weekly_average_query(BoundingBox(**box), start, end)
    conn = pymysql.connect(**MYSQL, database=database, **SESSION_DEFAULTS)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return [tuple(row) for row in cur.fetchall()]
    finally:
        conn.close()


DEFAULT_BOX = {"min_lon": -74.00, "min_lat": 40.74, "max_lon": -73.96, "max_lat": 40.78}
CASES = {
    "defaults": None,
    "one day, corner pickups": (DEFAULT_BOX, "2026-11-12", "2026-11-12"),
    "a Sunday to a Monday": (DEFAULT_BOX, "2026-11-15", "2026-11-30"),
    "the empty week alone": (DEFAULT_BOX, "2026-11-16", "2026-11-22"),
    "a box with t07 on its edge": ({**DEFAULT_BOX, "min_lat": 40.7401, "max_lon": -73.9601},
                                   "2026-10-01", "2027-01-01"),
    "every trip": ({"min_lon": -180, "min_lat": -90, "max_lon": 180, "max_lat": 90}, "2026-11-11", "2026-12-01"),
    "across a year, nothing there": ({"min_lon": 2.0, "min_lat": 48.0, "max_lon": 3.0, "max_lat": 49.5},
                                     "2026-06-01", "2027-06-01"),
    "the longest range": (DEFAULT_BOX, "2025-11-30", "2027-12-01"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_weekly_average_is_the_same_in_postgis_mariadb_and_python(built, mariadb_trips, case):
    database, _ = built
    card = weekly_card()
    defaults = {parameter.name: parameter.default for parameter in card.parameters}
    if CASES[case] is None:
        box = {key: defaults[key] for key in DEFAULT_BOX}
        start, end = date.fromisoformat(defaults["from"]), date.fromisoformat(defaults["to"])
        values = None
    else:
        box, first, last = CASES[case]
        start, end = date.fromisoformat(first), date.fromisoformat(last)
        values = {**box, "from": first, "to": last}
    expected = python_weeks(box, start, end)
    columns, postgis = run_card(database, card, values)
    assert columns == ["week_start", "days", "trips", "average_trips_per_day"]
    assert postgis == expected
    assert api_weeks(mariadb_trips, box, start, end) == expected
    if case == "defaults":
        # Worked by hand: Sunday Nov 1 alone in its week; t10, t01, t02, t04; none; t05, t07; t08; then nothing
        # up to the 4 days of the last week.
        assert expected[:6] == [
            (date(2026, 10, 26), 1, 0, Decimal("0.0000")),
            (date(2026, 11, 2), 7, 0, Decimal("0.0000")),
            (date(2026, 11, 9), 7, 4, Decimal("0.5714")),
            (date(2026, 11, 16), 7, 0, Decimal("0.0000")),
            (date(2026, 11, 23), 7, 2, Decimal("0.2857")),
            (date(2026, 11, 30), 7, 1, Decimal("0.1429")),
        ]
        assert expected[-1] == (date(2026, 12, 28), 4, 0, Decimal("0.0000")) and len(expected) == 10


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"from": "2026-02-01", "to": "2026-01-31"}, "from must be at or before to"),
        ({"from": "2024-01-01", "to": "2026-01-02"}, "may span at most 731 days"),
        ({"min_lon": -73.9, "max_lon": -74.0}, "the box needs min_lon < max_lon"),
        ({"max_lat": 91}, "latitudes in -90..90"),
    ],
)
def test_weekly_average_question_stops_with_the_reason(built, values, reason):
    import psycopg2

    database, _ = built
    with pytest.raises(psycopg2.DataError, match=reason):
        run_card(database, weekly_card(), values)


# --- before the first load, and broken gold ----------------------------------------------------------------------


def test_marts_build_empty_before_the_first_load_even_without_postgis(tmp_path):
    """No users or trips table yet, and no PostGIS: the staging views select nothing, every mart builds empty."""
    with gold_database(prefix="dbt_users_trips_empty") as database:
        proc, statuses = dbt_build(database, tmp_path, SELECT)
        assert proc.returncode == 0, f"dbt build failed:\n{proc.stdout}\n{proc.stderr}"
        assert {uid.split(".")[-1] for uid, s in statuses.items() if uid.startswith("model.") and s == "success"} == (
            MODELS
        )
        for model in sorted(MODELS - {m for m in MODELS if m.startswith("stg_")}):
            assert query(database, f"SELECT count(*) FROM marts.{model}") == [(0,)], model
        assert query(database, "SELECT to_regtype('geometry')") == [(None,)]


def test_tests_catch_inconsistent_gold(tmp_path):
    """A trip in two slices, a user off the globe, a snapshot day twice: exactly the tests meant for them fail."""
    broken = {
        **GOLD_ROWS,
        "trips": [*TRIP_ROWS, (D20, *TRIP_ROWS[0][1:])],
        "users": [*USER_ROWS[:-1], user(D20, "u5", None, None, None, 95.0, 0.0)],
        "trips_daily": [*GOLD_ROWS["trips_daily"], (D20, *DAILY_20[0], LOADED)],
    }
    with gold_database(GOLD_DDL, broken, prefix="dbt_users_trips_broken", extensions=("postgis",)) as database:
        proc, statuses = dbt_build(database, tmp_path, SELECT)
    assert proc.returncode != 0
    assert failed_nodes(statuses) == {
        "unique_stg_trips_trip_id",
        "accepted_range_stg_users_latitude__90___90",
        "unique_combination_stg_trips_daily_ds__pickup_date",
    }
    # dbt build skips what depends on a failed test, so the bad rows never reach the marts.
    assert statuses["model.lakehouse.trips_by_week"] == "skipped"
    assert statuses["model.lakehouse.user_directory"] == "skipped"


def test_genders_that_do_not_add_up_only_warn(tmp_path):
    rows = {**GOLD_ROWS, "user_statistics": [*STATISTICS_ROWS[:-1], (D20, "male", 1, 41.5, LOADED)]}
    with gold_database(GOLD_DDL, rows, prefix="dbt_users_trips_warn", extensions=("postgis",)) as database:
        proc, statuses = dbt_build(database, tmp_path, SELECT)
    assert proc.returncode == 0
    assert statuses["test.lakehouse.assert_user_genders_add_up_to_all"] == "warn"
