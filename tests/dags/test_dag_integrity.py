"""Every DAG imports cleanly, follows the project's conventions and does no connection lookups at parse time."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
ALLOWED_TAGS = {"lakehouse", "tweets", "rentals", "users", "products", "trips", "serving"}


@pytest.fixture(scope="module")
def dagbag():
    from unittest import mock

    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import BaseHook

    def forbidden(*args, **kwargs):
        raise AssertionError(f"connection lookup while parsing DAGs: {args}")

    with mock.patch.object(BaseHook, "get_connection", side_effect=forbidden):
        return DagBag(dag_folder=str(DAGS))


def dag_files() -> list[Path]:
    return sorted(p for p in DAGS.glob("*.py") if not p.name.startswith("_"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_every_file_defines_the_dag_named_after_it(dagbag):
    assert dag_files(), "no DAG files found"
    assert {p.stem for p in dag_files()} == set(dagbag.dag_ids)


@pytest.mark.parametrize("path", dag_files(), ids=lambda p: p.stem)
def test_dag_conventions(dagbag, path):
    dag = dagbag.dags[path.stem]
    assert dag.tags and set(dag.tags) <= ALLOWED_TAGS, f"tags {dag.tags} not in {ALLOWED_TAGS}"
    assert dag.doc_md and dag.doc_md.strip(), "doc_md missing"
    assert dag.default_args.get("retries", 0) >= 2
    for task in dag.tasks:
        assert task.retries >= 2, f"{task.task_id} has {task.retries} retries"
    assert len(path.read_text().splitlines()) < 100, "a DAG file is wiring and config: move logic to include/"


def test_spark_tasks_declare_their_tables_as_assets(dagbag):
    from include.spark_task import SparkJobOperator

    spark_tasks = [t for d in dagbag.dags.values() for t in d.tasks if isinstance(t, SparkJobOperator)]
    assert spark_tasks
    for task in spark_tasks:
        uris = [o.uri for o in task.outlets]
        assert uris and all(u.startswith("iceberg://lake/") for u in uris), f"{task.task_id}: {uris}"
        assert task.command[:4] == [task.domain, task.layer, "--ds", "{{ ds }}"]
        assert task.mount_tmp_dir is False
