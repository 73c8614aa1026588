"""Backfills in reverse order and with gaps: every day's gold is what SQL on the source says that day's is.

The expected gold is computed on the source alone (``rentals_oracle``, the rules the rentals DAG test checks one day
against), so it is what a clean run in date order must give too, without running one. The backfill runs in a catalog
(and warehouse) of its own, through the jobs' command line (``python -m lakehouse_jobs <domain> <layer> --ds ...``,
the line the DAGs' Spark tasks run), its jobs one after the other in one Python process so that the JVM starts once.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence

import pytest
from products_oracle import as_of, expected_by_department, expected_expiring, expected_from_files, expected_shelf_life
from rentals_oracle import GOLD as RENTALS_GOLD
from rentals_oracle import expected_gold, late_payments, source_dsn
from trips_oracle import expected_groups, expected_weekly, made_by, trips_of

from devtools import local_stack

pytestmark = pytest.mark.integration

LAYERS = ("raw", "bronze", "gold")
# The samples are small, so their planted defects are a larger share of a day than the DAGs' gates allow.
GATE = ("--max-reject-ratio", "0.5")
DRIVER = """
import sys
from lakehouse_jobs.__main__ import main
for line in sys.argv[1:]:
    code = main(line.split("|"))
    if code:
        sys.exit(f"failed: {line}")
"""


@pytest.fixture
def fresh_catalog(lake_env):
    """``make(order)`` -> the job environment of a catalog database and warehouse of its own; dropped afterwards."""
    names = []

    def make(order: str) -> dict[str, str]:
        name = f"backfill_{order}_{uuid.uuid4().hex[:8]}"
        local_stack.recreate_database(name)
        names.append(name)
        return {
            **lake_env,
            "LAKEHOUSE_CATALOG_URI": f"jdbc:postgresql://{local_stack.PG_HOST}:{local_stack.PG_PORT}/{name}",
            "LAKEHOUSE_WAREHOUSE": f"s3a://lakehouse/{name}",
            "_CATALOG_DB": name,
        }

    yield make
    for name in names:
        local_stack.drop_database(name)


def run_days(env: dict[str, str], domain: str, days: Sequence[str], options: Mapping[str, Sequence[str]]) -> None:
    """Run raw, bronze and gold of ``domain`` for each of ``days``, in order, through the CLI (``options`` by layer)."""
    lines = ["|".join((domain, layer, "--ds", day, *options.get(layer, ()))) for day in days for layer in LAYERS]
    job_env = {k: v for k, v in env.items() if not k.startswith("_")}
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, *lines],
        env={**os.environ, **job_env},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def gold_slices(env: dict[str, str], tables: Sequence[str], days: Sequence[str]) -> dict[tuple[str, str], Counter]:
    """Each (table, day) slice as a multiset of rows, without ``_loaded_at`` (the time of the write)."""
    from pyiceberg.expressions import EqualTo

    catalog = local_stack.pyiceberg_catalog(env["S3_ENDPOINT"], env["_CATALOG_DB"])
    slices = {}
    for table in tables:
        loaded = catalog.load_table(table)
        for day in days:
            arrow = loaded.scan(row_filter=EqualTo("ds", day)).to_arrow()
            columns = [c for c in arrow.column_names if c != "_loaded_at"]
            slices[(table, day)] = Counter(tuple(r[c] for c in columns) for r in arrow.select(columns).to_pylist())
    return slices


# --- rentals -------------------------------------------------------------------------------------------------

BACKFILL = ("2026-11-21", "2026-11-19", "2026-11-18")  # newest first, 2026-11-20 never run


@pytest.fixture
def rentals_source(lake_env):
    """A generated DVD-rental database of four days from 2026-11-18, a third of the payments taken on return."""
    from devtools.samples.rentals import RentalsOptions, generate_rentals_db

    name = f"dvdrental_backfill_{uuid.uuid4().hex[:8]}"
    local_stack.recreate_database(name)
    options = RentalsOptions(rentals=1200, seed=9, start=dt.date(2026, 11, 18), days=4, pay_on_return_every=3)
    generate_rentals_db(source_dsn(name), options)
    yield name
    local_stack.drop_database(name)


def add_customer_who_joined_later(database: str) -> None:
    """A customer created after every day run (the source as a later re-run finds it), at an existing address."""
    import psycopg2

    conn = psycopg2.connect(source_dsn(database))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO customer SELECT max(customer_id) + 1, 1, 'NEW', 'CUSTOMER', NULL, 5, true, "
                "DATE '2026-12-01', now(), 1 FROM customer"
            )
    finally:
        conn.close()


def test_rentals_backfill_in_reverse_with_a_gap_equals_sql_on_the_source(fresh_catalog, rentals_source):
    source = {
        "SOURCE_JDBC_URL": f"jdbc:postgresql://{local_stack.PG_HOST}:{local_stack.PG_PORT}/{rentals_source}",
        "SOURCE_USER": local_stack.PG_USER,
        "SOURCE_PASSWORD": "",
    }
    add_customer_who_joined_later(rentals_source)  # the backfill runs later, on a source that has grown
    # The first day run has payments for rentals of earlier days, none of which has been run yet.
    assert late_payments(rentals_source, BACKFILL[0]) > 0
    backfill = {**fresh_catalog("reverse"), **source}
    run_days(backfill, "rentals", BACKFILL, {"bronze": GATE})
    want = {(table, day): rows for day in BACKFILL for table, rows in expected_gold(rentals_source, day).items()}
    assert all(want[("gold.top_countries", day)] for day in BACKFILL)
    assert gold_slices(backfill, RENTALS_GOLD, BACKFILL) == want


# --- products --------------------------------------------------------------------------------------------------

PRODUCTS_BACKFILL = ("2026-11-20", "2026-11-18")  # newest first, 2026-11-19 never run


@pytest.fixture
def products_landing(s3, tmp_path):
    """Two hours of each of 2026-11-18, -19 and -20, landed before the backfill runs: (prefix, {name: file})."""
    from devtools.samples.products import FeedOptions, hours, write_frame

    options = FeedOptions(
        start=dt.datetime(2026, 11, 18), departments=4, sensors_per_department=3, products_per_department=4,
        defect_rate=0.05,
    )  # fmt: skip
    prefix = f"products_backfill_{uuid.uuid4().hex[:8]}/"
    files = {}
    for day in range(3):
        for name, frame in hours(2, 7, options, first=24 * day):
            files[name] = write_frame(frame, tmp_path / name)
            s3.upload_file(str(files[name]), "landing", prefix + name)
    yield prefix, files
    for name in files:
        s3.delete_object(Bucket="landing", Key=prefix + name)


def products_gold(env: dict[str, str], day: str) -> dict[str, dict]:
    """The aggregates of slice ``day``, as the oracle's functions shape them."""
    from pyiceberg.expressions import EqualTo

    catalog = local_stack.pyiceberg_catalog(env["S3_ENDPOINT"], env["_CATALOG_DB"])
    shapes = {
        "gold.products_by_department": (
            lambda r: (r["department_name"], r["day"]),
            ("products", "sensors", "readings"),
        ),
        "gold.product_shelf_life": (lambda r: r["shelf_life_days"], ("readings", "products")),
        "gold.products_expiring": (lambda r: (r["department_name"], r["within_days"]), ("products", "readings")),
    }
    got = {}
    for table, (key, values) in shapes.items():
        found = catalog.load_table(table).scan(row_filter=EqualTo("ds", day)).to_arrow().to_pylist()
        got[table] = {key(r): tuple(r[v] for v in values) for r in found}
    return got


def test_products_backfill_in_reverse_with_a_gap_gives_each_day_its_own_past(fresh_catalog, products_landing):
    # The first run (the newest day) reads every landed file, the older day then finds nothing new; each day's
    # aggregates must still count the readings created up to its end, as a clean run in date order does.
    from pyiceberg.expressions import AlwaysTrue

    prefix, files = products_landing
    backfill = fresh_catalog("products")
    run_days(backfill, "products", PRODUCTS_BACKFILL, {"raw": ("--prefix", prefix), "bronze": GATE})
    readings = expected_from_files(files)["readings"]
    for day in PRODUCTS_BACKFILL:
        past = as_of(readings, dt.date.fromisoformat(day))
        assert 0 < len(past) < len(readings) if day == "2026-11-18" else past == readings
        assert products_gold(backfill, day) == {
            "gold.products_by_department": expected_by_department(past),
            "gold.product_shelf_life": expected_shelf_life(past),
            "gold.products_expiring": expected_expiring(past),
        }, day
    catalog = local_stack.pyiceberg_catalog(backfill["S3_ENDPOINT"], backfill["_CATALOG_DB"])
    master = catalog.load_table("gold.product_master").scan(row_filter=AlwaysTrue()).to_arrow().to_pylist()
    key = ("department_name", "sensor_serial", "product_name", "create_at")
    got = {tuple(r[k] for k in key): r["product_expire"] for r in master}
    assert len(got) == len(master) and got == readings


# --- trips -----------------------------------------------------------------------------------------------------

TRIPS_BACKFILL = ("2026-11-20", "2026-11-18")  # newest first, 2026-11-19 never run


@pytest.fixture
def trips_landing(s3):
    """One file of trips of each of 2026-11-18, -19 and -20, landed before the backfill runs: (prefix, files)."""
    from devtools.samples.trips import TripOptions, drop_file, generate_trip_file

    prefix = f"trips_backfill_{uuid.uuid4().hex[:8]}/"
    files = [
        generate_trip_file(300, 40 + day, TripOptions(start=dt.datetime(2026, 11, 18 + day, tzinfo=dt.UTC), days=1))
        for day in range(3)
    ]
    keys = [drop_file(s3, trip_file, prefix=prefix)["key"] for trip_file in files]
    yield prefix, files
    for key in keys:
        s3.delete_object(Bucket="landing", Key=key)


def test_trips_backfill_in_reverse_with_a_gap_gives_each_day_its_own_past(fresh_catalog, trips_landing):
    # As for products: the first run reads every landed file; each day's groups and weeks count the trips made by
    # its end, whichever run read them.
    from pyiceberg.expressions import AlwaysTrue, EqualTo

    prefix, files = trips_landing
    backfill = fresh_catalog("trips")
    run_days(backfill, "trips", TRIPS_BACKFILL, {"raw": ("--prefix", prefix), "bronze": GATE})
    catalog = local_stack.pyiceberg_catalog(backfill["S3_ENDPOINT"], backfill["_CATALOG_DB"])
    trips = trips_of(files)
    for day in TRIPS_BACKFILL:
        made = made_by(trips, day)
        assert 0 < len(made) < len(trips) if day == "2026-11-18" else made == trips
        groups = catalog.load_table("gold.trip_groups").scan(row_filter=EqualTo("ds", day)).to_arrow().to_pylist()
        assert {
            (r["region"], r["origin_cell"], r["destination_cell"], r["time_bucket"]): (
                r["trips"], r["datasources"], r["first_seen"], r["last_seen"],
            )
            for r in groups
        } == expected_groups(made), day  # fmt: skip
        weekly = catalog.load_table("gold.trips_weekly").scan(row_filter=EqualTo("ds", day)).to_arrow().to_pylist()
        assert {
            (r["region"], r["week_start"]): (r["days"], r["trips"], r["days_with_trips"], r["average_trips_per_day"])
            for r in weekly
        } == expected_weekly(made), day
    gold = catalog.load_table("gold.trips").scan(row_filter=AlwaysTrue()).to_arrow().to_pylist()
    assert len(gold) == len(trips) == len({r["trip_id"] for r in gold})
