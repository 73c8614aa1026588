"""
## Trips: feed CSV files caught by a sensor → raw → bronze → gold

Trip files (`region,origin_coord,destination_coord,datetime,datasource`; WKT points, zone-less datetimes read as
UTC) land under `landing/<landing_prefix>` at unknown times. The DAG runs continuously, one run at a time:
`wait_for_files` defers (no worker slot is held while waiting; the triggerer lists the prefix every 30 seconds)
until a file appears that `ops.processed_files` does not know in that version (path, ETag, size); a run without
new files within six hours is skipped and the next one starts waiting.
The Spark image then reads every new or changed file into `raw.trips` (lines as strings, with file and line
number), types and validates the trips into `bronze.trips` and `bronze.trips_rejects` (a reason per line), and
writes `gold.trips` (one row per trip, with ISO week, hour, time bucket and ~1 km grid cells), `gold.trip_groups`
(similar origin, destination and time of day) and `gold.trips_weekly` (per region and ISO week) for the run's `ds`.
A changed file replaces its earlier trips: the older `gold.trips` slices it leaves are announced for serving.

Drop a generated file with `python -m include.samples.trips drop --help`.
"""

from datetime import datetime, timedelta

from airflow.sdk import AssetAlias, Param, dag, task

from include.assets import GOLD_TABLES
from include.landing.new_files import NewLandedFilesSensor
from include.spark_task import SparkJobOperator

REPLACED_SLICES = AssetAlias("trips_replaced_slices")


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
    gold = SparkJobOperator(domain="trips", layer="gold", writes=[*GOLD_TABLES["trips"], "ops.slice_changes"])

    @task(outlets=[REPLACED_SLICES])
    def announce_replaced_slices(ds=None, outlet_events=None) -> list[str]:
        """Announce the older trips slices a changed file's trips were taken out of, so the serve DAG reloads them."""
        from include.slice_changes import announce_changed_slices

        return announce_changed_slices(outlet_events[REPLACED_SLICES], "gold.trips", ds)

    wait >> raw >> bronze >> gold >> announce_replaced_slices()


trips()
