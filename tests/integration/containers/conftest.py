"""Spark jobs in containers: podman's Docker API behind the filtered proxy, the Spark image, a lake of their own.

Nothing here skips: podman starts on the development and CI machines, so an engine that does not come up fails.
The image is built once per session and reused across sessions while its inputs are unchanged (its tag is a key
over them); the containers' lake (a moto S3 server and a catalog database) is separate from the session's, so the
DockerOperator runs leave the local-runner tests' tables alone.
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools import local_stack, podman_stack, spark_cds


@pytest.fixture(scope="session")
def podman_socket(tmp_path_factory) -> Path:
    with podman_stack.podman_service(tmp_path_factory.mktemp("podman") / "service.log") as sock:
        yield sock


@pytest.fixture(scope="session")
def docker_url(podman_socket, tmp_path_factory) -> str:
    """The filtered proxy in front of podman: what DockerOperator talks to, as in compose."""
    with podman_stack.docker_proxy(podman_socket, tmp_path_factory.mktemp("proxy") / "haproxy.log") as url:
        yield url


@pytest.fixture(scope="session")
def docker_client(podman_socket):
    """A Docker client on podman's own socket, for the tests' look-ups (not filtered, unlike the tasks' proxy)."""
    import docker

    client = docker.DockerClient(base_url=f"unix://{podman_socket}", timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="session")
def spark_image() -> str:
    """``spark/Dockerfile`` built on the offline base with the local jars (a no-op when its key is unchanged)."""
    image, _ = podman_stack.build_spark_image()
    return image


@dataclass(frozen=True)
class ContainerLake:
    s3_endpoint: str
    catalog_db: str
    s3_secret: str
    catalog_password: str

    def airflow_connections(self) -> dict[str, str]:
        """The Airflow connections of this lake, with secrets of their own (moto and local PostgreSQL ignore them)."""
        s3 = {
            "conn_type": "aws",
            "login": local_stack.S3_KEY,
            "password": self.s3_secret,
            "extra": {"endpoint_url": self.s3_endpoint, "region_name": "us-east-1"},
        }
        catalog = {
            "conn_type": "postgres",
            "host": local_stack.PG_HOST,
            "port": local_stack.PG_PORT,
            "login": local_stack.PG_USER,
            "password": self.catalog_password,
            "schema": self.catalog_db,
        }
        return {"AIRFLOW_CONN_LAKEHOUSE_S3": json.dumps(s3), "AIRFLOW_CONN_ICEBERG_CATALOG": json.dumps(catalog)}

    def catalog(self):
        return local_stack.pyiceberg_catalog(self.s3_endpoint, self.catalog_db)


@pytest.fixture(scope="session")
def container_lake(lake_env, tmp_path_factory) -> ContainerLake:
    """A moto S3 server and a fresh catalog database for the containers' runs (``lake_env`` first: it sets the env)."""
    name = f"lakehouse_docker_{uuid.uuid4().hex[:8]}"
    local_stack.recreate_database(name)
    with local_stack.moto_s3(tmp_path_factory.mktemp("moto-docker") / "moto.log") as endpoint:
        yield ContainerLake(endpoint, name, f"s3-secret-{uuid.uuid4().hex}", f"catalog-secret-{uuid.uuid4().hex}")
    local_stack.drop_database(name)


@pytest.fixture(scope="session")
def docker_runner(container_lake, docker_url, spark_image, airflow_db):
    """A context manager: inside it, Spark tasks run as containers of ``spark_image`` through the proxy.

    Spark containers share the host's network (``network_mode=host``) to reach moto and PostgreSQL on 127.0.0.1.
    Their driver JVMs get the options of the tests' local JVMs (``SPARK_SUBMIT_OPTS``, tests/conftest.py) through the
    runner's ``LAKEHOUSE_SPARK_JVM_OPTS``, as a deployment of small jobs would set it; the images keep the defaults.
    """
    from include.settings import load_settings

    @contextmanager
    def runner(**extra: str):
        with pytest.MonkeyPatch.context() as mp:
            env = {
                **container_lake.airflow_connections(),
                "LAKEHOUSE_SPARK_RUNNER": "docker",
                "LAKEHOUSE_DOCKER_URL": docker_url,
                "LAKEHOUSE_SPARK_IMAGE": spark_image,
                "LAKEHOUSE_DOCKER_NETWORK": "host",
                "LAKEHOUSE_SPARK_JVM_OPTS": spark_cds.without_archive(os.environ.get("SPARK_SUBMIT_OPTS", "")),
                **extra,
            }
            for key, value in env.items():
                mp.setenv(key, value)
            load_settings.cache_clear()
            try:
                yield container_lake
            finally:
                load_settings.cache_clear()
        load_settings.cache_clear()
        assert os.environ.get("LAKEHOUSE_SPARK_RUNNER") == "local"

    return runner


@pytest.fixture(scope="session")
def containers_of(docker_client, spark_image, container_lake):
    """A callable listing this session's Spark containers on the engine, running or not.

    Other sessions on the machine run containers of the same image, so a container counts as this session's when
    its environment points at this session's S3 endpoint.
    """
    import docker

    def listing() -> list:
        mine = []
        for container in docker_client.containers.list(all=True, filters={"ancestor": spark_image}):
            try:
                container.reload()
            except docker.errors.NotFound:
                continue  # removed between the listing and the inspection
            if f"S3_ENDPOINT={container_lake.s3_endpoint}" in (container.attrs["Config"].get("Env") or []):
                mine.append(container)
        return mine

    return listing
