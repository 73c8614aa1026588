"""The operator every Spark task uses: a DockerOperator that can also run the same command line locally."""

from __future__ import annotations

import collections
import datetime as dt
import os
import subprocess
from collections.abc import Sequence

from airflow.providers.docker.operators.docker import DockerOperator

from include.assets import iceberg_asset, layer_writes
from include.settings import Settings, load_settings

# Secrets go to DockerOperator's private_environment, which is neither templated nor rendered in the UI.
SECRET_KEYS = ("S3_ACCESS_KEY", "S3_SECRET_KEY", "LAKEHOUSE_CATALOG_PASSWORD", "SOURCE_PASSWORD")
# JDBC URL scheme by Airflow connection type, for jobs that read a source database.
JDBC_SCHEMES = {"postgres": "postgresql", "mysql": "mysql"}
# Optional Spark tuning passed through from the worker's environment when set: the master, the driver's memory, and
# options for the driver's JVM (spark-submit reads SPARK_SUBMIT_OPTS; e.g. C1 only for small, short jobs).
PASSTHROUGH = {
    "LAKEHOUSE_SPARK_MASTER": "SPARK_MASTER",
    "LAKEHOUSE_SPARK_DRIVER_MEMORY": "SPARK_DRIVER_MEMORY",
    "LAKEHOUSE_SPARK_JVM_OPTS": "SPARK_SUBMIT_OPTS",
}
# The longest a Spark task may run. The Docker socket proxy's timeouts (include/docker/docker-proxy/haproxy.cfg)
# sit above it: DockerOperator's wait request stays silent for the whole job.
EXECUTION_TIMEOUT = dt.timedelta(hours=4)


class SparkJobFailed(RuntimeError):
    """The Spark job exited non-zero; the message is the job's one-line reason."""


def failure_reason(lines: Sequence[str]) -> str:
    """The job's one-line reason among its last output lines (``<domain> <layer> ds=... failed: ...``)."""
    return next((t for t in reversed(lines) if " failed: " in t), lines[-1] if lines else "no output")


def job_environment(settings: Settings) -> dict[str, str]:
    """Resolve the Airflow connections into the job's environment. Call only at task run time."""
    from airflow.sdk import BaseHook

    s3 = BaseHook.get_connection(settings.s3_conn_id)
    s3_extra = s3.extra_dejson
    endpoint = s3_extra.get("endpoint_url") or s3_extra.get("host")
    if not endpoint:
        raise ValueError(f"connection {settings.s3_conn_id!r} needs extra.endpoint_url (the MinIO/S3 URL)")
    catalog = BaseHook.get_connection(settings.catalog_conn_id)
    if not catalog.host or not catalog.schema:
        raise ValueError(f"connection {settings.catalog_conn_id!r} needs a host and a schema (the catalog database)")
    env = {
        "S3_ENDPOINT": endpoint,
        "S3_REGION": s3_extra.get("region_name", "us-east-1"),
        "S3_ACCESS_KEY": s3.login or "",
        "S3_SECRET_KEY": s3.password or "",
        "LAKEHOUSE_CATALOG_URI": f"jdbc:postgresql://{catalog.host}:{catalog.port or 5432}/{catalog.schema}",
        "LAKEHOUSE_CATALOG_USER": catalog.login or "",
        "LAKEHOUSE_CATALOG_PASSWORD": catalog.password or "",
        "LAKEHOUSE_WAREHOUSE": settings.warehouse,
        "LAKEHOUSE_LANDING_BUCKET": settings.landing_bucket,
    }
    env.update({job_key: os.environ[key] for key, job_key in PASSTHROUGH.items() if os.environ.get(key)})
    return env


def source_environment(conn_id: str) -> dict[str, str]:
    """Resolve a source database connection into ``SOURCE_JDBC_URL``, ``SOURCE_USER`` and ``SOURCE_PASSWORD``.

    Call only at task run time. The connection's schema is the database.
    """
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    scheme = JDBC_SCHEMES.get(conn.conn_type or "")
    if not scheme or not conn.host or not conn.schema:
        raise ValueError(
            f"connection {conn_id!r} needs a type among {sorted(JDBC_SCHEMES)}, a host and a schema (the database)"
        )
    port = f":{conn.port}" if conn.port else ""
    return {
        "SOURCE_JDBC_URL": f"jdbc:{scheme}://{conn.host}{port}/{conn.schema}",
        "SOURCE_USER": conn.login or "",
        "SOURCE_PASSWORD": conn.password or "",
    }


class SparkJobOperator(DockerOperator):
    """Run ``<domain> <layer> --ds {{ ds }} [job_args]`` in the Spark image.

    With ``LAKEHOUSE_SPARK_RUNNER=local`` the identical arguments run as a subprocess of the worker
    (``python -m lakehouse_jobs ...``) instead of a container; both stream the job's output into the task log.

    Args:
        domain: the pipeline, e.g. ``tweets``.
        layer: ``raw``, ``bronze`` or ``gold``.
        writes: the Iceberg tables (``<namespace>.<table>``) the job writes, declared as outlet Assets; by default
            those ``include.assets.LAYER_WRITES`` declares for the domain's layer.
        job_args: extra job options (templated), e.g. ``["--max-reject-ratio", "{{ params.max_reject_ratio }}"]``.
        source_conn_id: a database connection (templated) the job reads, given to it as ``SOURCE_JDBC_URL``,
            ``SOURCE_USER`` and ``SOURCE_PASSWORD``.
    """

    template_fields = (*DockerOperator.template_fields, "source_conn_id")
    ui_color = "#fde8d7"

    def __init__(
        self,
        *,
        domain: str,
        layer: str,
        writes: Sequence[str] | None = None,
        job_args: Sequence[str] = (),
        source_conn_id: str | None = None,
        **kwargs,
    ) -> None:
        settings = load_settings()
        kwargs.setdefault("task_id", layer)
        kwargs.setdefault("image", settings.spark_image)
        kwargs.setdefault("docker_url", settings.docker_url)
        kwargs.setdefault("network_mode", settings.docker_network)
        # Removed after a failure too: the log is in Airflow, and failed containers would pile up on the engine.
        kwargs.setdefault("auto_remove", "force")
        kwargs.setdefault("execution_timeout", EXECUTION_TIMEOUT)
        if writes is None:
            writes = layer_writes(domain, layer)
        kwargs.setdefault("outlets", [iceberg_asset(t) for t in writes])
        super().__init__(
            command=[domain, layer, "--ds", "{{ ds }}", *job_args],
            mount_tmp_dir=False,
            **kwargs,
        )
        self.domain = domain
        self.layer = layer
        self.source_conn_id = source_conn_id
        self._process: subprocess.Popen | None = None

    def execute(self, context):
        settings = load_settings()
        env = job_environment(settings)
        if self.source_conn_id:
            env.update(source_environment(self.source_conn_id))
        if settings.spark_runner == "local":
            result = self._run_local(settings, env)
        else:
            self.environment = {**self.environment, **{k: v for k, v in env.items() if k not in SECRET_KEYS}}
            self._private_environment = {**self._private_environment, **{k: env[k] for k in SECRET_KEYS if k in env}}
            result = self._run_container(context)
        # Downstream consumers (the serve DAG) learn which slice changed from the asset event.
        for asset in self.outlets:
            context["outlet_events"][asset].extra = {"ds": context["ds"], "producer": f"{self.domain}.{self.layer}"}
        return result

    def _run_container(self, context):
        from airflow.providers.docker.exceptions import DockerContainerFailedException

        try:
            return super().execute(context)
        except DockerContainerFailedException as exc:
            lines = [line.decode() if isinstance(line, bytes) else line for line in exc.logs or []]
            lines = [line.rstrip("\n") for line in lines if line.strip()]
            raise SparkJobFailed(f"Spark job failed in its container ({exc}): {failure_reason(lines[-20:])}") from exc

    def _run_local(self, settings: Settings, env: dict[str, str]) -> str:
        command = [*settings.local_spark_command, *self.command]
        self.log.info("Running Spark job locally: %s", " ".join(command))
        tail: collections.deque[str] = collections.deque(maxlen=20)
        self._process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        assert self._process.stdout is not None
        for line in self._process.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            self.log.info("%s", line)
        code = self._process.wait()
        if code != 0:
            raise SparkJobFailed(f"Spark job exited with {code}: {failure_reason(tail)}")
        return tail[-1] if tail else ""

    def on_kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self.log.info("Terminating the local Spark job")
            self._process.terminate()
            return
        # Stop only (SIGTERM through tini, SIGKILL after 10 s): execute's own clean-up removes the container once
        # the job has exited. DockerOperator.on_kill removes it as well, and whichever removal lost the race got a
        # 404 that replaced the job's failure in the task's error.
        if self.container is not None and self.hook.client_created:
            self.log.info("Stopping the Spark container %s", self.container["Id"])
            self.cli.stop(self.container["Id"])
