"""The Iceberg tables each domain's Spark jobs write, declared once, and the Airflow Assets naming them."""

from __future__ import annotations

from airflow.sdk import Asset

CATALOG = "lake"
LAYERS = ("raw", "bronze", "gold")

# Every gold table, by domain. The serve DAG is scheduled on all of them, so a new gold table is served once it
# is listed here (its domain's gold task declares it through LAYER_WRITES), without editing the serve DAG.
GOLD_TABLES: dict[str, tuple[str, ...]] = {
    "tweets": ("gold.tweets_per_hour", "gold.tweets_per_day", "gold.tweets_by_language", "gold.tweets_by_country"),
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
PIPELINE_RUNS = "gold.pipeline_runs"
# Older slices a run moved rows out of (see include/slice_changes.py).
SLICE_CHANGES = "ops.slice_changes"
# The rentals source tables Spark copies, each into raw.rentals_<name> and bronze.rentals_<name>.
RENTALS_SOURCE_TABLES = (
    *("country", "city", "address", "category", "film", "film_category"),
    *("store", "staff", "inventory", "customer", "rental", "payment"),
)


def _bronze(entity: str) -> tuple[str, ...]:
    return f"bronze.{entity}", f"bronze.{entity}_rejects", PIPELINE_RUNS


# What each layer's job writes, by domain: the outlets of the DAGs' Spark tasks.
LAYER_WRITES: dict[str, dict[str, tuple[str, ...]]] = {
    "tweets": {"raw": ("raw.tweets", "ops.extractions"), "bronze": _bronze("tweets"), "gold": GOLD_TABLES["tweets"]},
    "products": {
        "raw": ("raw.products", "ops.processed_files"),
        "bronze": _bronze("products"),
        "gold": (*GOLD_TABLES["products"], SLICE_CHANGES),
    },
    "rentals": {
        "raw": tuple(f"raw.rentals_{t}" for t in RENTALS_SOURCE_TABLES),
        "bronze": (*(f"bronze.rentals_{t}" for t in RENTALS_SOURCE_TABLES), *_bronze("rentals")[1:]),
        "gold": GOLD_TABLES["rentals"],
    },
    "users": {
        "raw": ("raw.users", "ops.extractions"),
        "bronze": _bronze("users"),
        "gold": (*GOLD_TABLES["users"], SLICE_CHANGES),
    },
    "trips": {
        "raw": ("raw.trips", "ops.processed_files"),
        "bronze": _bronze("trips"),
        "gold": (*GOLD_TABLES["trips"], SLICE_CHANGES),
    },
}


def layer_writes(domain: str, layer: str) -> tuple[str, ...]:
    """The tables (``<namespace>.<table>``) the ``layer`` job of ``domain`` writes."""
    try:
        return LAYER_WRITES[domain][layer]
    except KeyError:
        raise KeyError(f"no tables declared for {domain} {layer}; domains: {sorted(LAYER_WRITES)}") from None


def iceberg_asset(table: str) -> Asset:
    """The Asset of Iceberg table ``<namespace>.<table>`` in the lakehouse catalog."""
    namespace, _, name = table.partition(".")
    if not namespace or not name or "." in name:
        raise ValueError(f"expected <namespace>.<table>, got {table!r}")
    return Asset(name=table, uri=f"iceberg://{CATALOG}/{namespace}/{name}", group="lakehouse")


def gold_assets() -> list[Asset]:
    """The Assets of every gold table of every domain."""
    return [iceberg_asset(table) for tables in GOLD_TABLES.values() for table in tables]
