"""
## Tweets: TSV download → raw → bronze → gold

Downloads the tweets TSV named by `source_url` (aria2c when installed, else a streaming download),
lands it in `landing/tweets/ds=<ds>/` and records the extraction; then the Spark image builds
`raw.tweets`, `bronze.tweets` (+ `bronze.tweets_rejects`) and the gold tables
`tweets_per_hour`, `tweets_per_day`, `tweets_by_language` and `tweets_by_country` for the run's `ds`.
Every task replaces only its own `ds` slice, so a re-run changes nothing.
"""

from datetime import datetime

from airflow.sdk import Param, chain, task

from include.pipeline import lakehouse_dag, spark_layers

DEFAULT_SOURCE = "https://zenodo.org/records/3723940/files/full_dataset.tsv?download=1"
PARAMS = {"source_url": Param(DEFAULT_SOURCE, type="string", description="HTTP(S) URL of the tweets TSV")}
FIRST_DAY = datetime(2020, 1, 1)


@lakehouse_dag("tweets", schedule="@daily", start_date=FIRST_DAY, doc_md=__doc__, params=PARAMS, max_reject_ratio=0.05)
def tweets():
    @task
    def land(params=None, ds=None) -> dict:
        """Download the TSV and land it, with its manifest, in the landing bucket."""
        from include.landing.files import land_http_file

        return land_http_file("tweets", params["source_url"], ds)

    chain(land(), *spark_layers("tweets"))


tweets()
