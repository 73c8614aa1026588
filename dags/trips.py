"""
## Trips: CSV files caught by a sensor → raw → bronze → gold

Taxi-trip CSV files land under `landing/<landing_prefix>` at unknown times. The DAG runs continuously, one run at
a time: `wait_for_files` defers (no worker slot is held while waiting; the triggerer lists the prefix every 30
seconds) until a file appears that `ops.processed_files` does not know in that version (path, ETag, size); a run
without new files within six hours is skipped and the next one starts waiting.
The Spark image then reads every new or changed file into `raw.trips` (lines as strings, with file and line
number), records the versions it processed (so no file is processed twice), types and validates the trips into
`bronze.trips` and `bronze.trips_rejects` (impossible trips, with a reason), and writes `gold.trips` (the run's
cleaned trips) and `gold.trips_daily` (trips, average distance and fare per pickup day, over all trips) for the
run's `ds`. The serve DAG adds PostGIS points in PostgreSQL and bounding-box indexes in TiDB.

Drop a generated file with `python -m include.samples.trips drop --help`.
"""

from datetime import datetime, timedelta

from airflow.sdk import Param, dag

from include.assets import GOLD_TABLES
from include.landing.new_files import NewLandedFilesSensor
from include.spark_task import SparkJobOperator


@dag(
    schedule="@continuous",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["lakehouse", "trips"],
    doc_md=__doc__,
    default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(minutes=2)},
    params={
        "landing_prefix": Param("trips/", type="string", description="key prefix of the trip files in landing"),
        "max_reject_ratio": Param(0.1, type="number", minimum=0, maximum=1, description="fail bronze above this"),
    },
)
def trips():
    wait = NewLandedFilesSensor(
        task_id="wait_for_files",
        domain="trips",
        prefix="{{ params.landing_prefix }}",
        suffix=".csv",
        poll_interval=30,
        timeout=6 * 60 * 60,
        soft_fail=True,
        deferrable=True,
    )
    raw = SparkJobOperator(
        domain="trips",
        layer="raw",
        job_args=["--prefix", "{{ params.landing_prefix }}"],
        writes=["raw.trips", "ops.processed_files"],
    )
    bronze = SparkJobOperator(
        domain="trips",
        layer="bronze",
        job_args=["--max-reject-ratio", "{{ params.max_reject_ratio }}"],
        writes=["bronze.trips", "bronze.trips_rejects", "gold.pipeline_runs"],
    )
    gold = SparkJobOperator(domain="trips", layer="gold", writes=GOLD_TABLES["trips"])
    wait >> raw >> bronze >> gold


trips()
