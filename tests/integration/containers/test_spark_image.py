"""The Spark image built from spark/Dockerfile: the local runner's jars, and a job on a standalone cluster of it."""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from devtools import local_stack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
DS = "2026-11-18"  # a slice no other test of the containers' lake writes
SHARED_JARS = ("iceberg-spark-runtime-3.5_2.12-1.9.2.jar", "hadoop-aws-3.3.1.jar", "aws-java-sdk-bundle-1.11.901.jar")


def in_image(docker_client, image: str, *command: str) -> str:
    return docker_client.containers.run(image, list(command[1:]), entrypoint=[command[0]], remove=True).decode()


def test_the_image_runs_the_local_runners_jars(docker_client, spark_image):
    listed = in_image(docker_client, spark_image, "sha256sum", *(f"/opt/spark/jars/{name}" for name in SHARED_JARS))
    in_the_image = {Path(path).name: digest for digest, path in (line.split() for line in listed.splitlines())}
    local = {name: hashlib.sha256((ROOT / ".jars" / name).read_bytes()).hexdigest() for name in SHARED_JARS}
    assert in_the_image == local
    pinned = {
        p.rsplit("/", 1)[-1]: s
        for s, p in (
            line.split()
            for line in (ROOT / "spark" / "jars.sha256").open()
            if line.strip() and not line.startswith("#")
        )
    }
    assert {name: pinned[name] for name in SHARED_JARS} == local
    # The Hadoop client the image's Spark bundles, which hadoop-aws 3.3.1 runs on, and the image's own user.
    assert "hadoop-client-api-3.3.4.jar" in in_image(docker_client, spark_image, "ls", "/opt/spark/jars")
    assert in_image(docker_client, spark_image, "id", "-u").strip() == "185"


def spark_class(docker_client, image: str, *args: str):
    """A master or worker of the image's own Spark, on the host's network like the jobs here."""
    return docker_client.containers.run(
        image,
        ["org.apache.spark.deploy." + args[0], *args[1:]],
        entrypoint=["/opt/spark/bin/spark-class"],
        environment={"SPARK_LOCAL_IP": "127.0.0.1", "SPARK_NO_DAEMONIZE": "1"},
        network_mode="host",
        detach=True,
    )


def master_state(ui_port: int) -> dict:
    return requests.get(f"http://127.0.0.1:{ui_port}/json/", timeout=5).json()


@pytest.fixture(scope="module")
def image_cluster(docker_client, spark_image):
    """A standalone master and worker, both containers of the Spark image; yields (master URL, UI port)."""
    port, ui_port = local_stack.free_port(), local_stack.free_port()
    started = [
        spark_class(
            docker_client,
            spark_image,
            "master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(ui_port),
        )
    ]
    try:
        local_stack.wait_for_port(ui_port, timeout=60)
        url = f"spark://127.0.0.1:{port}"
        started.append(
            spark_class(
                docker_client,
                spark_image,
                "worker.Worker",
                url,
                "--cores",
                "2",
                "--memory",
                "2g",
                "--work-dir",
                "/opt/spark/work-dir/worker",  # the image user's own directory
                "--webui-port",
                str(local_stack.free_port()),
            )
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and master_state(ui_port).get("aliveworkers", 0) < 1:
            time.sleep(0.5)
        assert master_state(ui_port)["aliveworkers"] == 1, started[-1].logs()[-2000:]
        yield url, ui_port
    finally:
        for container in reversed(started):
            container.remove(force=True)


def test_the_image_runs_a_job_on_a_standalone_cluster_of_itself(image_cluster, docker_runner, container_lake):
    from pyiceberg.expressions import EqualTo

    from include.spark_task import SparkJobOperator

    url, ui_port = image_cluster
    lines = ["tweet_id\tdate\ttime\tlang\tcountry_code"] + [f"{i}\t2020-03-28\t10:00:00\ten\t" for i in range(1, 301)]
    s3 = local_stack.s3_client(container_lake.s3_endpoint)
    s3.put_object(Bucket="landing", Key=f"tweets/ds={DS}/cluster.tsv", Body=("\n".join(lines) + "\n").encode())

    with docker_runner(LAKEHOUSE_SPARK_MASTER=url, LAKEHOUSE_SPARK_DRIVER_MEMORY="1g"):
        op = SparkJobOperator(domain="tweets", layer="raw", writes=["raw.tweets"])
        op.command = ["tweets", "raw", "--ds", DS]
        op.execute({"ds": DS, "outlet_events": defaultdict(lambda: SimpleNamespace(extra={}))})
    assert op.environment["SPARK_MASTER"] == url

    state = master_state(ui_port)
    assert "tweets-raw" in {app["name"] for app in state["completedapps"] + state["activeapps"]}
    rows = container_lake.catalog().load_table("raw.tweets").scan(row_filter=EqualTo("ds", DS)).to_arrow()
    assert sorted(rows.column("line").to_pylist()) == sorted(lines)


def test_a_local_jar_that_differs_from_its_pinned_checksum_fails_the_build(spark_image, tmp_path):
    from devtools import podman_stack

    for jar in podman_stack.local_jars().glob("*.jar"):
        (tmp_path / jar.name).write_bytes(jar.read_bytes())
    with (tmp_path / "hadoop-aws-3.3.1.jar").open("ab") as jar:
        jar.write(b"\0")  # one byte more: a corrupted or swapped file
    args = ["--target", "jars-local", "--build-arg", f"SPARK_BASE={podman_stack.spark_base_image()}"]
    args += ["--build-arg", "JARS_SOURCE=local", "--build-context", f"local-jars={tmp_path}"]
    build = podman_stack.podman("build", *args, str(podman_stack.SPARK_CONTEXT), check=False)
    assert build.returncode != 0
    assert "hadoop-aws-3.3.1.jar: FAILED" in build.stdout + build.stderr
