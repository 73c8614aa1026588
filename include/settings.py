"""Airflow-side settings, read from the environment once per process (no Airflow connection lookups here).

Every field is the environment variable ``LAKEHOUSE_<FIELD>`` (``LAKEHOUSE_SPARK_RUNNER``, ``LAKEHOUSE_S3_CONN_ID``,
...; the local runner's command line is ``LAKEHOUSE_SPARK_LOCAL_COMMAND``), read and validated by pydantic-settings;
a bad value fails with the variable's name and what it accepts.
"""

from __future__ import annotations

import shlex
import sys
from functools import cache
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

RUNNERS = ("docker", "local")


def _normalised(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _command(value: object) -> object:
    """``LAKEHOUSE_SPARK_LOCAL_COMMAND`` is a shell-quoted command line; empty means the default."""
    if isinstance(value, str):
        return tuple(shlex.split(value)) or _default_command()
    return value


def _default_command() -> tuple[str, ...]:
    # The image's entrypoint is `python -m lakehouse_jobs`; the local runner prefixes the same arguments.
    return (sys.executable, "-m", "lakehouse_jobs")


class Settings(BaseSettings):
    """Where and how Spark jobs run, and which Airflow connections they use."""

    model_config = SettingsConfigDict(env_prefix="LAKEHOUSE_", frozen=True, extra="ignore")

    spark_runner: Annotated[Literal["docker", "local"], BeforeValidator(_normalised)] = "docker"
    spark_image: str = "lakehouse-spark:latest"
    docker_url: str = "tcp://docker-proxy:2375"
    docker_network: str = "lakehouse"
    local_spark_command: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_command)] = Field(
        default_factory=_default_command, validation_alias="LAKEHOUSE_SPARK_LOCAL_COMMAND"
    )
    s3_conn_id: str = "lakehouse_s3"
    catalog_conn_id: str = "iceberg_catalog"
    warehouse: str = "s3a://lakehouse/warehouse"
    landing_bucket: str = "landing"

    @classmethod
    def from_env(cls) -> Settings:
        """Read the environment; a bad value raises ``ValueError`` naming the variable and what it accepts."""
        try:
            return cls()
        except ValidationError as exc:
            problems = "; ".join(f"{_variable(error['loc'])}: {error['msg']}" for error in exc.errors())
            raise ValueError(f"bad Airflow-side settings: {problems}") from exc


def _variable(loc: tuple) -> str:
    name = str(loc[0]) if loc else "?"
    return name if name.startswith("LAKEHOUSE_") else f"LAKEHOUSE_{name.upper()}"


@cache
def load_settings() -> Settings:
    """The process-wide settings (tests call ``load_settings.cache_clear()`` after changing the environment)."""
    return Settings.from_env()
