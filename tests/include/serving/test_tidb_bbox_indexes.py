"""The TiDB loader's extra indexes for the trips' weekly average, on the local MariaDB (the TiDB stand-in)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pyarrow as pa
import pytest

from include.serving.table_specs import SecondaryIndex, serving_extras
from include.serving.tidb import load_slice_tidb
from tests.trip_cells import SCHEMA as CELLS_SCHEMA
from tests.trip_cells import cell_rows

pytestmark = pytest.mark.integration

SLICES = (dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 22))
INDEXES = serving_extras("trips").indexes
INDEX_NAMES = {index.name for index in INDEXES}
CELL_INDEXES = serving_extras("trip_origin_cells").indexes
# The trips in a box, counted row by row, per ISO week overlapping [first, last].
WEEKLY = """
WITH RECURSIVE weeks (week_start) AS (
    SELECT CAST(%(first)s AS DATE) - INTERVAL WEEKDAY(%(first)s) DAY
    UNION ALL
    SELECT week_start + INTERVAL 7 DAY FROM weeks WHERE week_start + INTERVAL 7 DAY <= %(last)s
), counts AS (
    SELECT trip_date - INTERVAL WEEKDAY(trip_date) DAY AS week_start, COUNT(*) AS trips
    FROM {table}
    WHERE origin_longitude BETWEEN %(min_lon)s AND %(max_lon)s AND origin_latitude BETWEEN %(min_lat)s AND %(max_lat)s
      AND trip_date BETWEEN %(first)s AND %(last)s
    GROUP BY 1
)
SELECT w.week_start,
       DATEDIFF(LEAST(w.week_start + INTERVAL 6 DAY, %(last)s), GREATEST(w.week_start, %(first)s)) + 1 AS days,
       COALESCE(c.trips, 0) AS trips
FROM weeks AS w LEFT JOIN counts AS c ON c.week_start = w.week_start
ORDER BY w.week_start
"""
# Eight weeks in a box of a tenth of a degree; two years in a thin box; a few blocks; most of the area, over a year.
QUERIES = [
    {"first": "2025-03-05", "last": "2025-04-28", "min_lon": -74.0, "max_lon": -73.9, "min_lat": 40.7, "max_lat": 40.8},
    {
        "first": "2025-01-01",
        "last": "2026-12-31",
        "min_lon": -74.0,
        "max_lon": -73.98,
        "min_lat": 40.7,
        "max_lat": 40.8,
    },
    {
        "first": "2025-06-01",
        "last": "2025-07-15",
        "min_lon": -73.98537,
        "max_lon": -73.97302,
        "min_lat": 40.75111,
        "max_lat": 40.76098,
    },
    {
        "first": "2025-02-10",
        "last": "2026-02-09",
        "min_lon": -74.2533,
        "max_lon": -73.7001,
        "min_lat": 40.4987,
        "max_lat": 40.9012,
    },
]
QUERY_IDS = ["eight_weeks", "two_years_thin_box", "a_few_blocks", "most_of_the_area_for_a_year"]


def require_mariadb(conn) -> None:
    """These plans are read from MariaDB's EXPLAIN columns; against TiDB, test_tidb_server checks TiDB's plan."""
    if "MariaDB" not in fetch(conn, "SELECT VERSION()")[0][0]:
        pytest.skip("reads MariaDB's EXPLAIN columns")


def fetch(conn, sql: str, args=None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def weekly_in_python(rows: list[dict], query: dict) -> list[tuple[dt.date, int, int]]:
    first, last = dt.date.fromisoformat(query["first"]), dt.date.fromisoformat(query["last"])
    counts = Counter(
        r["trip_date"] - dt.timedelta(days=r["trip_date"].weekday())
        for r in rows
        if r["origin_longitude"] is not None
        and r["origin_latitude"] is not None
        and query["min_lon"] <= r["origin_longitude"] <= query["max_lon"]
        and query["min_lat"] <= r["origin_latitude"] <= query["max_lat"]
        and first <= r["trip_date"] <= last
    )
    weeks = []
    week = first - dt.timedelta(days=first.weekday())
    while week <= last:
        days = (min(week + dt.timedelta(days=6), last) - max(week, first)).days + 1
        weeks.append((week, days, counts.get(week, 0)))
        week += dt.timedelta(days=7)
    return weeks


def indexes_of(reader, database: str, table: str) -> dict[str, list[str]]:
    rows = fetch(
        reader,
        "SELECT index_name, column_name FROM information_schema.statistics WHERE table_schema = %s"
        " AND table_name = %s ORDER BY index_name, seq_in_index",
        (database, f"{table}__rows"),
    )
    found: dict[str, list[str]] = {}
    for name, column in rows:
        found.setdefault(name, []).append(column)
    return found


def load(conn, database, table, trips, rows_by_slice, indexes=INDEXES, snapshot=1):
    for ds, rows in rows_by_slice.items():
        data = pa.Table.from_pylist(rows, schema=trips.schema).to_batches(max_chunksize=2_000)
        load_slice_tidb(conn, table, ds, trips.schema, snapshot, data, database=database, indexes=indexes)


@pytest.fixture
def served(mysql_connect, mysql_database, trips, table_name):
    """Three slices of 4,000 trips and their cell counts, served with their indexes; yields (reader, names, rows)."""
    conn, reader = mysql_connect(), mysql_connect()
    rows_by_slice = {ds: trips.rows(ds, 4_000, seed=seed) for seed, ds in enumerate(SLICES)}
    load(conn, mysql_database, table_name, trips, rows_by_slice)
    # A reload of one slice: the superseded rows must not be counted.
    rows_by_slice[SLICES[0]] = trips.rows(SLICES[0], 3_000, seed=99)
    load(conn, mysql_database, table_name, trips, {SLICES[0]: rows_by_slice[SLICES[0]]}, snapshot=2)
    cells = f"{table_name}_cells"
    for ds, rows in rows_by_slice.items():
        data = pa.Table.from_pylist(cell_rows(rows), schema=CELLS_SCHEMA).to_batches(max_chunksize=5_000)
        load_slice_tidb(conn, cells, ds, CELLS_SCHEMA, 1, data, database=mysql_database, indexes=CELL_INDEXES)
    return reader, (table_name, cells), [row for rows in rows_by_slice.values() for row in rows]


def api_query(database: str, names: tuple[str, str], query: dict) -> tuple[str, dict, dt.date, dt.date]:
    from include.api.queries import BoundingBox, weekly_average_query

    box = BoundingBox(query["min_lon"], query["min_lat"], query["max_lon"], query["max_lat"])
    first, last = dt.date.fromisoformat(query["first"]), dt.date.fromisoformat(query["last"])
    trips, cells = (f"`{database}`.`{name}`" for name in names)
    sql, params = weekly_average_query(box, first, last, trips=trips, cells=cells)
    return sql, params, first, last


@pytest.mark.parametrize("query", QUERIES, ids=QUERY_IDS)
def test_the_api_weekly_query_is_exact_and_reads_index_ranges_only(served, mysql_database, query):
    from include.api.queries import weekly_rows

    reader, names, rows = served
    sql, params, first, last = api_query(mysql_database, names, query)
    require_mariadb(reader)

    with reader.cursor() as cur:
        cur.execute("EXPLAIN " + sql, params)
        columns = [d[0] for d in cur.description]
        plan = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    weeks = weekly_rows(fetch(reader, sql, params), first, last)

    expected = weekly_in_python(rows, query)
    assert [week[:3] for week in weeks] == expected
    assert sum(trips for _, _, trips in expected) > 0
    on_rows = [step for step in plan if step["table"] == "r"]
    assert on_rows, plan
    wanted = INDEX_NAMES | {index.name for index in CELL_INDEXES}
    # Every read of a rows table (trips' or the cells') is a range of a declared index, covering: no row is read.
    assert all(step["type"] == "range" and step["key"] in wanted for step in on_rows), plan
    assert all("Using index" in step["Extra"] for step in on_rows), plan


def test_the_rows_tables_have_the_indexes(served, mysql_database):
    reader, (trips, cells), _ = served

    found, found_cells = indexes_of(reader, mysql_database, trips), indexes_of(reader, mysql_database, cells)

    assert found["origin_fine_cell_date"] == [
        *("origin_fine_x", "origin_fine_y", "trip_date", "origin_longitude", "origin_latitude"),
        *("ds", "_load_id"),
    ]
    assert set(found) == {"PRIMARY", *INDEX_NAMES}
    assert found_cells["level_cell_date"] == ["level", "cell_x", "cell_y", "trip_date", "trips", "ds", "_load_id"]
    assert found_cells["level_region_date"] == ["level", "region", "trip_date", "trips", "ds", "_load_id"]


def test_an_existing_table_gains_the_indexes(mysql_connect, mysql_database, trips, table_name):
    conn, reader = mysql_connect(), mysql_connect()
    old = trips.rows(SLICES[0], 500, seed=7)
    load(conn, mysql_database, table_name, trips, {SLICES[0]: old}, indexes=())
    assert set(indexes_of(reader, mysql_database, table_name)) == {"PRIMARY"}
    new = trips.rows(SLICES[1], 300, seed=8)

    load(conn, mysql_database, table_name, trips, {SLICES[1]: new})

    assert set(indexes_of(reader, mysql_database, table_name)) == {"PRIMARY", *INDEX_NAMES}
    query = {"first": "2025-01-01", "last": "2026-12-31", "min_lon": -74.3, "max_lon": -73.65}
    query |= {"min_lat": 40.45, "max_lat": 40.95}
    assert fetch(reader, WEEKLY.format(table=f"`{mysql_database}`.`{table_name}`"), query) == weekly_in_python(
        old + new, query
    )


def test_bad_indexes_are_refused(mysql_connect, mysql_database, trips, table_name):
    conn = mysql_connect()
    data = pa.Table.from_pylist(trips.rows(SLICES[0], 5, seed=9), schema=trips.schema).to_batches()
    for indexes, message in [
        ([SecondaryIndex("by_nothing", ("no_such_column",))], "no column"),
        ([SecondaryIndex("twice", ("ds",)), SecondaryIndex("twice", ("trip_id",))], "unique"),
        ([SecondaryIndex("PRIMARY", ("trip_id",))], "PRIMARY"),
    ]:
        with pytest.raises(ValueError, match=message):
            load_slice_tidb(
                conn, table_name, SLICES[0], trips.schema, 1, data, database=mysql_database, indexes=indexes
            )


def test_a_string_index_column_becomes_varchar(mysql_connect, mysql_database, trips, table_name):
    conn, reader = mysql_connect(), mysql_connect()
    load(
        conn,
        mysql_database,
        table_name,
        trips,
        {SLICES[0]: trips.rows(SLICES[0], 20, seed=10)},
        indexes=[SecondaryIndex("by_trip", ("trip_id",))],
    )

    types = dict(
        fetch(
            reader,
            "SELECT column_name, column_type FROM information_schema.columns WHERE table_schema = %s"
            " AND table_name = %s",
            (mysql_database, f"{table_name}__rows"),
        )
    )
    assert types["trip_id"] == "varchar(255)"
    assert indexes_of(reader, mysql_database, table_name)["by_trip"] == ["trip_id", "ds", "_load_id"]
