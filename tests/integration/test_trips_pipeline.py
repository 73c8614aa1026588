"""The trips DAG end to end through Airflow (local Spark runner): files dropped in moto S3, the deferrable sensor,
raw → bronze → gold, checked against figures computed with the csv module from the generated files; a second run
waits (deferred) for a file dropped while it waits, and processes that file only."""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
import time
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NEXT_DS = "2026-11-21"
NEXT_LOGICAL_DATE = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
DEFECTS = {  # the generator's label of a spoiled line -> the reason bronze must give
    "outside_service_area": "outside_service_area",
    "non_positive_distance": "non_positive_distance",
    "dropoff_before_pickup": "dropoff_before_pickup",
    "missing_coordinates": "missing_coordinates",
    "bad_pickup_datetime": "bad_pickup_datetime",
    "negative_total": "negative_total",
    "bad_passenger_count": "bad_passenger_count",
    "wrong_column_count": "wrong_column_count",
}


def arrow(catalog, table: str, ds: str | None = None):
    from pyiceberg.expressions import AlwaysTrue, EqualTo

    return catalog.load_table(table).scan(row_filter=EqualTo("ds", ds) if ds else AlwaysTrue()).to_arrow()


def trips_of(files) -> list[dict]:
    """The valid trips of the files, parsed with the csv module (the generator labels each line)."""
    trips = []
    for trip_file in files:
        for line in trip_file.lines:
            if line.kind != "trip":
                continue
            (row,) = csv.DictReader(io.StringIO(trip_file.lines[0].text + "\n" + line.text + "\n"))
            trips.append(row)
    return trips


def daily_figures(trips: list[dict]) -> dict[dt.date, tuple[int, float, float, Decimal]]:
    """Per pickup day: trips, average distance, average fare, total fare."""
    days = defaultdict(list)
    for trip in trips:
        days[dt.date.fromisoformat(trip["pickup_datetime"][:10])].append(trip)
    return {
        day: (
            len(rows),
            sum(float(r["trip_distance"]) for r in rows) / len(rows),
            float(sum(Decimal(r["fare_amount"]) for r in rows) / len(rows)),
            sum(Decimal(r["fare_amount"]) for r in rows),
        )
        for day, rows in days.items()
    }


def assert_daily(actual_rows: list[dict], expected: dict) -> None:
    actual = {r["pickup_date"]: r for r in actual_rows}
    assert set(actual) == set(expected)
    for day, (trips, distance, fare, total) in expected.items():
        row = actual[day]
        assert row["trips"] == trips, day
        assert row["average_distance"] == pytest.approx(distance, abs=1e-4), day
        assert row["average_fare"] == pytest.approx(fare, abs=1e-4), day
        assert row["total_fare"] == total, day


def test_raw_keeps_every_line_with_its_file_and_number(trips_run, iceberg_catalog):
    raw = arrow(iceberg_catalog, "raw.trips", trips_run.ds).to_pylist()
    pairs = zip(trips_run.files, trips_run.drops, strict=True)
    expected = Counter((drop["key"], line.number) for trip_file, drop in pairs for line in trip_file.lines)
    got = Counter((r["_source_file"].split("landing/", 1)[1], r["_line_number"]) for r in raw)
    assert got == expected


def test_bronze_accounts_for_every_line_and_rejects_impossible_trips_with_a_reason(trips_run, iceberg_catalog):
    lines = [line for f in trips_run.files for line in f.lines]
    kinds = Counter(line.kind for line in lines)
    rejects = arrow(iceberg_catalog, "bronze.trips_rejects", trips_run.ds).to_pylist()
    assert Counter(r["reason"] for r in rejects) == Counter({DEFECTS[k]: n for k, n in kinds.items() if k in DEFECTS})
    assert arrow(iceberg_catalog, "bronze.trips", trips_run.ds).num_rows == kinds["trip"]
    (run,) = [
        r for r in arrow(iceberg_catalog, "gold.pipeline_runs", trips_run.ds).to_pylist() if r["domain"] == "trips"
    ]
    data_lines = len(lines) - len(trips_run.files)  # one header per file
    assert (run["raw_rows"], run["accepted"], run["duplicates"], run["rejects"], run["status"]) == (
        data_lines,
        kinds["trip"],
        kinds["duplicate"],
        sum(n for k, n in kinds.items() if k in DEFECTS),
        "published",
    )


def test_gold_trips_and_daily_figures_match_the_files(trips_run, iceberg_catalog):
    trips = trips_of(trips_run.files)
    gold = arrow(iceberg_catalog, "gold.trips", trips_run.ds).to_pylist()
    assert len(gold) == len(trips) == len({r["trip_id"] for r in gold})
    assert sum(r["fare_amount"] for r in gold) == sum(Decimal(t["fare_amount"]) for t in trips)
    assert Counter((r["pickup_longitude"], r["pickup_latitude"]) for r in gold) == Counter(
        (float(t["pickup_longitude"]), float(t["pickup_latitude"])) for t in trips
    )
    assert_daily(arrow(iceberg_catalog, "gold.trips_daily", trips_run.ds).to_pylist(), daily_figures(trips))


def test_a_later_run_waits_deferred_for_a_new_file_and_processes_only_that_file(
    trips_run, iceberg_catalog, s3, lake_env
):
    from airflow.dag_processing.dagbag import DagBag

    from include.samples.trips import TripOptions, drop_file, generate_trip_file

    new_file = generate_trip_file(600, 33, TripOptions(start=dt.datetime(2026, 11, 19, tzinfo=dt.UTC), days=3))
    dropped = {}

    def drop_later():
        time.sleep(8)  # the sensor has found nothing pending by then and deferred
        dropped.update(drop_file(s3, new_file))

    dropper = threading.Thread(target=drop_later)
    dropper.start()
    try:
        dag = DagBag(dag_folder=str(ROOT / "dags" / "trips.py"))
        run = dag.dags["trips"].test(logical_date=NEXT_LOGICAL_DATE)
    finally:
        dropper.join()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    # The file was dropped after the run started: the sensor returned it after waiting for it.
    waited = next(ti for ti in run.get_task_instances() if ti.task_id == "wait_for_files")
    assert [f["key"] for f in waited.xcom_pull(task_ids="wait_for_files")] == [dropped["key"]]

    raw_files = {r["_source_file"] for r in arrow(iceberg_catalog, "raw.trips", NEXT_DS).to_pylist()}
    assert {f.split("landing/", 1)[1] for f in raw_files} == {dropped["key"]}
    processed = arrow(iceberg_catalog, "ops.processed_files").to_pylist()
    assert Counter(r["path"].split("landing/", 1)[1] for r in processed if r["domain"] == "trips") == Counter(
        [d["key"] for d in trips_run.drops] + [dropped["key"]]
    )
    new_trips = trips_of([new_file])
    assert arrow(iceberg_catalog, "gold.trips", NEXT_DS).num_rows == len(new_trips)
    # The daily snapshot of the later run covers the trips of both runs.
    assert_daily(
        arrow(iceberg_catalog, "gold.trips_daily", NEXT_DS).to_pylist(),
        daily_figures(trips_of(trips_run.files) + new_trips),
    )
