"""The tweets DAG with ``LAKEHOUSE_SPARK_RUNNER=docker``: DockerOperator, podman, the proxy, the Spark image."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import Counter, defaultdict
from types import SimpleNamespace

import pytest

from devtools import spark_cds

pytestmark = pytest.mark.integration

DS = "2026-11-20"  # the session's local tweets run (tests/integration/conftest.py) is for this date too
TABLES = [
    "raw.tweets",
    "bronze.tweets",
    "bronze.tweets_rejects",
    "gold.tweets_per_hour",
    "gold.tweets_per_day",
    "gold.tweets_by_language",
    "gold.tweets_by_country",
    "gold.pipeline_runs",
    "ops.extractions",
]
# Columns that time the run that wrote a row, so they differ between any two runs.
VOLATILE = {"_loaded_at", "extraction_s", "started_at", "finished_at", "duration_s", "recorded_at"}


def slice_rows(catalog, table: str) -> Counter:
    """The rows of the ``DS`` slice as a multiset, without the ``VOLATILE`` columns."""
    from pyiceberg.expressions import EqualTo

    arrow = catalog.load_table(table).scan(row_filter=EqualTo("ds", DS)).to_arrow()
    columns = [c for c in arrow.column_names if c not in VOLATILE]
    return Counter(tuple(row[c] for c in columns) for row in arrow.select(columns).to_pylist())


def snapshot_id(catalog, table: str) -> int:
    return catalog.load_table(table).current_snapshot().snapshot_id


@pytest.fixture(scope="module")
def docker_run(docker_runner, dag_runner, tweets_source_url, containers_of):
    """The tweets DAG for ``DS`` on the session's sample, every Spark task a container; the tables right after."""
    assert containers_of() == []
    with docker_runner() as lake:
        run = dag_runner("tweets", run_conf={"source_url": tweets_source_url})
    catalog = lake.catalog()
    return SimpleNamespace(run=run, lake=lake, catalog=catalog, tables={t: slice_rows(catalog, t) for t in TABLES})


def test_the_spark_tasks_ran_in_containers_and_were_removed(docker_run, containers_of):
    states = {ti.task_id: ti.state for ti in docker_run.run.get_task_instances()}
    assert {"raw", "bronze", "gold"} <= set(states) and set(states.values()) == {"success"}
    assert containers_of() == []


def test_the_docker_runner_writes_what_the_local_runner_wrote(docker_run, tweets_run, iceberg_catalog):
    # Same sample, same ds: every table's slice is the local run's (the session's lake) row for row.
    assert tweets_run.ds == DS
    local = {t: slice_rows(iceberg_catalog, t) for t in TABLES}
    assert sum(docker_run.tables["gold.tweets_per_hour"].values()) > 0
    for table in TABLES:
        assert docker_run.tables[table] == local[table], table


def bronze_operator(*job_args: str, **kwargs):
    from include.spark_task import SparkJobOperator

    op = SparkJobOperator(domain="tweets", layer="bronze", writes=["bronze.tweets"], job_args=job_args, **kwargs)
    op.command = ["tweets", "bronze", "--ds", DS, *job_args]  # as rendered
    return op


def task_context() -> dict:
    return {"ds": DS, "outlet_events": defaultdict(lambda: SimpleNamespace(extra={}))}


def test_a_failing_job_fails_its_task_with_the_jobs_reason(docker_run, docker_runner, containers_of):
    from include.spark_task import SparkJobFailed, SparkJobOperator

    empty_ds = "2026-11-27"  # nothing landed for it: the raw job finds no file and says so
    with docker_runner(), pytest.raises(SparkJobFailed) as failure:
        op = SparkJobOperator(domain="tweets", layer="raw", writes=["raw.tweets"])
        op.command = ["tweets", "raw", "--ds", empty_ds]
        op.execute({**task_context(), "ds": empty_ds})
    message = str(failure.value)
    assert "\n" not in message
    assert f"tweets raw ds={empty_ds} failed: " in message and f"ds={empty_ds}" in message.split(" failed: ", 1)[1]
    assert containers_of() == []  # removed after the failure too


def test_a_container_stopped_mid_write_leaves_the_previous_snapshot_and_a_retry_completes(
    docker_run, docker_runner, containers_of
):
    from include.spark_task import SparkJobFailed

    catalog = docker_run.catalog
    before = snapshot_id(catalog, "bronze.tweets")
    writing = threading.Event()
    outcome = {}

    def run(op):
        try:
            outcome["result"] = op.execute(task_context())
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc

    with docker_runner():
        op = bronze_operator()  # inside: the operator takes the engine's URL and the image when it is made
        log_info = op.log.info

        def watch(fmt, *args):
            # The job logs its reconciliation, then writes its branch, audits it and fast-forwards main.
            if "reconciliation" in (fmt % args if args else fmt):
                writing.set()
            log_info(fmt, *args)

        op.log.info = watch
        worker = threading.Thread(target=run, args=(op,))
        worker.start()
        while not writing.wait(timeout=1):
            assert worker.is_alive(), outcome
        op.on_kill()  # what Airflow calls when the task is stopped: `docker stop`
        worker.join(timeout=120)
    assert isinstance(outcome.get("error"), SparkJobFailed), outcome
    assert containers_of() == []
    catalog = docker_run.lake.catalog()
    assert snapshot_id(catalog, "bronze.tweets") == before
    assert slice_rows(catalog, "bronze.tweets") == docker_run.tables["bronze.tweets"]

    with docker_runner():
        bronze_operator().execute(task_context())  # the retry
    catalog = docker_run.lake.catalog()
    # Write-audit-publish: the retry wrote and audited its branch, found main's slice already equal to it (the killed
    # run never fast-forwarded), so main keeps its snapshot; every table equals the clean run's.
    assert snapshot_id(catalog, "bronze.tweets") == before
    for table in TABLES:
        assert slice_rows(catalog, table) == docker_run.tables[table], table


def test_secrets_reach_the_job_only_through_the_private_environment(docker_run, docker_runner, capfd):
    # The job's stand-in prints digests of what it received: the log may show those, never the values.
    probe = (
        "import hashlib, os, sys\n"
        "for key in ('S3_SECRET_KEY', 'LAKEHOUSE_CATALOG_PASSWORD'):\n"
        "    print(key, hashlib.sha256(os.environ[key].encode()).hexdigest())\n"
        "print('args', *sys.argv[1:])\n"
        "print('jvm options', os.environ.get('SPARK_SUBMIT_OPTS'))\n"
    )
    lines = []
    with docker_runner() as lake:
        op = bronze_operator(entrypoint=["python3", "-c", probe])
        log_info = op.log.info
        op.log.info = lambda fmt, *args: lines.append(fmt % args if args else fmt) or log_info(fmt, *args)
        op.execute(task_context())
    secrets = {"S3_SECRET_KEY": lake.s3_secret, "LAKEHOUSE_CATALOG_PASSWORD": lake.catalog_password}
    for key, value in secrets.items():
        assert f"{key} {hashlib.sha256(value.encode()).hexdigest()}" in lines
        assert key not in op.environment and op._private_environment[key] == value
    assert f"args tweets bronze --ds {DS}" in lines
    # The worker's LAKEHOUSE_SPARK_JVM_OPTS (the tests' own JVM options, containers/conftest.py) reach the job.
    # The host's class-data archive stays on the host (the containers have no such file).
    options = spark_cds.without_archive(os.environ["SPARK_SUBMIT_OPTS"])
    assert f"jvm options {options}" in lines and "-XX:+UseSerialGC" in options
    captured = capfd.readouterr()
    printed = "\n".join(lines) + captured.out + captured.err
    assert not [key for key, value in secrets.items() if value in printed or value in repr(op.environment)]
