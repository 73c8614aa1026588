"""
## Tweets: TSV download → raw → bronze → gold

Downloads the tweets TSV named by `source_url` (aria2c when installed, else a streaming download),
lands it in `landing/tweets/ds=<ds>/` and records the extraction; then the Spark image builds
`raw.tweets`, `bronze.tweets` (+ `bronze.tweets_rejects`) and the gold tables
`tweets_per_hour`, `tweets_per_day` and `tweets_by_language` for the run's `ds`.
Every task replaces only its own `ds` slice, so a re-run changes nothing.
"""

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from include.assets import GOLD_TABLES
from include.spark_task import SparkJobOperator

DEFAULT_SOURCE = "https://zenodo.org/records/3723940/files/full_dataset.tsv?download=1"


@dag(
    schedule="@daily",
    start_date=datetime(2020, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["lakehouse", "tweets"],
    doc_md=__doc__,
    default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(minutes=2)},
    params={
        "source_url": Param(DEFAULT_SOURCE, type="string", description="HTTP(S) URL of the tweets TSV"),
        "max_reject_ratio": Param(0.05, type="number", minimum=0, maximum=1, description="fail bronze above this"),
    },
)
def tweets():
    @task
    def land(params=None, ds=None) -> dict:
        """Download the TSV and land it, with its manifest, in the landing bucket."""
        from include.landing.files import land_http_file

        return land_http_file("tweets", params["source_url"], ds)

    raw = SparkJobOperator(domain="tweets", layer="raw", writes=["raw.tweets", "ops.extractions"])
    bronze = SparkJobOperator(
        domain="tweets",
        layer="bronze",
        job_args=["--max-reject-ratio", "{{ params.max_reject_ratio }}"],
        writes=["bronze.tweets", "bronze.tweets_rejects", "gold.pipeline_runs"],
    )
    gold = SparkJobOperator(domain="tweets", layer="gold", writes=GOLD_TABLES["tweets"])
    land() >> raw >> bronze >> gold


tweets()
