"""
## Users: RandomUser-style API → raw → bronze → gold

Extracts `results` users for the run's `ds` from a randomuser.me-compatible API (`base_url`), in pages of
`page_size`, in the Airflow worker: each page is retried with backoff on 429/5xx/timeouts, validated, and landed
as received under `landing/users/ds=<ds>/`; the manifest (records, pages, bytes, duration) is written last and
recorded in `ops.extractions`. The seed defaults to one per `ds`, so a re-run lands the same files.
The Spark image then builds `raw.users` (each user document as JSON text), `bronze.users` (flattened, typed,
de-duplicated on `login.uuid`; password, salt and hashes are dropped here and never go further) with
`bronze.users_rejects`, and merges `gold.users` (one row per user; `ds` = the run that last saw the user) and
rebuilds `gold.user_statistics` (per gender and 'all') for the `ds`.

A user seen again moves from its older `ds` slice to this run's: the last task announces those slices, so the
serve DAG reloads them as well.
"""

from airflow.sdk import Param, chain, task

from include.pipeline import announce_changed_slices, lakehouse_dag, spark_layers

PARAMS = {
    "base_url": Param("https://randomuser.me/api/", type="string", description="RandomUser-compatible API"),
    "results": Param(1000, type="integer", minimum=1, maximum=100_000, description="users to extract"),
    "page_size": Param(100, type="integer", minimum=1, maximum=5000, description="users per request"),
    "seed": Param(None, type=["null", "string"], description="API seed; default lakehouse-<ds>"),
    "nationalities": Param(None, type=["null", "string"], description="e.g. 'gb,fr,us'; default all"),
}


@lakehouse_dag("users", schedule="@daily", doc_md=__doc__, params=PARAMS, max_reject_ratio=0.05)
def users():
    @task
    def land(params=None, ds=None) -> dict:
        """Extract the users page by page and land the pages, then the manifest, in the landing bucket."""
        from include.landing.users import extract_users

        return extract_users(
            params["base_url"],
            ds,
            results=params["results"],
            page_size=params["page_size"],
            seed=params["seed"],
            nationalities=params["nationalities"],
        )

    moved = announce_changed_slices("announce_moved_slices", "users_moved_slices", "gold.users")
    chain(land(), *spark_layers("users"), moved)


users()
