"""The users and trips dbt models built on hand-written gold rows, their Metabase cards, and the weekly average.

The marts are built with `dbt build --select` on a throwaway PostgreSQL database with PostGIS. The expected rows
are worked out by hand from the gold rows below. The weekly-average question is run three ways on the same trips:
the Metabase card in PostgreSQL/PostGIS, the API's query in MariaDB (loaded by the real TiDB loader), and plain
Python; all three must agree.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from dbt_harness import PG_DSN, built_project, dbt_build, failed_nodes, gold_database, outcome, query

from tests.trip_cells import SCHEMA as CELLS_SCHEMA
from tests.trip_cells import cell_rows, fine_cell

pytestmark = pytest.mark.integration

SELECT = ["stg_users+", "stg_user_statistics+", "stg_trips+", "stg_trip_groups+", "stg_trips_weekly+"]
MODELS = {
    *("stg_users", "stg_user_statistics", "stg_trips", "stg_trip_groups", "stg_trips_weekly"),
    *("user_directory", "user_demographics", "user_age_groups", "user_statistics_daily"),
    *("trip_facts", "trips_by_hour", "trips_by_region_week", "similar_trips"),
    *("trips_top_regions_latest_datasource", "trips_datasource_regions"),
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
    ds date, trip_id text, region text, origin_longitude double precision, origin_latitude double precision,
    destination_longitude double precision, destination_latitude double precision, datetime timestamptz,
    datasource text, trip_date date, week_start date, hour_of_day integer, time_bucket text, origin_cell text,
    destination_cell text, source_file text, _loaded_at timestamptz,
    origin_geom {POINT.format(lon="origin_longitude", lat="origin_latitude")},
    destination_geom {POINT.format(lon="destination_longitude", lat="destination_latitude")}
);
create index trips__origin_geom_gist on gold.trips using gist (origin_geom);
create table gold.trip_groups (
    ds date, region text, origin_cell text, destination_cell text, time_bucket text,
    origin_cell_longitude double precision, origin_cell_latitude double precision,
    destination_cell_longitude double precision, destination_cell_latitude double precision, trips bigint,
    datasources text, first_seen timestamptz, last_seen timestamptz, _loaded_at timestamptz
);
create table gold.trips_weekly (
    ds date, region text, week_start date, days integer, trips bigint, days_with_trips integer,
    average_trips_per_day double precision, _loaded_at timestamptz
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


def trip(ds, trip_id, when, region, lon, lat, source):
    """A gold.trips row; the derived columns as the gold job defines them (week, hour, 3-hour bucket, 0.01° cells)."""
    at = datetime.fromisoformat(when).replace(tzinfo=UTC)
    day, bucket = at.date(), at.hour // 3 * 3
    to_lon, to_lat = round(lon + 0.01, 6), round(lat - 0.01, 6)
    return (
        ds, trip_id, region, lon, lat, to_lon, to_lat, at, source, day, day - dt.timedelta(days=day.weekday()),
        at.hour, f"{bucket:02d}-{bucket + 3:02d}", f"{math.floor(lon * 100)}:{math.floor(lat * 100)}",
        f"{math.floor(to_lon * 100)}:{math.floor(to_lat * 100)}", f"s3a://landing/trips/{ds}.csv", LOADED,
    )  # fmt: skip


# The Metabase question's default box is lon 14.40..14.46, lat 50.05..50.10 (central Prague), its default days
# 2026-11-01 (a Sunday) to 2026-12-31. t02 and t04 sit on the box's corners, t07 just inside its south edge; t06 and
# t09 just outside; t03 is in Turin, t11 and t12 in Hamburg. No trip in the box in the week of 2026-11-16.
TRIP_ROWS = [
    trip(D19, "t10", "2026-11-11 22:00:00", "Prague", 14.43, 50.07, "funny_car"),
    trip(D19, "t01", "2026-11-12 08:10:00", "Prague", 14.425, 50.068, "cheap_mobile"),
    trip(D19, "t02", "2026-11-12 23:30:00", "Prague", 14.40, 50.05, "baba_car"),
    trip(D19, "t03", "2026-11-14 12:00:00", "Turin", 7.68, 45.07, "baba_car"),
    trip(D19, "t04", "2026-11-15 09:05:00", "Prague", 14.46, 50.10, "funny_car"),
    trip(D20, "t11", "2026-11-20 10:00:00", "Hamburg", 10.0, 53.55, "cheap_mobile"),
    trip(D20, "t05", "2026-11-23 07:45:00", "Prague", 14.41, 50.06, "cheap_mobile"),
    trip(D20, "t06", "2026-11-25 18:20:00", "Prague", 14.4600001, 50.07, "funny_car"),
    trip(D20, "t12", "2026-11-26 17:00:00", "Hamburg", 9.99, 53.56, "funny_car"),
    trip(D20, "t07", "2026-11-29 08:55:00", "Prague", 14.41, 50.0500001, "baba_car"),
    trip(D20, "t08", "2026-11-30 00:15:00", "Prague", 14.44, 50.09, "pt_search_app"),
    trip(D20, "t09", "2026-12-01 08:30:00", "Prague", 14.43, 50.0499999, "cheap_mobile"),
]
SEEN = datetime(2026, 11, 12, 8, 10, tzinfo=UTC)
# The gold job's snapshots of the groups and the weeks (hand-written: the marts take the latest one as it is).
GROUP_ROWS = [
    (D19, "Prague", "1442:5006", "1443:5005", "06-09", 14.425, 50.065, 14.435, 50.055, 1, "cheap_mobile", SEEN, SEEN),
    (D20, "Prague", "1442:5006", "1443:5005", "06-09", 14.425, 50.065, 14.435, 50.055, 2, "baba_car,cheap_mobile",
     SEEN, datetime(2026, 11, 29, 8, 55, tzinfo=UTC)),
    (D20, "Turin", "768:4507", "769:4506", "12-15", 7.685, 45.075, 7.695, 45.065, 1, "baba_car",
     datetime(2026, 11, 14, 12, tzinfo=UTC), datetime(2026, 11, 14, 12, tzinfo=UTC)),
]  # fmt: skip
WEEKLY_ROWS = [
    (D19, "Prague", date(2026, 11, 9), 5, 4, 3, 0.8),
    (D20, "Prague", date(2026, 11, 9), 5, 4, 3, 0.8),
    (D20, "Prague", date(2026, 11, 16), 7, 0, 0, 0.0),
    (D20, "Hamburg", date(2026, 11, 16), 7, 1, 1, 0.1429),
]
GOLD_ROWS = {
    "users": USER_ROWS,
    "user_statistics": STATISTICS_ROWS,
    "trips": TRIP_ROWS,
    "trip_groups": [(*row, LOADED) for row in GROUP_ROWS],
    "trips_weekly": [(*row, LOADED) for row in WEEKLY_ROWS],
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    with built_project(
        tmp_path_factory.mktemp("dbt"), GOLD_DDL, GOLD_ROWS, SELECT, prefix="dbt_users_trips", extensions=("postgis",)
    ) as built:
        yield built


def test_models_and_tests_pass(built):
    models, tests = outcome(built[1])
    assert models == MODELS
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
        " WHERE attrelid = 'marts.trip_facts'::regclass AND attname IN ('origin_geom', 'destination_geom') ORDER BY 1",
    )
    assert types == [("destination_geom", "geometry(Point,4326)"), ("origin_geom", "geometry(Point,4326)")]


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


def test_groups_and_weeks_are_the_latest_snapshots(built):
    database, _ = built
    groups = query(
        database,
        "SELECT region, origin_cell, destination_cell, time_bucket, origin_cell_longitude, origin_cell_latitude,"
        " destination_cell_longitude, destination_cell_latitude, trips, datasources, first_seen, last_seen, ds"
        " FROM marts.similar_trips ORDER BY 1, 2",
    )
    assert groups == [(*row[1:], row[0]) for row in GROUP_ROWS if row[0] == D20]
    weeks = query(
        database,
        "SELECT region, week_start, days, trips, days_with_trips, average_trips_per_day, ds"
        " FROM marts.trips_by_region_week ORDER BY 1, 2",
    )
    assert weeks == sorted((*row[1:], row[0]) for row in WEEKLY_ROWS if row[0] == D20)


def test_trips_by_hour(built):
    database, _ = built
    rows = query(database, "SELECT hour_of_day, trips, share_of_trips FROM marts.trips_by_hour ORDER BY 1")
    assert [row[0] for row in rows] == list(range(24))
    busy = {row[0]: row[1:] for row in rows if row[1]}
    # Twelve trips: t01, t07, t09 at 8; one trip in each of the other hours below.
    share = Decimal("0.0833")
    assert busy == {
        0: (1, share), 7: (1, share), 8: (3, Decimal("0.2500")), 9: (1, share), 10: (1, share), 12: (1, share),
        17: (1, share), 18: (1, share), 22: (1, share), 23: (1, share),
    }  # fmt: skip
    assert all(row[1:] == (0, Decimal("0.0000")) for row in rows if row[0] not in busy)


def test_trip_facts_points(built):
    database, _ = built
    rows = query(
        database,
        "SELECT trip_id, ST_X(origin_geom), ST_Y(origin_geom), ST_SRID(origin_geom), weekday, hour_of_day"
        " FROM marts.trip_facts ORDER BY trip_id",
    )
    by_id = {row[1]: row for row in TRIP_ROWS}
    assert [r[:4] for r in rows] == [(t, by_id[t][3], by_id[t][4], 4326) for t in sorted(by_id)]
    assert rows[0][4:] == (4, 8)  # t01: Thursday 2026-11-12, 08:10 UTC


def test_the_latest_datasource_of_the_two_most_common_regions(built):
    database, _ = built
    rows = query(
        database,
        "SELECT region_rank, region, trips, latest_datasource, latest_at"
        " FROM marts.trips_top_regions_latest_datasource ORDER BY 1",
    )
    # Prague: nine trips, the latest t09 (cheap_mobile); Hamburg: two, the latest t12 (funny_car); Turin: one.
    assert rows == [
        (1, "Prague", 9, "cheap_mobile", datetime(2026, 12, 1, 8, 30, tzinfo=UTC)),
        (2, "Hamburg", 2, "funny_car", datetime(2026, 11, 26, 17, tzinfo=UTC)),
    ]


def test_the_regions_each_datasource_appeared_in(built):
    database, _ = built
    rows = query(database, "SELECT datasource, region, trips FROM marts.trips_datasource_regions ORDER BY 1, 2")
    assert rows == [
        ("baba_car", "Prague", 2), ("baba_car", "Turin", 1), ("cheap_mobile", "Hamburg", 1),
        ("cheap_mobile", "Prague", 3), ("funny_car", "Hamburg", 1), ("funny_car", "Prague", 3),
        ("pt_search_app", "Prague", 1),
    ]  # fmt: skip


def test_the_plain_sql_file_answers_the_same(built):
    """include/sql/trips_questions.sql, run as psql would on the served gold.trips."""
    import psycopg2

    from devtools.local_stack import ROOT

    database, _ = built
    statements = [
        text for text in (ROOT / "include/sql/trips_questions.sql").read_text().split(";") if "SELECT" in text
    ]
    conn = psycopg2.connect(PG_DSN, dbname=database)
    try:
        with conn.cursor() as cur:
            cur.execute(statements[0])
            assert [row[:3] for row in cur.fetchall()] == [("Prague", 9, "cheap_mobile"), ("Hamburg", 2, "funny_car")]
            cur.execute(statements[1])
            assert [row[:2] for row in cur.fetchall()] == [("Hamburg", 1), ("Prague", 3)]
    finally:
        conn.close()


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
    assert results["Trips (all)"]["trips"] == (12,)
    assert results["Regions"]["regions"] == (3,)
    assert results["Datasources"]["datasources"] == (4,)
    assert results["Groups of similar trips"]["groups"] == (1,)
    assert results["Latest datasource of the two most common regions"]["latest_datasource"] == (
        "cheap_mobile", "funny_car",
    )  # fmt: skip
    assert results["Regions cheap_mobile appeared in"]["region"] == ("Hamburg", "Prague")
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


def python_weeks(start: date, end: date, box: dict | None = None, region: str | None = None) -> list[tuple]:
    """(week_start, days, trips, average) worked out day by day over TRIP_ROWS (origin in the box, or the region)."""

    def inside(row) -> bool:
        if region is not None:
            return row[2] == region
        return box["min_lon"] <= row[3] <= box["max_lon"] and box["min_lat"] <= row[4] <= box["max_lat"]

    weeks: dict[date, list[int]] = {}
    day = start
    while day <= end:
        counts = weeks.setdefault(day - dt.timedelta(days=day.weekday()), [0, 0])
        counts[0] += 1
        counts[1] += sum(1 for row in TRIP_ROWS if row[9] == day and inside(row))
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
        [("ds", pa.date32()), ("trip_id", pa.string()), ("region", pa.string()), ("origin_longitude", pa.float64()),
         ("origin_latitude", pa.float64()), ("destination_longitude", pa.float64()),
         ("destination_latitude", pa.float64()), ("datetime", pa.timestamp("us", tz="UTC")),
         ("datasource", pa.string()), ("trip_date", pa.date32()), ("week_start", pa.date32()),
         ("hour_of_day", pa.int32()), ("time_bucket", pa.string()), ("origin_cell", pa.string()),
         ("destination_cell", pa.string()), ("origin_fine_x", pa.int64()), ("origin_fine_y", pa.int64()),
         ("source_file", pa.string())]
    )  # fmt: skip
    name = f"weekly_{uuid.uuid4().hex[:8]}"
    conn = pymysql.connect(**MYSQL, autocommit=True, local_infile=True, **SESSION_DEFAULTS)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    conn.select_db(name)
    try:
        for ds in (D19, D20):
            # Without _loaded_at (the loader adds it), with the fine cells the PostgreSQL copy does not stage.
            rows = [(*row[:-2], *fine_cell(row[3], row[4]), row[-2]) for row in TRIP_ROWS if row[0] == ds]
            arrays = [
                pa.array(list(values), field.type)
                for values, field in zip(zip(*rows, strict=True), schema, strict=True)
            ]
            batch = pa.record_batch(arrays, schema=schema)
            load_slice_tidb(conn, "trips", ds, schema, 1, [batch], key_columns=key_columns("trips"),
                            indexes=serving_extras("trips").indexes)  # fmt: skip
            cells = pa.Table.from_pylist(cell_rows(dict(zip(schema.names, row, strict=True)) for row in rows),
                                         schema=CELLS_SCHEMA)  # fmt: skip
            load_slice_tidb(conn, "trip_origin_cells", ds, CELLS_SCHEMA, 1, cells.to_batches(),
                            indexes=serving_extras("trip_origin_cells").indexes)  # fmt: skip
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def api_weeks(database: str, start: date, end: date, box: dict | None = None, region: str | None = None) -> list:
    import pymysql

    from include.api.queries import BoundingBox, Region, weekly_average_query, weekly_rows
    from include.serving.tidb import SESSION_DEFAULTS  # TiDB's sql_mode and collation

    area = Region(region) if region is not None else BoundingBox(**box)
    sql, params = weekly_average_query(area, start, end)
    conn = pymysql.connect(**MYSQL, database=database, **SESSION_DEFAULTS)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return weekly_rows(cur.fetchall(), start, end)
    finally:
        conn.close()


DEFAULT_BOX = {"min_lon": 14.40, "min_lat": 50.05, "max_lon": 14.46, "max_lat": 50.10}
CASES = {
    "defaults": None,
    "one day, corner origins": (DEFAULT_BOX, "2026-11-12", "2026-11-12"),
    "a Sunday to a Monday": (DEFAULT_BOX, "2026-11-15", "2026-11-30"),
    "the empty week alone": (DEFAULT_BOX, "2026-11-16", "2026-11-22"),
    "a box with t07 on its edge": ({**DEFAULT_BOX, "min_lat": 50.0500001, "max_lon": 14.4599999},
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
    expected = python_weeks(start, end, box=box)
    columns, postgis = run_card(database, card, values)
    assert columns == ["week_start", "days", "trips", "average_trips_per_day"]
    assert postgis == expected
    assert api_weeks(mariadb_trips, start, end, box=box) == expected
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
    ("region", "first", "last"),
    [("Prague", None, None), ("Hamburg", "2026-11-16", "2026-11-29"), ("Turin", "2026-11-14", "2026-11-14"),
     ("Lisbon", "2026-11-01", "2026-11-30")],
)  # fmt: skip
def test_weekly_average_for_a_region_is_the_same_in_postgresql_mariadb_and_python(
    built, mariadb_trips, region, first, last
):
    database, _ = built
    [card] = [card for card in dashboards()["trips.yml"].cards if card.name == "Weekly average trips in a region"]
    defaults = {parameter.name: parameter.default for parameter in card.parameters}
    first, last = first or defaults["from"], last or defaults["to"]
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    values = (
        None
        if region == defaults["region"] and first == defaults["from"]
        else {"region": region, "from": first, "to": last}
    )
    expected = python_weeks(start, end, region=region)
    assert run_card(database, card, values)[1] == expected
    assert api_weeks(mariadb_trips, start, end, region=region) == expected
    assert (sum(week[2] for week in expected) > 0) == (region != "Lisbon")


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"from": "2026-02-01", "to": "2026-01-31"}, "from must be at or before to"),
        ({"from": "2024-01-01", "to": "2026-01-02"}, "may span at most 731 days"),
        ({"min_lon": 14.5, "max_lon": 14.4}, "the box needs min_lon < max_lon"),
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
    """A trip in two slices, a user off the globe, a snapshot week twice: exactly the tests meant for them fail."""
    broken = {
        **GOLD_ROWS,
        "trips": [*TRIP_ROWS, (D20, *TRIP_ROWS[0][1:])],
        "users": [*USER_ROWS[:-1], user(D20, "u5", None, None, None, 95.0, 0.0)],
        "trips_weekly": [*GOLD_ROWS["trips_weekly"], (*WEEKLY_ROWS[-1], LOADED)],
    }
    with gold_database(GOLD_DDL, broken, prefix="dbt_users_trips_broken", extensions=("postgis",)) as database:
        proc, statuses = dbt_build(database, tmp_path, SELECT)
    assert proc.returncode != 0
    assert failed_nodes(statuses) == {
        "unique_stg_trips_trip_id",
        "accepted_range_stg_users_latitude__90___90",
        "unique_combination_stg_trips_weekly_ds__region__week_start",
    }
    # dbt build skips what depends on a failed test, so the bad rows never reach the marts.
    assert statuses["model.lakehouse.trips_by_region_week"] == "skipped"
    assert statuses["model.lakehouse.user_directory"] == "skipped"


def test_genders_that_do_not_add_up_only_warn(tmp_path):
    rows = {**GOLD_ROWS, "user_statistics": [*STATISTICS_ROWS[:-1], (D20, "male", 1, 41.5, LOADED)]}
    with gold_database(GOLD_DDL, rows, prefix="dbt_users_trips_warn", extensions=("postgis",)) as database:
        proc, statuses = dbt_build(database, tmp_path, SELECT)
    assert proc.returncode == 0
    assert statuses["test.lakehouse.assert_user_genders_add_up_to_all"] == "warn"
