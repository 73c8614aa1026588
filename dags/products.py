"""
## Products: hourly sensor Parquet files → raw → bronze readings → gold product master

The sensors drop one pandas-written Parquet file per hour under `landing/<landing_prefix>`, named after the hour
(`2024-01-01 00-00-00.parquet`; any key works), columns `department_name, sensor_serial, create_at, product_name,
product_expire`. Each daily run reads the files it has not processed yet (a file is known by its path, ETag and
size: an identical re-drop is skipped, new content is read again and replaces that file's earlier rows in every
slice) into `raw.products`, validates them into `bronze.products` (one row per reading: department, serial,
product, creation hour) and `bronze.products_rejects`, then writes `gold.product_master` and the department,
shelf-life and expiry aggregates for the run's `ds`.

A corrected file takes its old rows out of older master slices; the last task announces those slices on the
master's Asset, and the serve DAG reloads them as well as the run's own.
"""

from datetime import datetime, timedelta

from airflow.sdk import AssetAlias, Param, dag, task

from include.assets import GOLD_TABLES
from include.spark_task import SparkJobOperator

MOVED_SLICES = AssetAlias("products_master_moved_slices")


@dag(
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["lakehouse", "products"],
    doc_md=__doc__,
    default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(minutes=2)},
    params={
        "landing_prefix": Param("products/", type="string", description="key prefix of the hourly files in landing"),
        "max_reject_ratio": Param(0.1, type="number", minimum=0, maximum=1, description="fail bronze above this"),
    },
)
def products():
    raw = SparkJobOperator(
        domain="products",
        layer="raw",
        job_args=["--prefix", "{{ params.landing_prefix }}"],
        writes=["raw.products", "ops.processed_files"],
    )
    bronze = SparkJobOperator(
        domain="products",
        layer="bronze",
        job_args=["--max-reject-ratio", "{{ params.max_reject_ratio }}"],
        writes=["bronze.products", "bronze.products_rejects", "gold.pipeline_runs"],
    )
    gold = SparkJobOperator(domain="products", layer="gold", writes=[*GOLD_TABLES["products"], "ops.slice_changes"])

    @task(outlets=[MOVED_SLICES])
    def announce_moved_slices(ds=None, outlet_events=None) -> list[str]:
        """Announce the older master slices this run moved rows out of, so the serve DAG reloads them."""
        from include.slice_changes import announce_changed_slices

        return announce_changed_slices(outlet_events[MOVED_SLICES], "gold.product_master", ds)

    raw >> bronze >> gold >> announce_moved_slices()


products()
