"""The Spark task operator: connections resolved at run time, the local runner, secrets kept private."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from types import SimpleNamespace

import pytest

S3_CONN = {
    "conn_type": "aws",
    "login": "AKIA-run-time",
    "password": "s3-secret",
    "extra": {"endpoint_url": "http://minio:9000", "region_name": "eu-west-1"},
}
CATALOG_CONN = {
    "conn_type": "postgres",
    "host": "catalog-db",
    "port": 6543,
    "login": "lake",
    "password": "pw",
    "schema": "cat",
}


@pytest.fixture
def connections(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_LAKEHOUSE_S3", json.dumps(S3_CONN))
    monkeypatch.setenv("AIRFLOW_CONN_ICEBERG_CATALOG", json.dumps(CATALOG_CONN))


def runner(monkeypatch, name: str, local_command: str | None = None):
    from include.settings import load_settings

    monkeypatch.setenv("LAKEHOUSE_SPARK_RUNNER", name)
    if local_command:
        monkeypatch.setenv("LAKEHOUSE_SPARK_LOCAL_COMMAND", local_command)
    load_settings.cache_clear()


@pytest.fixture(autouse=True)
def fresh_settings():
    from include.settings import load_settings

    load_settings.cache_clear()
    yield
    load_settings.cache_clear()


def make_operator(**kwargs):
    from include.spark_task import SparkJobOperator

    op = SparkJobOperator(domain="tweets", layer="gold", writes=["gold.tweets_per_day"], **kwargs)
    op.command = ["tweets", "gold", "--ds", "2026-11-20"]  # as rendered
    return op


def context():
    events = defaultdict(lambda: SimpleNamespace(extra={}))
    return {"ds": "2026-11-20", "outlet_events": events}


def test_job_environment_comes_from_the_connections(connections):
    from include.settings import load_settings
    from include.spark_task import job_environment

    env = job_environment(load_settings())
    assert env["S3_ENDPOINT"] == "http://minio:9000"
    assert env["S3_REGION"] == "eu-west-1"
    assert (env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"]) == ("AKIA-run-time", "s3-secret")
    assert env["LAKEHOUSE_CATALOG_URI"] == "jdbc:postgresql://catalog-db:6543/cat"
    assert (env["LAKEHOUSE_CATALOG_USER"], env["LAKEHOUSE_CATALOG_PASSWORD"]) == ("lake", "pw")


def test_spark_tuning_is_passed_through_from_the_worker_when_set(monkeypatch, connections):
    from include.settings import load_settings
    from include.spark_task import job_environment

    for name in ("LAKEHOUSE_SPARK_MASTER", "LAKEHOUSE_SPARK_DRIVER_MEMORY", "LAKEHOUSE_SPARK_JVM_OPTS"):
        monkeypatch.delenv(name, raising=False)
    unset = job_environment(load_settings())
    assert not {"SPARK_MASTER", "SPARK_DRIVER_MEMORY", "SPARK_SUBMIT_OPTS"} & set(unset)  # the image's defaults
    monkeypatch.setenv("LAKEHOUSE_SPARK_MASTER", "spark://master:7077")
    monkeypatch.setenv("LAKEHOUSE_SPARK_DRIVER_MEMORY", "1g")
    monkeypatch.setenv("LAKEHOUSE_SPARK_JVM_OPTS", "-XX:TieredStopAtLevel=1")
    env = job_environment(load_settings())
    assert (env["SPARK_MASTER"], env["SPARK_DRIVER_MEMORY"]) == ("spark://master:7077", "1g")
    assert env["SPARK_SUBMIT_OPTS"] == "-XX:TieredStopAtLevel=1"


def test_unknown_runner_is_refused(monkeypatch):
    from include.settings import Settings

    monkeypatch.setenv("LAKEHOUSE_SPARK_RUNNER", "kubernetes")
    with pytest.raises(ValueError, match="LAKEHOUSE_SPARK_RUNNER"):
        Settings.from_env()


def test_local_runner_runs_the_same_arguments_and_streams_output(monkeypatch, connections, tmp_path):
    script = tmp_path / "fake_job.py"
    script.write_text(
        "import os, sys\n"
        "print('args', ' '.join(sys.argv[1:]))\n"
        "print('endpoint', os.environ['S3_ENDPOINT'], 'catalog', os.environ['LAKEHOUSE_CATALOG_URI'])\n"
    )
    runner(monkeypatch, "local", f"{sys.executable} {script}")
    op = make_operator()
    lines = []
    monkeypatch.setattr(op.log, "info", lambda fmt, *a: lines.append(fmt % a if a else fmt))
    ctx = context()
    op.execute(ctx)
    assert "args tweets gold --ds 2026-11-20" in lines
    assert "endpoint http://minio:9000 catalog jdbc:postgresql://catalog-db:6543/cat" in lines
    assert ctx["outlet_events"][op.outlets[0]].extra == {"ds": "2026-11-20", "producer": "tweets.gold"}


def test_local_runner_failure_carries_the_jobs_one_line_reason(monkeypatch, connections, tmp_path):
    from include.spark_task import SparkJobFailed

    script = tmp_path / "failing_job.py"
    script.write_text(
        "import sys\nprint('working')\n"
        "print('tweets gold ds=2026-11-20 failed: ValueError: boom', file=sys.stderr)\nsys.exit(1)\n"
    )
    runner(monkeypatch, "local", f"{sys.executable} {script}")
    with pytest.raises(SparkJobFailed, match="exited with 1: tweets gold ds=2026-11-20 failed: ValueError: boom"):
        make_operator().execute(context())


def test_docker_runner_keeps_secrets_out_of_the_templated_environment(monkeypatch, connections):
    from airflow.providers.docker.operators.docker import DockerOperator

    runner(monkeypatch, "docker")
    seen = {}
    monkeypatch.setattr(DockerOperator, "execute", lambda self, ctx: seen.update(op=self) or "done")
    op = make_operator()
    op.execute(context())
    assert op.network_mode == "lakehouse" and op.mount_tmp_dir is False
    assert op.docker_url == "tcp://docker-proxy:2375"
    assert op.environment["S3_ENDPOINT"] == "http://minio:9000"
    for secret in ("S3_ACCESS_KEY", "S3_SECRET_KEY", "LAKEHOUSE_CATALOG_PASSWORD"):
        assert secret not in op.environment
    assert op._private_environment["S3_SECRET_KEY"] == "s3-secret"


def test_missing_endpoint_is_a_clear_error(monkeypatch, connections):
    from include.settings import load_settings
    from include.spark_task import job_environment

    monkeypatch.setenv("AIRFLOW_CONN_LAKEHOUSE_S3", json.dumps({**S3_CONN, "extra": {}}))
    with pytest.raises(ValueError, match="endpoint_url"):
        job_environment(load_settings())


def test_source_connection_is_resolved_at_run_time_with_its_password_kept_private(monkeypatch, connections):
    from airflow.providers.docker.operators.docker import DockerOperator

    from include.spark_task import SparkJobOperator

    monkeypatch.setenv(
        "AIRFLOW_CONN_DVDRENTAL_SOURCE",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": "src-db",
                "port": 5433,
                "login": "reader",
                "password": "src-pw",
                "schema": "dvd",
            }
        ),
    )
    runner(monkeypatch, "docker")
    monkeypatch.setattr(DockerOperator, "execute", lambda self, ctx: "done")
    op = SparkJobOperator(
        domain="rentals", layer="raw", writes=["raw.rentals_rental"], source_conn_id="dvdrental_source"
    )
    assert "source_conn_id" in op.template_fields
    op.execute(context())
    assert op.environment["SOURCE_JDBC_URL"] == "jdbc:postgresql://src-db:5433/dvd"
    assert op.environment["SOURCE_USER"] == "reader"
    assert "SOURCE_PASSWORD" not in op.environment
    assert op._private_environment["SOURCE_PASSWORD"] == "src-pw"
    # Without a source connection the job gets no SOURCE_* variables at all.
    plain = make_operator()
    plain.execute(context())
    assert not any(k.startswith("SOURCE_") for k in {**plain.environment, **plain._private_environment})


def test_docker_runner_failure_carries_the_jobs_one_line_reason(monkeypatch, connections):
    import datetime as dt

    from airflow.providers.docker.exceptions import DockerContainerFailedException
    from airflow.providers.docker.operators.docker import DockerOperator

    from include.spark_task import SparkJobFailed

    runner(monkeypatch, "docker")
    logs = ["working", "tweets gold ds=2026-11-20 failed: ValueError: boom", "Stopping the JVM"]

    def fail(self, ctx):
        raise DockerContainerFailedException("Docker container failed: {'StatusCode': 1}", logs=logs)

    monkeypatch.setattr(DockerOperator, "execute", fail)
    op = make_operator()
    with pytest.raises(SparkJobFailed, match=r"container .*: tweets gold ds=2026-11-20 failed: ValueError: boom$"):
        op.execute(context())
    # Removed after failures too, and never running past the proxy's timeouts (4 h < 6 h in haproxy.cfg).
    assert op.auto_remove == "force" and op.execution_timeout == dt.timedelta(hours=4)
