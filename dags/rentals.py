"""
## Rentals: DVD-rental PostgreSQL (Pagila) → raw → bronze → gold

Spark reads the source database named by the Airflow connection `source_conn_id` (default `dvdrental_source`)
over JDBC: `rental` and `payment` for the run's interval `[ds, ds + 1 day)` in parallel ranges of their ids,
the reference tables whole. Bronze types and de-duplicates every table on its source key and sends orphan
foreign keys and impossible values to `bronze.rentals_rejects`; gold rebuilds `top_countries` and
`films_per_category` for the `ds`. Every task replaces only its own `ds` slice, so a re-run changes nothing.

Runs daily at 23:00 UTC for the previous day's interval (a cron data interval: the run at 23:00 on day D+1
processes `ds` = D, a complete UTC day).
"""

from datetime import datetime, timedelta

from airflow.sdk import Param, dag
from airflow.timetables.interval import CronDataIntervalTimetable

from include.assets import GOLD_TABLES
from include.spark_task import SparkJobOperator

SOURCE_TABLES = (
    *("country", "city", "address", "category", "film", "film_category"),
    *("store", "staff", "inventory", "customer", "rental", "payment"),
)


@dag(
    schedule=CronDataIntervalTimetable("0 23 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["lakehouse", "rentals"],
    doc_md=__doc__,
    default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(minutes=2)},
    params={
        "source_conn_id": Param("dvdrental_source", type="string", description="Airflow connection of the source"),
        "max_reject_ratio": Param(0.05, type="number", minimum=0, maximum=1, description="fail bronze above this"),
    },
)
def rentals():
    raw = SparkJobOperator(
        domain="rentals",
        layer="raw",
        source_conn_id="{{ params.source_conn_id }}",
        writes=[f"raw.rentals_{t}" for t in SOURCE_TABLES],
    )
    bronze = SparkJobOperator(
        domain="rentals",
        layer="bronze",
        job_args=["--max-reject-ratio", "{{ params.max_reject_ratio }}"],
        writes=[*(f"bronze.rentals_{t}" for t in SOURCE_TABLES), "bronze.rentals_rejects", "gold.pipeline_runs"],
    )
    gold = SparkJobOperator(domain="rentals", layer="gold", writes=GOLD_TABLES["rentals"])
    raw >> bronze >> gold


rentals()
