"""Airflow-side settings, read from the environment once per process (no Airflow connection lookups here)."""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from functools import cache

RUNNERS = ("docker", "local")


@dataclass(frozen=True)
class Settings:
    """Where and how Spark jobs run, and which Airflow connections they use."""

    spark_runner: str
    spark_image: str
    docker_url: str
    docker_network: str
    local_spark_command: tuple[str, ...]
    s3_conn_id: str
    catalog_conn_id: str
    warehouse: str
    landing_bucket: str

    @classmethod
    def from_env(cls) -> Settings:
        runner = os.environ.get("LAKEHOUSE_SPARK_RUNNER", "docker").strip().lower()
        if runner not in RUNNERS:
            raise ValueError(f"LAKEHOUSE_SPARK_RUNNER must be one of {RUNNERS}, got {runner!r}")
        local = os.environ.get("LAKEHOUSE_SPARK_LOCAL_COMMAND")
        return cls(
            spark_runner=runner,
            spark_image=os.environ.get("LAKEHOUSE_SPARK_IMAGE", "lakehouse-spark:latest"),
            docker_url=os.environ.get("LAKEHOUSE_DOCKER_URL", "tcp://docker-proxy:2375"),
            docker_network=os.environ.get("LAKEHOUSE_DOCKER_NETWORK", "lakehouse"),
            # The image's entrypoint is `python -m lakehouse_jobs`; the local runner prefixes the same arguments.
            local_spark_command=tuple(shlex.split(local)) if local else (sys.executable, "-m", "lakehouse_jobs"),
            s3_conn_id=os.environ.get("LAKEHOUSE_S3_CONN_ID", "lakehouse_s3"),
            catalog_conn_id=os.environ.get("LAKEHOUSE_CATALOG_CONN_ID", "iceberg_catalog"),
            warehouse=os.environ.get("LAKEHOUSE_WAREHOUSE", "s3a://lakehouse/warehouse"),
            landing_bucket=os.environ.get("LAKEHOUSE_LANDING_BUCKET", "landing"),
        )


@cache
def load_settings() -> Settings:
    """The process-wide settings (tests call ``load_settings.cache_clear()`` after changing the environment)."""
    return Settings.from_env()
