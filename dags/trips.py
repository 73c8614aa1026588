"""
## Trips: feed CSV files caught by a sensor → raw → bronze → gold

Trip files (`region,origin_coord,destination_coord,datetime,datasource`; WKT points, zone-less datetimes read as
UTC) land under `landing/<landing_prefix>` at any time. The DAG runs continuously, one run at a time:
`wait_for_files` defers (no worker slot held; the triggerer lists the prefix every 30 seconds) until a file version
(path, ETag, size) unknown to `ops.processed_files` appears; a run without one within six hours is skipped.
The Spark image then reads new or changed files into `raw.trips` (lines with file and line number), types and
validates them into `bronze.trips` and `bronze.trips_rejects` (a reason per line), and writes `gold.trips` (one row
per trip), `gold.trip_origin_cells` (trips per origin cell and day, for the weekly average), `gold.trip_groups`
(similar origin, destination, time of day) and `gold.trips_weekly` for the `ds`. A changed file replaces its
earlier trips; the older slices of `gold.trips` and `gold.trip_origin_cells` it changes are announced for serving.
Every file version is an ingestion: after each stage its event (`landed`, `raw`, `bronze`, `gold`, or `failed`)
goes to the events database, which `GET /v1/ingestions/{id}/events` streams.

Drop a generated file with `python -m devtools.samples.trips drop --help`.
"""

from airflow.sdk import Param, task

from include.landing.ingestion_events import on_stage_failure
from include.landing.new_files import NewLandedFilesSensor
from include.pipeline import announce_changed_slices, lakehouse_dag, spark_layers

PARAMS = {"landing_prefix": Param("trips/", type="string", description="key prefix of the trip files in landing")}


@lakehouse_dag("trips", schedule="@continuous", doc_md=__doc__, params=PARAMS, max_reject_ratio=0.1)
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
    raw, bronze, gold = spark_layers(
        "trips", raw_args=["--prefix", "{{ params.landing_prefix }}"], on_failure_callback=on_stage_failure
    )

    @task
    def landed_events(pending=None) -> dict[str, str]:
        """Give each file the sensor found its ingestion id, and push its `landed` event."""
        from include.landing.ingestion_events import announce_landed

        return announce_landed(pending or [])

    @task
    def stage_events(stage: str, ds=None) -> dict[str, str]:
        """Push the stage's event (with each file's figures) for every file of the run."""
        from include.landing.ingestion_events import report

        return report(stage, ds)

    landed = landed_events(wait.output)
    raw_done = stage_events.override(task_id="raw_events")("raw")
    bronze_done = stage_events.override(task_id="bronze_events")("bronze")
    gold_done = stage_events.override(task_id="gold_events")("gold")
    replaced = announce_changed_slices("announce_replaced_slices", "trips_replaced_slices", "gold.trips")
    cells = announce_changed_slices(
        "announce_replaced_cell_slices", "trip_cells_replaced_slices", "gold.trip_origin_cells"
    )
    landed >> raw >> raw_done >> bronze >> bronze_done >> gold >> gold_done >> [replaced, cells]


trips()
