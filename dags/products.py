"""
## Products: Parquet drops → raw → bronze → gold product master

Product master files land as Parquet under `landing/<landing_prefix>` (any name, any time; schema drift
allowed). Each daily run reads the files it has not processed yet (a file is known by its path, ETag and size:
an identical re-drop is skipped, new content is read again) into `raw.products`, types and validates them into
`bronze.products` (every version of a product, once) and `bronze.products_rejects`, then merges the current
version of each product into `gold.product_master` and rebuilds `gold.products_by_category` for the run's `ds`.

A master row's `ds` is the run that last changed it. A change moves the row out of an older slice, so the last
task announces those slices on the master's Asset, and the serve DAG reloads them as well as the run's own.
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
        "landing_prefix": Param("products/", type="string", description="key prefix of the drops in landing"),
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
