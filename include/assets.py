"""Airflow Assets naming the Iceberg tables the Spark tasks write."""

from __future__ import annotations

from airflow.sdk import Asset

CATALOG = "lake"


def iceberg_asset(table: str) -> Asset:
    """The Asset of Iceberg table ``<namespace>.<table>`` in the lakehouse catalog."""
    namespace, _, name = table.partition(".")
    if not namespace or not name or "." in name:
        raise ValueError(f"expected <namespace>.<table>, got {table!r}")
    return Asset(name=table, uri=f"iceberg://{CATALOG}/{namespace}/{name}", group="lakehouse")
