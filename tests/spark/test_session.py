"""The job's settings from its environment: what is required, and that secrets never show in a repr."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakehouse_jobs.session import ConfigError, JobEnv

CONF_FILE = Path(__file__).resolve().parents[2] / "spark" / "conf" / "spark-defaults.conf"
ENV = {
    "LAKEHOUSE_CATALOG_URI": "jdbc:postgresql://catalog:5432/iceberg_catalog",
    "LAKEHOUSE_CATALOG_USER": "iceberg",
    "LAKEHOUSE_CATALOG_PASSWORD": "catalog-pw-4c1f",
    "S3_ENDPOINT": "http://minio:9000",
    "S3_ACCESS_KEY": "lake-access",
    "S3_SECRET_KEY": "s3-secret-9e2a",
}


def test_secrets_are_used_but_not_shown():
    env = JobEnv.from_env(ENV)
    conf = env.spark_conf()
    assert conf["spark.sql.catalog.lake.jdbc.password"] == "catalog-pw-4c1f"
    assert conf["spark.hadoop.fs.s3a.secret.key"] == "s3-secret-9e2a"
    shown = repr(env) + str(env)
    assert "catalog-pw-4c1f" not in shown and "s3-secret-9e2a" not in shown
    assert "lake-access" in shown and "jdbc:postgresql://catalog:5432/iceberg_catalog" in shown


@pytest.mark.parametrize("missing", ["LAKEHOUSE_CATALOG_URI", "LAKEHOUSE_CATALOG_USER", "S3_ENDPOINT", "S3_SECRET_KEY"])
def test_a_missing_variable_is_named(missing):
    with pytest.raises(ConfigError, match=missing):
        JobEnv.from_env({k: v for k, v in ENV.items() if k != missing})


def test_the_catalog_uri_must_be_jdbc():
    with pytest.raises(ConfigError, match="must be a JDBC URL"):
        JobEnv.from_env({**ENV, "LAKEHOUSE_CATALOG_URI": "postgresql://catalog/iceberg_catalog"})


def test_outside_the_image_the_project_spark_defaults_are_used(monkeypatch, tmp_path):
    from lakehouse_jobs import session

    monkeypatch.delenv("SPARK_CONF_DIR", raising=False)
    monkeypatch.delenv("PYSPARK_SUBMIT_ARGS", raising=False)
    session.use_project_defaults()
    # As a properties file, not as SPARK_CONF_DIR: that directory would be on the class path (devtools/spark_cds.py).
    assert os.environ["PYSPARK_SUBMIT_ARGS"] == f"--properties-file {CONF_FILE} pyspark-shell"
    assert "SPARK_CONF_DIR" not in os.environ
    for name, value in (("SPARK_CONF_DIR", str(tmp_path)), ("PYSPARK_SUBMIT_ARGS", "--conf a=b pyspark-shell")):
        monkeypatch.delenv("PYSPARK_SUBMIT_ARGS", raising=False)
        monkeypatch.setenv(name, value)  # set by the environment (the image, a user): left alone
        session.use_project_defaults()
        assert os.environ[name] == value
        assert name == "PYSPARK_SUBMIT_ARGS" or "PYSPARK_SUBMIT_ARGS" not in os.environ
        monkeypatch.delenv(name)


def test_a_local_session_runs_with_the_images_settings(spark):
    settings = dict(
        line.split(None, 1) for line in CONF_FILE.read_text().splitlines() if line.strip() and not line.startswith("#")
    )
    for key in ("spark.sql.shuffle.partitions", "spark.sql.legacy.timeParserPolicy", "spark.sql.adaptive.enabled"):
        assert spark.conf.get(key) == settings[key].strip(), key
