"""The Iceberg tables each domain's Spark jobs write, as Airflow Assets, from the declaration in include/tables.py."""

from __future__ import annotations

from airflow.sdk import Asset

from include.tables import DECLARED

CATALOG = "lake"
LAYERS = ("raw", "bronze", "gold")

# Every gold table, by domain, in declaration order (spark/lakehouse_jobs/tables.toml). The serve DAG is scheduled
# on all of them, so a new gold table is served once it is declared there, without editing the serve DAG.
GOLD_TABLES: dict[str, tuple[str, ...]] = {
    domain: tables
    for domain in DECLARED.domains
    if (tables := tuple(table.qualified for table in DECLARED.gold_tables(domain)))
}

# What each layer's job writes, by domain: the outlets of the DAGs' Spark tasks. A domain's gold job writes its gold
# tables and what the declaration adds (``gold_also``: the slices rows moved out of, see include/slice_changes.py).
LAYER_WRITES: dict[str, dict[str, tuple[str, ...]]] = {
    domain.name: {
        "raw": domain.raw,
        "bronze": domain.bronze,
        "gold": (*GOLD_TABLES.get(domain.name, ()), *domain.gold_also),
    }
    for domain in DECLARED.domains.values()
    if domain.raw or domain.bronze
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
