"""Announce the older gold slices a run changed, so the serve DAG reloads them as well as the run's own."""

# A master table whose `ds` is "the run that last changed the row" moves a changed row from its old slice to the
# run's slice. The serving copies replace whole slices, so the old slice must be served again too, or it would keep
# the row's previous version. The Spark job records such slices in `ops.slice_changes`; this module reads them
# (PyIceberg, read-only: Spark owns Iceberg writes) and adds one asset event per slice through an `AssetAlias`.

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

SLICE_CHANGES = "ops.slice_changes"


def changed_slices(table: str, ds: str, catalog: Any = None) -> list[str]:
    """The ``ds`` slices of ``table``, other than ``ds`` itself, that the run of ``ds`` took rows out of.

    Args:
        table: ``<namespace>.<table>``, e.g. ``gold.product_master``.
        ds: the run's slice, ``YYYY-MM-DD``.
        catalog: a PyIceberg catalog; by default the lakehouse catalog from the Airflow connections.

    Returns:
        The slices, as sorted ISO dates.
    """
    from pyiceberg.exceptions import NoSuchTableError
    from pyiceberg.expressions import And, EqualTo

    if catalog is None:
        from include.serving.source import load_catalog

        catalog = load_catalog()
    try:
        changes = catalog.load_table(SLICE_CHANGES)
    except NoSuchTableError:
        return []
    rows = changes.scan(
        row_filter=And(EqualTo("table_name", table), EqualTo("ds", ds)), selected_fields=("changed_ds",)
    ).to_arrow()
    return sorted({day.isoformat() for day in rows.column("changed_ds").to_pylist()} - {ds})


def announce_changed_slices(alias_events: Any, table: str, ds: str, catalog: Any = None) -> list[str]:
    """Add an event of ``table``'s Asset, with ``extra={"ds": slice}``, for each slice the run of ``ds`` changed.

    Args:
        alias_events: ``outlet_events[<the task's AssetAlias>]``.
        table: the gold table, ``<namespace>.<table>``.
        ds: the run's slice.
        catalog: a PyIceberg catalog (default: from the Airflow connections).

    Returns:
        The announced slices.
    """
    from include.assets import iceberg_asset

    slices = changed_slices(table, ds, catalog)
    for slice_ds in slices:
        alias_events.add(iceberg_asset(table), extra={"ds": slice_ds, "producer": f"{table} rows moved by ds={ds}"})
    log.info("%s: run ds=%s changed older slices %s", table, ds, slices or "none")
    return slices
