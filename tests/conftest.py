"""Test harness: an isolated Airflow home, the moto S3 stand-in, a fresh Iceberg catalog database, Spark."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devtools import local_stack  # noqa: E402 - needs ROOT on sys.path

# Airflow reads its configuration when first imported: isolate it before any test module imports it.
# Connections are added once the services are up (the `lake_env` fixture).
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="lakehouse-airflow-"))
os.environ.update(
    {
        k: v
        for k, v in local_stack.airflow_env(_AIRFLOW_HOME, "http://unset", "unset").items()
        if not k.startswith("AIRFLOW_CONN_")
    }
)


# --- parallel runs (pytest-xdist) ------------------------------------------------------------------------------
# The end-to-end pipeline tests share session fixtures (one DAG run of each domain, read by several modules, and the
# serve test serves whatever the others wrote), so they form one group, run by one worker. The container and
# cluster tests form a second (they bring their own services), and every other module is a group of its own (its
# module fixtures, such as a dbt build, then run once). The two long groups are collected first, and with
# `--no-loadscope-reorder` handed out first, so both workers start on them at once. The groups are xdist scopes
# chosen by the scheduler below: xdist 3.8's own `xdist_group` marks rename node ids, which pytest 9.2 ignores.
# The backfill test brings its own catalogs (it reads no session DAG run), so it is a long group of its own, handed to
# whichever worker is free first.
LONG_GROUPS = ("pipelines", "clusters", "backfills")


def _xdist_group(module: str) -> str:
    if module.startswith("tests/integration/containers/") or module == "tests/integration/test_standalone_cluster.py":
        return "clusters"
    if module == "tests/integration/test_backfills.py":
        return "backfills"
    return "pipelines" if module.startswith("tests/integration/") else module


def pytest_collection_modifyitems(config, items):
    rank = {group: i for i, group in enumerate(LONG_GROUPS)}
    items.sort(key=lambda item: rank.get(_xdist_group(item.nodeid.split("::", 1)[0]), len(LONG_GROUPS)))


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _xdist_group(nodeid.split("::", 1)[0])

    return GroupScheduling(config, log)


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server on a free port with the `landing` and `lakehouse` buckets."""
    with local_stack.moto_s3(_AIRFLOW_HOME / "moto.log") as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def catalog_db():
    """A fresh PostgreSQL database for the Iceberg JDBC catalog, dropped afterwards."""
    name = f"lakehouse_test_{uuid.uuid4().hex[:8]}"
    local_stack.recreate_database(name)
    yield name
    local_stack.drop_database(name)


@pytest.fixture(scope="session")
def lake_env(s3_endpoint, catalog_db) -> dict[str, str]:
    """The Spark job environment for the test services; the Airflow connections are exported to match."""
    env = local_stack.job_env(s3_endpoint, catalog_db)
    os.environ.update(local_stack.airflow_env(_AIRFLOW_HOME, s3_endpoint, catalog_db))
    os.environ["SPARK_EXTRA_JARS"] = env["SPARK_EXTRA_JARS"]
    return env


@pytest.fixture(scope="session")
def s3(s3_endpoint):
    return local_stack.s3_client(s3_endpoint)


@pytest.fixture(scope="session")
def spark(lake_env):
    """One SparkSession for the test process, wired to the test catalog (tables are created lazily)."""
    # py4j logs "Closing down clientserver connection" from __del__ at interpreter exit, after pytest closed the
    # stream it captured; keep its INFO lines quiet.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    from lakehouse_jobs.session import JobEnv, build_session

    session = build_session("lakehouse-tests", JobEnv.from_env({**lake_env, "SPARK_MASTER": "local[2]"}))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def iceberg_catalog(s3_endpoint, catalog_db):
    """PyIceberg's view of the same catalog."""
    return local_stack.pyiceberg_catalog(s3_endpoint, catalog_db)


@pytest.fixture(scope="session")
def airflow_db():
    """Migrate the isolated Airflow metadata database once."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    yield
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)
