"""The one SparkSession builder: every setting comes from environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

CATALOG = "lake"


class ConfigError(RuntimeError):
    """A required environment variable is missing or malformed."""


@dataclass(frozen=True)
class JobEnv:
    """Connection settings of a job, read from the environment the operator prepared."""

    catalog_uri: str
    catalog_user: str
    catalog_password: str = field(repr=False)  # a repr lands in tracebacks and logs: secrets stay out of it
    warehouse: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str = field(repr=False)
    s3_region: str = "us-east-1"
    landing_bucket: str = "landing"
    master: str = "local[*]"
    driver_memory: str = "4g"
    extra_jars: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> JobEnv:
        """Build the settings from `env` (default: `os.environ`), failing on the first missing variable."""
        env = os.environ if env is None else env

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise ConfigError(f"environment variable {name} is not set")
            return value

        uri = required("LAKEHOUSE_CATALOG_URI")
        if not uri.startswith("jdbc:"):
            raise ConfigError(f"LAKEHOUSE_CATALOG_URI must be a JDBC URL, got {uri!r}")
        return cls(
            catalog_uri=uri,
            catalog_user=required("LAKEHOUSE_CATALOG_USER"),
            catalog_password=env.get("LAKEHOUSE_CATALOG_PASSWORD", ""),
            warehouse=env.get("LAKEHOUSE_WAREHOUSE", "s3a://lakehouse/warehouse"),
            s3_endpoint=required("S3_ENDPOINT"),
            s3_access_key=required("S3_ACCESS_KEY"),
            s3_secret_key=required("S3_SECRET_KEY"),
            s3_region=env.get("S3_REGION", "us-east-1"),
            landing_bucket=env.get("LAKEHOUSE_LANDING_BUCKET", "landing"),
            master=env.get("SPARK_MASTER", "local[*]") or "local[*]",
            driver_memory=env.get("SPARK_DRIVER_MEMORY", "4g") or "4g",
            extra_jars=env.get("SPARK_EXTRA_JARS", ""),
        )

    def spark_conf(self) -> dict[str, str]:
        """Every Spark property the lakehouse needs (the image's spark-defaults.conf repeats the static ones)."""
        conf = {
            "spark.master": self.master,
            "spark.driver.memory": self.driver_memory,
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
            f"spark.sql.catalog.{CATALOG}": "org.apache.iceberg.spark.SparkCatalog",
            f"spark.sql.catalog.{CATALOG}.catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
            f"spark.sql.catalog.{CATALOG}.uri": self.catalog_uri,
            f"spark.sql.catalog.{CATALOG}.jdbc.user": self.catalog_user,
            f"spark.sql.catalog.{CATALOG}.jdbc.password": self.catalog_password,
            f"spark.sql.catalog.{CATALOG}.jdbc.schema-version": "V1",
            f"spark.sql.catalog.{CATALOG}.warehouse": self.warehouse,
            "spark.sql.defaultCatalog": CATALOG,
            "spark.hadoop.fs.s3a.endpoint": self.s3_endpoint,
            "spark.hadoop.fs.s3a.endpoint.region": self.s3_region,
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.access.key": self.s3_access_key,
            "spark.hadoop.fs.s3a.secret.key": self.s3_secret_key,
            "spark.hadoop.fs.s3a.connection.ssl.enabled": str(self.s3_endpoint.startswith("https")).lower(),
            "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        }
        # The tuning (shuffle partitions, adaptive execution, UI) is in spark-defaults.conf; this overrides it.
        if os.environ.get("SPARK_SHUFFLE_PARTITIONS"):
            conf["spark.sql.shuffle.partitions"] = os.environ["SPARK_SHUFFLE_PARTITIONS"]
        if self.extra_jars:
            conf["spark.jars"] = self.extra_jars
        event_log = os.environ.get("SPARK_EVENT_LOG_DIR", "")
        if event_log:  # profiling: one JSON event log per application (bench/, Spark's history server reads it)
            conf["spark.eventLog.enabled"] = "true"
            conf["spark.eventLog.dir"] = event_log
        return conf


# The image's static settings and tuning, which $SPARK_HOME/conf holds in the image (spark/Dockerfile copies it there).
PROJECT_CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def use_project_defaults() -> None:
    """Outside the image, make the JVM read the project's ``spark/conf/spark-defaults.conf``, as the image does.

    Passes the file to the launcher as ``--properties-file`` (through ``PYSPARK_SUBMIT_ARGS``, read when the JVM
    starts) unless ``SPARK_CONF_DIR`` or ``PYSPARK_SUBMIT_ARGS`` is set already or this package is not running from
    the source tree; inside the image Spark reads ``$SPARK_HOME/conf``. Not ``SPARK_CONF_DIR=spark/conf``: the
    launcher puts that directory on the JVM's class path, and a non-empty directory there disables the class-data
    archive of the local runs (``devtools/spark_cds.py``).
    """
    defaults = PROJECT_CONF_DIR / "spark-defaults.conf"
    if not (os.environ.get("SPARK_CONF_DIR") or os.environ.get("PYSPARK_SUBMIT_ARGS")) and defaults.is_file():
        os.environ["PYSPARK_SUBMIT_ARGS"] = f"--properties-file {defaults} pyspark-shell"


def build_session(app_name: str, env: JobEnv | None = None):
    """Return the SparkSession for a job, configured from the environment only.

    Args:
        app_name: Spark application name, e.g. ``tweets-bronze``.
        env: settings to use instead of reading ``os.environ`` (tests).
    """
    from pyspark.sql import SparkSession

    env = env or JobEnv.from_env()
    use_project_defaults()
    builder = SparkSession.builder.appName(app_name)
    for key, value in env.spark_conf().items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("SPARK_LOG_LEVEL", "WARN"))
    return spark
