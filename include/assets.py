"""Airflow Assets naming the Iceberg tables the Spark tasks write."""

from __future__ import annotations

from airflow.sdk import Asset

CATALOG = "lake"

# Every gold table, by domain. The serve DAG is scheduled on all of them, so a new gold table is served once it
# is listed here (and written by its domain's DAG), without editing the serve DAG.
GOLD_TABLES: dict[str, tuple[str, ...]] = {
    "tweets": ("gold.tweets_per_hour", "gold.tweets_per_day", "gold.tweets_by_language"),
    "products": (
        "gold.product_master",
        "gold.products_by_department",
        "gold.product_shelf_life",
        "gold.products_expiring",
    ),
    "rentals": ("gold.top_countries", "gold.films_per_category"),
    "users": ("gold.users", "gold.user_statistics"),
    "trips": ("gold.trips", "gold.trip_groups", "gold.trips_weekly"),
    # Run summaries (extraction + bronze reconciliation) of every domain, for the "Pipeline health" dashboard.
    "ops": ("gold.pipeline_runs",),
}


def iceberg_asset(table: str) -> Asset:
    """The Asset of Iceberg table ``<namespace>.<table>`` in the lakehouse catalog."""
    namespace, _, name = table.partition(".")
    if not namespace or not name or "." in name:
        raise ValueError(f"expected <namespace>.<table>, got {table!r}")
    return Asset(name=table, uri=f"iceberg://{CATALOG}/{namespace}/{name}", group="lakehouse")


def gold_assets() -> list[Asset]:
    """The Assets of every gold table of every domain."""
    return [iceberg_asset(table) for tables in GOLD_TABLES.values() for table in tables]
