"""The shape every lakehouse DAG shares: its defaults, the raw → bronze → gold Spark tasks, the slice announcements.

A DAG file keeps what is its own (its source task, its params, its schedule) and wires these with ``>>``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import AssetAlias, Param, dag, task

from include.assets import LAYERS
from include.spark_task import SparkJobOperator

START_DATE = datetime(2026, 1, 1)
RETRY_DELAY = timedelta(minutes=2)
OWNER = "data-platform"


def lakehouse_dag(
    tag: str,
    *,
    schedule: Any,
    doc_md: str | None,
    params: dict[str, Param] | None = None,
    max_reject_ratio: float | None = None,
    start_date: datetime = START_DATE,
    retry_delay: timedelta = RETRY_DELAY,
):
    """The ``@dag`` decorator with the project's defaults: one run at a time, no catch-up, two retries a task.

    Args:
        tag: the DAG's own tag, beside ``lakehouse`` (the domain, or ``serving``).
        schedule: the DAG's schedule.
        doc_md: the DAG file's docstring.
        params: the DAG's own params.
        max_reject_ratio: when given, the default of the ``max_reject_ratio`` param bronze fails above.
        start_date: the first data interval's start.
        retry_delay: the wait before a task's retry.
    """
    params = dict(params or {})
    if max_reject_ratio is not None:
        params["max_reject_ratio"] = Param(
            max_reject_ratio, type="number", minimum=0, maximum=1, description="fail bronze above this"
        )
    return dag(
        schedule=schedule,
        start_date=start_date,
        catchup=False,
        max_active_runs=1,
        tags=["lakehouse", tag],
        doc_md=doc_md,
        default_args={"owner": OWNER, "retries": 2, "retry_delay": retry_delay},
        params=params,
    )


def spark_layers(domain: str, *, raw_args: list[str] | None = None, **kwargs: Any) -> list[SparkJobOperator]:
    """The domain's raw, bronze and gold Spark tasks (task ids ``raw``, ``bronze``, ``gold``), not yet wired.

    Each declares the tables its job writes (``include.assets.LAYER_WRITES``) as outlet Assets; bronze gets
    ``--max-reject-ratio {{ params.max_reject_ratio }}``.

    Args:
        domain: the pipeline, e.g. ``tweets``.
        raw_args: the raw job's options (templated).
        kwargs: given to every task, e.g. ``on_failure_callback``; ``source_conn_id`` goes to the raw task only.
    """
    source_conn_id = kwargs.pop("source_conn_id", None)
    job_args = {
        "raw": raw_args or [],
        "bronze": ["--max-reject-ratio", "{{ params.max_reject_ratio }}"],
        "gold": [],
    }
    return [
        SparkJobOperator(
            domain=domain,
            layer=layer,
            job_args=job_args[layer],
            **({"source_conn_id": source_conn_id} if layer == "raw" and source_conn_id else {}),
            **kwargs,
        )
        for layer in LAYERS
    ]


def announce_changed_slices(task_id: str, alias: str, table: str):
    """A task announcing, on the AssetAlias ``alias``, the older slices of ``table`` the run took rows out of.

    The serve DAG then reloads those slices as well as the run's own (see ``include.slice_changes``).
    """
    changed = AssetAlias(alias)

    @task(task_id=task_id, outlets=[changed])
    def announce(ds=None, outlet_events=None) -> list[str]:
        """Announce the older slices this run took rows out of, so the serve DAG reloads them."""
        from include.slice_changes import announce_changed_slices as announce_slices

        return announce_slices(outlet_events[changed], table, ds)

    return announce()
