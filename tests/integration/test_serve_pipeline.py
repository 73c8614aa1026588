"""The serve DAG after a tweets run: identical gold rows in Iceberg, PostgreSQL and MariaDB (as TiDB), dbt marts
built and tested, Metabase provisioned (against the local fake)."""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from pathlib import Path

import pytest
from served_rows import iceberg_rows, mariadb_rows, pg_query, postgres_rows

from devtools import local_stack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# What the tweets, users and trips runs of the session write for the ds. The rentals and products modules, which
# check their own serving, are groups of their own (tests/conftest.py); what they wrote on this worker is served too.
GOLD = [
    *("tweets_per_hour", "tweets_per_day", "tweets_by_language", "pipeline_runs"),
    *("users", "user_statistics", "trips", "trip_origin_cells", "trip_groups", "trips_weekly"),
]


@pytest.fixture(scope="module")
def fake_metabase():
    from devtools.fake_metabase import FakeMetabase

    fake = FakeMetabase().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def targets(lake_env, fake_metabase):
    """Fresh analytics (PostgreSQL) and lakehouse (MariaDB) databases, and the Airflow connections to them."""
    import pymysql

    from devtools.fake_metabase import ADMIN_EMAIL, ADMIN_PASSWORD
    from include.serving.tidb import SESSION_DEFAULTS  # TiDB's sql_mode and collation

    suffix = uuid.uuid4().hex[:8]
    pg_db, maria_db = f"analytics_test_{suffix}", f"lakehouse_test_{suffix}"
    local_stack.recreate_database(pg_db, extensions=local_stack.ANALYTICS_EXTENSIONS)
    maria = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True, **SESSION_DEFAULTS)
    with maria.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{maria_db}`")
    host, port = fake_metabase.url.removeprefix("http://").split(":")
    os.environ.update(
        {
            # Trust authentication ignores the password, but Cosmos' profile mapping requires one.
            "AIRFLOW_CONN_ANALYTICS_POSTGRES": json.dumps(
                {
                    "conn_type": "postgres",
                    "host": "127.0.0.1",
                    "port": 5432,
                    "login": "postgres",
                    "password": "unused",
                    "schema": pg_db,
                }
            ),
            "AIRFLOW_CONN_TIDB": json.dumps(
                {"conn_type": "mysql", "host": "127.0.0.1", "port": 3306, "login": "root", "schema": maria_db}
            ),
            "AIRFLOW_CONN_METABASE": json.dumps(
                {"conn_type": "http", "host": host, "port": int(port), "login": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            ),
            "DBT_EXECUTABLE": os.environ.get("DBT_EXECUTABLE") or str(ROOT / ".venv-dbt" / "bin" / "dbt"),
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        }
    )
    yield {"postgres": pg_db, "mariadb": maria_db}
    local_stack.drop_database(pg_db)
    with maria.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{maria_db}`")
    maria.close()


@pytest.fixture(scope="module")
def served(tweets_run, users_run, trips_run, targets, dag_runner):
    return dag_runner("serve", run_conf={"ds": tweets_run.ds})


def test_gold_is_identical_in_iceberg_postgres_and_mariadb(served, tweets_run, targets, iceberg_catalog):
    from include.serving.tasks import gold_tables

    # Every gold table with a slice for this ds: GOLD, and whatever other modules wrote earlier on this worker.
    present = [t for t in gold_tables() if iceberg_catalog.table_exists(f"gold.{t}")]
    assert set(GOLD) <= set(present)
    for table in present:
        want = iceberg_rows(iceberg_catalog, table, tweets_run.ds)
        if not want:
            continue
        columns = list(iceberg_catalog.load_table(f"gold.{table}").schema().column_names)
        assert postgres_rows(targets["postgres"], table, tweets_run.ds, columns) == want, table
        assert mariadb_rows(targets["mariadb"], table, tweets_run.ds, columns) == want, table
    assert all(iceberg_rows(iceberg_catalog, table, tweets_run.ds) for table in GOLD)


def test_marts_are_built_from_the_served_gold(served, tweets_run, targets, iceberg_catalog):
    states = {ti.task_id: ti.state for ti in served.get_task_instances()}
    assert (states["marts_stale"], states["marts_built"]) == ("success", "success"), states
    per_day = iceberg_rows(iceberg_catalog, "tweets_per_day", tweets_run.ds)
    langs = iceberg_rows(iceberg_catalog, "tweets_by_language", tweets_run.ds)
    daily = pg_query(targets["postgres"], "SELECT day, tweets FROM marts.tweets_daily")
    assert Counter(daily) == Counter({(day, n) for (_, day, n) in per_day})
    languages = pg_query(targets["postgres"], "SELECT lang, tweets FROM marts.tweet_languages")
    assert Counter(languages) == Counter({(lang, n) for (_, lang, n) in langs})


def test_pipeline_health_mart_accounts_for_the_run(served, tweets_run, targets):
    rows = pg_query(
        targets["postgres"],
        "SELECT lines, raw_rows, accepted + duplicates + rejects, status FROM marts.pipeline_extractions "
        "WHERE domain = 'tweets' AND ds = %s",
        (tweets_run.ds,),
    )
    # The sample has a header and `lines` records; raw records exclude the header.
    assert rows == [(tweets_run.lines + 1, tweets_run.lines, tweets_run.lines, "published")]


def test_metabase_dashboards_are_provisioned(served, fake_metabase):
    names = {d["name"] for d in fake_metabase.dashboards.values()}
    assert {"Tweets activity", "Pipeline health", "Users", "Trips"} <= names


def test_trips_get_postgis_points_in_postgres(served, trips_run, targets, iceberg_catalog):
    rows = pg_query(
        targets["postgres"],
        "SELECT count(*), count(*) FILTER (WHERE ST_X(origin_geom) = origin_longitude"
        " AND ST_Y(origin_geom) = origin_latitude AND ST_SRID(origin_geom) = 4326"
        " AND ST_X(destination_geom) = destination_longitude AND ST_Y(destination_geom) = destination_latitude)"
        " FROM gold.trips WHERE ds = %s",
        (trips_run.ds,),
    )
    trips = iceberg_catalog.load_table("gold.trips").scan().to_arrow().to_pylist()
    assert rows == [(len(trips), len(trips))]
    # A spatial question on the served copy, against the same question asked of the Iceberg rows (central Prague).
    box = (14.40, 50.05, 14.46, 50.10)
    (inside,) = pg_query(
        targets["postgres"],
        "SELECT count(*) FROM gold.trips WHERE ST_Intersects(origin_geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))",
        box,
    )[0]
    expected = sum(
        1 for t in trips if box[0] <= t["origin_longitude"] <= box[2] and box[1] <= t["origin_latitude"] <= box[3]
    )
    assert inside == expected > 0


def test_users_and_trips_marts_are_built(served, users_run, trips_run, targets, iceberg_catalog):
    users = iceberg_catalog.load_table("gold.users").scan().to_arrow()
    (directory,) = pg_query(targets["postgres"], "SELECT count(*) FROM marts.user_directory")[0]
    assert directory == users.num_rows
    weekly = iceberg_rows(iceberg_catalog, "trips_weekly", trips_run.ds)
    by_week = pg_query(targets["postgres"], "SELECT region, week_start, trips FROM marts.trips_by_region_week")
    assert Counter(by_week) == Counter((row[1], row[2], row[4]) for row in weekly)
    trips = iceberg_catalog.load_table("gold.trips").scan().to_arrow().to_pylist()
    regions = Counter(t["region"] for t in trips if t["datasource"] == "cheap_mobile")
    got = pg_query(
        targets["postgres"],
        "SELECT region, trips FROM marts.trips_datasource_regions WHERE datasource = 'cheap_mobile'",
    )
    assert dict(got) == dict(regions) and regions


def weeks_counted_one_by_one(trips: list[dict], start, end, box=None, region=None) -> list[tuple]:
    """(Monday, days in range, trips) of every ISO week overlapping [start, end], trip by trip in plain Python."""
    import datetime as dt

    counts = Counter()
    for t in trips:
        day = t["trip_date"]
        if not start <= day <= end:
            continue
        if region is not None and t["region"] != region:
            continue
        lon, lat = t["origin_longitude"], t["origin_latitude"]
        if box is not None and not (box[0] <= lon <= box[2] and box[1] <= lat <= box[3]):
            continue
        counts[day - dt.timedelta(days=day.weekday())] += 1
    weeks, monday = [], start - dt.timedelta(days=start.weekday())
    while monday <= end:
        days = (min(monday + dt.timedelta(days=6), end) - max(monday, start)).days + 1
        weeks.append((monday, days, counts.get(monday, 0)))
        monday += dt.timedelta(days=7)
    return weeks


def test_the_api_weekly_average_on_the_served_copy_counts_every_trip_in_the_area(served, trips_run, targets,
                                                                                  iceberg_catalog):  # fmt: skip
    """The API's query over the served cells and trips (MariaDB as TiDB), for boxes from a block to a whole region
    and for every region, against the served trips counted one by one."""
    import datetime as dt

    import pymysql

    from include.api.queries import BoundingBox, Region, weekly_average_query, weekly_rows
    from include.serving.tidb import SESSION_DEFAULTS

    trips = iceberg_catalog.load_table("gold.trips").scan().to_arrow().to_pylist()
    days = sorted(t["trip_date"] for t in trips)
    start, end = days[0] - dt.timedelta(days=2), days[-1] + dt.timedelta(days=3)
    first = trips[0]
    lons, lats = [t["origin_longitude"] for t in trips], [t["origin_latitude"] for t in trips]
    boxes = [
        (14.40, 50.05, 14.46, 50.10),  # central Prague, the API's example
        (first["origin_longitude"] - 0.0007, first["origin_latitude"] - 0.0004,  # a block around one trip
         first["origin_longitude"] + 0.0011, first["origin_latitude"] + 0.0009),
        (min(lons), min(lats), max(lons), max(lats)),  # every origin, on the box's edges too
        (14.2, 49.9, 14.7, 50.25),  # a whole region, edges on cell edges
    ]  # fmt: skip
    conn = pymysql.connect(host="127.0.0.1", user="root", database=targets["mariadb"], **SESSION_DEFAULTS)
    try:
        with conn.cursor() as cur:

            def api_weeks(area):
                sql, params = weekly_average_query(area, start, end)
                cur.execute(sql, params)
                return [row[:3] for row in weekly_rows(cur.fetchall(), start, end)]

            for box in boxes:
                assert api_weeks(BoundingBox(*box)) == weeks_counted_one_by_one(trips, start, end, box=box), box
            for region in sorted({t["region"] for t in trips}):
                want = weeks_counted_one_by_one(trips, start, end, region=region)
                assert api_weeks(Region(region)) == want and sum(w[2] for w in want) > 0, region
    finally:
        conn.close()
    assert sum(w[2] for w in weeks_counted_one_by_one(trips, start, end, box=boxes[2])) == len(trips)


def test_trips_ingestions_are_announced_served_with_their_rows_in_both_copies(served, trips_run):
    import psycopg2

    conn = psycopg2.connect(trips_run.events_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT i.path, i.etag, e.data FROM ingest.events AS e JOIN ingest.ingestions AS i USING (ingestion_id)"
                " WHERE e.event = 'served'"
            )
            got = {(path, etag): data for path, etag, data in cur.fetchall()}
    finally:
        conn.close()
    for trip_file, drop in zip(trips_run.files, trips_run.drops, strict=True):
        trips = sum(1 for line in trip_file.lines if line.kind == "trip")
        assert got[f"s3a://landing/{drop['key']}", drop["etag"]] == {
            "ds": trips_run.ds,
            "postgres_rows": trips,
            "tidb_rows": trips,
        }


def test_serving_the_same_snapshots_again_is_a_no_op(served, tweets_run, targets, dag_runner, fake_metabase):
    query = "SELECT table_name, ds, snapshot_id, rows, loaded_at FROM gold._lakehouse_loads ORDER BY 1"
    before = pg_query(targets["postgres"], query)
    writes = len(fake_metabase.writes())
    # Nothing was loaded since the marts were last built: dbt does not run again; Metabase is still checked.
    run = dag_runner("serve", run_conf={"ds": tweets_run.ds}, skipped=frozenset({"dbt.", "marts_built"}))
    results = [
        ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index)
        for ti in run.get_task_instances()
        if ti.task_id in ("load_postgres", "load_tidb")
    ]
    # Other domains' tests may have written gold slices for the same ds in this session: they are served too.
    assert {r["table"] for r in results} >= set(GOLD) and all(r["skipped"] for r in results), results
    assert pg_query(targets["postgres"], query) == before
    assert len(fake_metabase.writes()) == writes
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert (states["marts_stale"], states["marts_built"], states["refresh_metabase"]) == (
        "success",
        "skipped",
        "success",
    ), states
