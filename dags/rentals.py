"""
## Rentals: DVD-rental PostgreSQL (Pagila) → raw → bronze → gold

Spark reads the source database named by the Airflow connection `source_conn_id` (default `dvdrental_source`)
over JDBC: `payment` for the run's interval `[ds, ds + 1 day)` and `rental` for the interval plus, by key, the
rentals those payments are for (in parallel ranges of their ids), the reference tables whole. Bronze types and
de-duplicates every table on its source key and sends orphan foreign keys and impossible values to
`bronze.rentals_rejects`; gold rebuilds `top_countries` and `films_per_category` for the `ds`. Every task replaces
only its own `ds` slice, so a re-run changes nothing.

Runs daily at 23:00 UTC for the previous day's interval (a cron data interval: the run at 23:00 on day D+1
processes `ds` = D, a complete UTC day).
"""

from airflow.sdk import Param, chain
from airflow.timetables.interval import CronDataIntervalTimetable

from include.pipeline import lakehouse_dag, spark_layers

PARAMS = {"source_conn_id": Param("dvdrental_source", type="string", description="Airflow connection of the source")}
DAILY_AT_23 = CronDataIntervalTimetable("0 23 * * *", timezone="UTC")


@lakehouse_dag("rentals", schedule=DAILY_AT_23, doc_md=__doc__, params=PARAMS, max_reject_ratio=0.05)
def rentals():
    chain(*spark_layers("rentals", source_conn_id="{{ params.source_conn_id }}"))


rentals()
