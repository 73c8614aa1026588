"""Test harness: an isolated Airflow home, the moto S3 stand-in, a fresh Iceberg catalog database, Spark."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JARS = Path(os.environ.get("LAKEHOUSE_JARS_DIR", ROOT / ".jars"))
PG_DSN = os.environ.get("LAKEHOUSE_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")

# Airflow reads its configuration when first imported: isolate it before any test module imports it.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="lakehouse-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "LAKEHOUSE_SPARK_RUNNER": "local",
        "LAKEHOUSE_SPARK_LOCAL_COMMAND": f"{sys.executable} -m lakehouse_jobs",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
    }
)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def spark_jars() -> str:
    jars = sorted(str(p) for p in JARS.glob("*.jar"))
    if not jars:
        pytest.fail(f"no jars in {JARS}: run scripts/setup.sh (make setup) first")
    return ",".join(jars)


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server on a free port with the `landing` and `lakehouse` buckets."""
    import boto3

    port = free_port()
    log = open(_AIRFLOW_HOME / "moto.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    try:
        wait_for_port(port)
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
        )
        for bucket in ("landing", "lakehouse"):
            client.create_bucket(Bucket=bucket)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def catalog_db():
    """A fresh PostgreSQL database for the Iceberg JDBC catalog, dropped afterwards."""
    import psycopg2

    name = f"lakehouse_test_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(PG_DSN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture(scope="session")
def lake_env(s3_endpoint, catalog_db) -> dict[str, str]:
    """The Spark job environment for the test services; also exported as Airflow connections."""
    import json

    env = {
        "LAKEHOUSE_CATALOG_URI": f"jdbc:postgresql://127.0.0.1:5432/{catalog_db}",
        "LAKEHOUSE_CATALOG_USER": "postgres",
        "LAKEHOUSE_CATALOG_PASSWORD": "",
        "LAKEHOUSE_WAREHOUSE": "s3a://lakehouse/warehouse",
        "S3_ENDPOINT": s3_endpoint,
        "S3_ACCESS_KEY": "test",
        "S3_SECRET_KEY": "test",
        "S3_REGION": "us-east-1",
        "SPARK_EXTRA_JARS": spark_jars(),
        "SPARK_DRIVER_MEMORY": "2g",
    }
    os.environ.update(
        {
            "SPARK_EXTRA_JARS": env["SPARK_EXTRA_JARS"],
            "LAKEHOUSE_SPARK_DRIVER_MEMORY": "2g",
            "AIRFLOW_CONN_LAKEHOUSE_S3": json.dumps(
                {
                    "conn_type": "aws",
                    "login": "test",
                    "password": "test",
                    "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
                }
            ),
            "AIRFLOW_CONN_ICEBERG_CATALOG": json.dumps(
                {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": catalog_db}
            ),
        }
    )
    return env


@pytest.fixture(scope="session")
def s3(s3_endpoint):
    import boto3

    return boto3.client(
        "s3", endpoint_url=s3_endpoint, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )


@pytest.fixture(scope="session")
def spark(lake_env):
    """One SparkSession for the test process, wired to the test catalog (tables are created lazily)."""
    sys.path.insert(0, str(ROOT / "spark"))
    from lakehouse_jobs.session import JobEnv, build_session

    session = build_session("lakehouse-tests", JobEnv.from_env({**lake_env, "SPARK_MASTER": "local[2]"}))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def iceberg_catalog(lake_env, catalog_db):
    """PyIceberg's view of the same catalog."""
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(
        "lake",
        uri=f"postgresql+psycopg2://postgres@127.0.0.1:5432/{catalog_db}",
        warehouse="s3://lakehouse/warehouse",
        **{
            "s3.endpoint": lake_env["S3_ENDPOINT"],
            "s3.access-key-id": "test",
            "s3.secret-access-key": "test",
            "s3.region": "us-east-1",
        },
    )


@pytest.fixture(scope="session")
def airflow_db():
    """Migrate the isolated Airflow metadata database once."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    yield
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)
