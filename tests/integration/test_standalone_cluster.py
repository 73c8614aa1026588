"""A Spark job runs unchanged on a standalone master and worker: nothing ties the jobs to local mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from devtools import local_stack

pytestmark = pytest.mark.integration

DS = "2026-11-19"


def spark_class(*args: str, log: Path) -> subprocess.Popen:
    import pyspark

    home = os.path.dirname(pyspark.__file__)
    env = {**os.environ, "SPARK_HOME": home, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_NO_DAEMONIZE": "1"}
    out = open(log, "w")  # noqa: SIM115 - the process owns it until the fixture ends
    return subprocess.Popen([f"{home}/bin/spark-class", *args], env=env, stdout=out, stderr=out)


def master_state(ui_port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    logs = tmp_path_factory.mktemp("spark-cluster")
    port, ui_port = local_stack.free_port(), local_stack.free_port()
    master = spark_class(
        "org.apache.spark.deploy.master.Master",
        *("--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui_port)),
        log=logs / "master.log",
    )
    worker = None
    try:
        local_stack.wait_for_port(port, timeout=60)
        local_stack.wait_for_port(ui_port, timeout=60)
        url = f"spark://127.0.0.1:{port}"
        worker = spark_class(
            "org.apache.spark.deploy.worker.Worker",
            *(url, "--cores", "2", "--memory", "2g", "--webui-port", str(local_stack.free_port())),
            log=logs / "worker.log",
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and master_state(ui_port).get("aliveworkers", 0) < 1:
            time.sleep(0.5)
        assert master_state(ui_port)["aliveworkers"] == 1, (logs / "worker.log").read_text()[-2000:]
        yield url, ui_port
    finally:
        for proc in (worker, master):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)


def test_raw_job_runs_on_the_standalone_cluster(cluster, lake_env, s3, iceberg_catalog):
    from pyiceberg.expressions import EqualTo

    url, ui_port = cluster
    lines = ["tweet_id\tdate\ttime\tlang\tcountry_code"] + [f"{i}\t2020-03-28\t10:00:00\ten\t" for i in range(1, 501)]
    s3.put_object(Bucket="landing", Key=f"tweets/ds={DS}/cluster.tsv", Body=("\n".join(lines) + "\n").encode())

    proc = subprocess.run(
        [sys.executable, "-m", "lakehouse_jobs", "tweets", "raw", "--ds", DS],
        env={**os.environ, **lake_env, "SPARK_MASTER": url, "SPARK_DRIVER_MEMORY": "1g"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    apps = master_state(ui_port)["completedapps"] + master_state(ui_port)["activeapps"]
    assert "tweets-raw" in {app["name"] for app in apps}
    rows = iceberg_catalog.load_table("raw.tweets").scan(row_filter=EqualTo("ds", DS)).to_arrow()
    assert sorted(rows.column("_line_number").to_pylist()) == list(range(1, len(lines) + 1))
    assert sorted(rows.column("line").to_pylist()) == sorted(lines)
