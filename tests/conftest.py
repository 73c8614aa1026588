"""Test harness: an isolated Airflow home, the moto S3 stand-in, a fresh Iceberg catalog database, Spark."""

from __future__ import annotations

import ast
import functools
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

from devtools import local_stack, spark_cds  # noqa: E402 - needs ROOT on sys.path

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


# Every Spark job the tests start is a short-lived JVM on little data, where its start and first queries dominate: C1
# only (no C2 compilation of code that runs a few times) and the serial collector (no GC threads competing for the
# two cores) halve a job's fixed cost (a session and its first actions, 27 s -> 15 s on this machine under load).
# One compiler thread: even C1 alone kept two threads compiling Spark's code while the job ran (`top -H`), for a job
# that runs most of it a few times. One rentals day (raw, bronze, gold; 12 tables) took the same 80 s alone with one
# thread or two, at 79 CPU-seconds of the JVM instead of 149; two such days at once, as the two xdist workers run,
# took 87 s instead of 112 s; the whole suite 32 min 21 s instead of 34 min 12 s (2026-12-02).
# SPARK_SUBMIT_OPTS reaches the driver JVM of every local job, whether the tests start it in process, as a subprocess
# or through the local runner (which passes the worker's environment on). Results do not depend on either; the
# images and production keep the JVM's defaults. Set SPARK_SUBMIT_OPTS to override.
# The class-data archive of devtools/spark_cds.py (made by `make setup`), when it is current for this JDK and these
# jars, spares each of them loading and verifying Spark's classes again: a small job's JVM in about half the time.
SMALL_JOB_JVM_OPTS = "-XX:TieredStopAtLevel=1 -XX:CICompilerCount=1 -XX:+UseSerialGC"
os.environ.setdefault("SPARK_SUBMIT_OPTS", f"{SMALL_JOB_JVM_OPTS} {spark_cds.jvm_option()}".strip())


# --- parallel runs (pytest-xdist) ------------------------------------------------------------------------------
# The wall time is the longer of the two workers, so a module goes where it shares what it costs and is otherwise free
# to go to whichever worker is idle. The groups are xdist scopes chosen by the scheduler below (xdist 3.8's own
# `xdist_group` marks rename node ids, which pytest 9.2 ignores); a group runs on one worker, in one process, so its
# session fixtures are made once:
# - "pipelines": the integration modules that read a session DAG run (`SHARED_RUNS`, tests/integration/conftest.py);
#   a module that makes runs of its own and checks its own serving (rentals, products) or serves nothing (the
#   backfill) is a group of its own, so that it does not lengthen this one. The Docker-runner module is here: it
#   compares its containers' tables with the session's local tweets run, which another worker would make again;
# - "clusters": the other container and cluster tests (podman, the proxy, the image and a lake of their own); both
#   groups' workers may need the Spark image, and the second to ask waits for the first's build (a lock file);
# - "spark": the modules that use the session's SparkSession (`spark`), so that one JVM serves every transform test;
# - every other module is a group of its own (its module fixtures, such as a dbt build, then run once).
# Groups are handed out in collection order (`--no-loadscope-reorder`), and the long ones are collected first, longest
# first, so that both workers start on one and the short modules fill in at the end.
SHARED_RUNS = frozenset({"tweets_run", "users_run", "trips_run"})
SPARK_FIXTURES = frozenset({"spark", "throwaway_bronze"})
LONG_GROUPS = (
    "pipelines",
    "clusters",
    "tests/integration/test_rentals_pipeline.py",
    "tests/integration/test_backfills.py",
    "tests/integration/test_products_pipeline.py",
    "tests/spark/test_spark_faults.py",
    "spark",
)


@functools.cache
def _requested(module: str) -> frozenset[str]:
    """The argument names of the module's functions (its tests and fixtures): the fixtures it asks for by name."""
    try:
        tree = ast.parse((ROOT / module).read_text())
    except (OSError, SyntaxError):
        return frozenset()
    functions = (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
    return frozenset(arg.arg for f in functions for arg in (*f.args.posonlyargs, *f.args.args, *f.args.kwonlyargs))


def _xdist_group(module: str) -> str:
    requested = _requested(module)
    if module.startswith("tests/integration/") and requested & SHARED_RUNS:
        return "pipelines"
    if module.startswith("tests/integration/containers/") or module == "tests/integration/test_standalone_cluster.py":
        return "clusters"
    if requested & SPARK_FIXTURES:
        return "spark"
    return module


def pytest_collection_modifyitems(config, items):
    rank = {group: i for i, group in enumerate(LONG_GROUPS)}
    items.sort(key=lambda item: rank.get(_xdist_group(item.nodeid.split("::", 1)[0]), len(LONG_GROUPS)))


def _dag_task_durations() -> Path:
    return Path(os.environ["LAKEHOUSE_DAG_TASK_DURATIONS"])


# Where tests/integration/conftest.py: run_dag writes its task times (one file per process), for the summary below.
os.environ["LAKEHOUSE_DAG_TASK_DURATIONS"] = str(ROOT / ".artifacts" / "dag-task-durations")


def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):  # the controller (or the only process), before any worker starts
        shutil.rmtree(_dag_task_durations(), ignore_errors=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """After pytest's own durations: the DAG runs' task time, per DAG and task group, and the slowest tasks."""
    import json
    from collections import defaultdict

    files = sorted(_dag_task_durations().glob("*.jsonl"))
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    if not rows:
        return
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        groups[(row["dag"], row["task"].split(".", 1)[0])].append(row["seconds"])
    write = terminalreporter.write_line
    terminalreporter.section("DAG task time (runs made by tests/integration/conftest.py: run_dag)")
    write(f"{len(rows)} task runs, {sum(r['seconds'] for r in rows):.1f} s in all")
    write(f"{'s':>8} {'tasks':>6}  dag / task group")
    for (dag, group), seconds in sorted(groups.items(), key=lambda item: -sum(item[1]))[:20]:
        write(f"{sum(seconds):8.1f} {len(seconds):6d}  {dag} / {group}")
    write("slowest task runs:")
    for row in sorted(rows, key=lambda r: -r["seconds"])[:15]:
        write(f"{row['seconds']:8.1f}  {row['dag']} / {row['task']}")


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
