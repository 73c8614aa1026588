"""
## Serve: gold → PostgreSQL and TiDB → dbt marts → Metabase

Scheduled on every gold table's Asset (`include/assets.py: GOLD_TABLES`). For each gold slice a Spark task
reported (the `ds` in its asset event), loads PostgreSQL `analytics.gold.<table>` and TiDB
`lakehouse.<table>`; then builds and tests the dbt marts with Cosmos (skipped when the last build that succeeded
started from the same load-log and dbt project) and brings Metabase's dashboards up to date.
A manual run serves the `ds` param (all gold tables, or those in `tables`). The plan pins each slice to its
table's current Iceberg snapshot, and both targets load that one, so they never serve different snapshots of a
slice. Reloading a slice whose snapshot is already served is a no-op that says so.
"""

from datetime import datetime, timedelta

from airflow.sdk import AssetAny, Param, task
from cosmos import DbtTaskGroup

from include import cosmos_config
from include.assets import gold_assets
from include.pipeline import lakehouse_dag


@lakehouse_dag(
    "serving",
    schedule=AssetAny(*gold_assets()),
    start_date=datetime(2020, 1, 1),
    retry_delay=timedelta(minutes=1),
    doc_md=__doc__,
    params={
        "ds": Param(None, type=["null", "string"], format="date", description="manual runs: the slice to serve"),
        "tables": Param([], type="array", description="manual runs: gold tables to serve (empty = all)"),
    },
)
def serve():
    @task
    def plan(triggering_asset_events=None, params=None) -> list[dict]:
        """The slices to serve, each pinned to one Iceberg snapshot, which both targets then load."""
        from include.serving.tasks import plan_run

        return plan_run(triggering_asset_events, params["ds"], params["tables"] or None)

    @task(max_active_tis_per_dagrun=2)
    def load_postgres(gold_slice: dict) -> dict:
        from include.serving.tasks import serve_postgres

        return serve_postgres(**gold_slice)

    @task(max_active_tis_per_dagrun=2)
    def load_tidb(gold_slice: dict) -> dict:
        from include.serving.tasks import serve_tidb

        return serve_tidb(**gold_slice)

    marts = DbtTaskGroup(
        group_id="dbt",
        project_config=cosmos_config.project_config(),
        profile_config=cosmos_config.profile_config(),
        execution_config=cosmos_config.execution_config(),
        render_config=cosmos_config.render_config(),
        default_args={"retries": 2},
    )

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def marts_stale() -> str | None:
        """The load-log's fingerprint when the marts must be built (something was loaded since the last build)."""
        from include.serving.tasks import marts_to_build

        return marts_to_build()

    @task
    def marts_built(fingerprint: str) -> None:
        from include.serving.tasks import record_marts_built

        record_marts_built(fingerprint)

    @task(trigger_rule="none_failed")
    def refresh_metabase() -> dict:
        from include.serving.tasks import refresh_metabase as provision

        return provision()

    @task
    def served_events(postgres_loads: list[dict], tidb_loads: list[dict]) -> list[str]:
        """Push `served` for the trips ingestions whose rows are now in both copies."""
        from include.landing.ingestion_events import report_served

        return report_served([*postgres_loads, *tidb_loads])

    slices = plan()
    loaded = [load_postgres.expand(gold_slice=slices), load_tidb.expand(gold_slice=slices)]
    stale = marts_stale()
    loaded >> stale >> marts >> marts_built(stale) >> refresh_metabase()
    served_events(*loaded)


serve()
