"""One tweets DAG run per test session, shared by the pipeline and serving tests."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DS = "2026-11-20"
LOGICAL_DATE = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
SAMPLE_LINES = 30_000


@dataclass(frozen=True)
class TweetsRun:
    sample: Path
    source_url: str
    ds: str
    lines: int


def run_dag(dag_id: str, *, skipped: frozenset[str] = frozenset(), **kwargs):
    """Run a DAG of dags/ through Airflow's ``dag.test()``; fail unless every task succeeded, or was skipped where
    the caller expects a skip: ``skipped`` names such tasks, or task-id prefixes ending in ``.`` (a task group)."""
    from airflow.dag_processing.dagbag import DagBag

    from include.settings import load_settings

    load_settings.cache_clear()
    dag = DagBag(dag_folder=str(ROOT / "dags" / f"{dag_id}.py")).dags[dag_id]
    run = dag.test(logical_date=LOGICAL_DATE, **kwargs)
    record_task_durations(dag_id, run)
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", f"{dag_id} run {run.state}; task states: {states}"
    expected_skip = {t for t in states if t in skipped or any(p.endswith(".") and t.startswith(p) for p in skipped)}
    assert set(states) == set(dag.task_ids), states
    assert {t: s for t, s in states.items() if s != "success"} == dict.fromkeys(expected_skip, "skipped"), states
    return run


def record_task_durations(dag_id: str, run) -> None:
    """Where the DAG runs' time goes, for the table the suite prints at its end (tests/conftest.py, issue 15).

    One JSON line per task instance, one file per test process.
    """
    folder = Path(os.environ["LAKEHOUSE_DAG_TASK_DURATIONS"])  # set by tests/conftest.py, which prints the summary
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{os.getpid()}.jsonl").open("a") as out:
        for ti in run.get_task_instances():
            if ti.start_date and ti.end_date:
                seconds = (ti.end_date - ti.start_date).total_seconds()
                out.write(json.dumps({"dag": dag_id, "task": ti.task_id, "seconds": seconds}) + "\n")


@pytest.fixture(scope="session")
def tweets_sample(tmp_path_factory) -> Path:
    from devtools.samples.tweets import generate_tweets_tsv

    path = tmp_path_factory.mktemp("tweets-source") / "full_dataset.tsv"
    generate_tweets_tsv(path, lines=SAMPLE_LINES, seed=11)
    return path


@pytest.fixture(scope="session")
def tweets_source_url(tweets_sample):
    from devtools.samples.http_server import serve_directory

    with serve_directory(tweets_sample.parent) as base:
        yield f"{base}/{tweets_sample.name}"


@pytest.fixture(scope="session")
def tweets_run(lake_env, airflow_db, tweets_sample, tweets_source_url) -> TweetsRun:
    """The tweets DAG, run once for ``DS`` on the sample through Airflow with the local Spark runner."""
    run_dag("tweets", run_conf={"source_url": tweets_source_url})
    return TweetsRun(tweets_sample, tweets_source_url, DS, SAMPLE_LINES)


@pytest.fixture(scope="session")
def dag_runner():
    """``run_dag`` as a fixture, for test modules (conftest modules are not importable)."""
    return run_dag


# --- trips: files dropped into landing/trips/ before the run (the sensor finds them pending) -----------------

TRIPS_FILES = ((1_500, 31), (1_000, 32))  # (data lines, seed) of each file dropped for DS
TRIPS_START = dt.datetime(2026, 11, 16, tzinfo=dt.UTC)  # a Monday; the files cover the week and a day more


@dataclass(frozen=True)
class TripsRun:
    files: tuple  # devtools.samples.trips.TripFile, as dropped
    drops: tuple  # what drop_file returned for each (key, ETag, ...)
    ds: str
    events_dsn: str  # the ingestion events database the run reported to


@pytest.fixture(scope="session")
def trips_events_dsn(lake_env):
    """A database of its own for the trips runs' ingestion events, through a connection of its own."""
    import json
    import os
    import uuid

    from devtools import local_stack

    name = f"trips_events_{uuid.uuid4().hex[:8]}"
    local_stack.recreate_database(name)
    connection = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": name}
    os.environ["AIRFLOW_CONN_TRIPS_EVENTS"] = json.dumps(connection)
    os.environ["LAKEHOUSE_INGESTION_EVENTS_CONN_ID"] = "trips_events"
    yield f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
    local_stack.drop_database(name)


@pytest.fixture(scope="session")
def trips_run(lake_env, airflow_db, s3, trips_events_dsn) -> TripsRun:
    """The trips DAG, run once for ``DS`` after two generated files landed under ``landing/trips/``."""
    from devtools.samples.trips import TripOptions, drop_file, generate_trip_file

    options = TripOptions(start=TRIPS_START, days=8)
    files = tuple(generate_trip_file(rows, seed, options) for rows, seed in TRIPS_FILES)
    drops = tuple(drop_file(s3, trip_file) for trip_file in files)
    run_dag("trips")
    return TripsRun(files, drops, DS, trips_events_dsn)


# --- users: a local RandomUser-compatible API ----------------------------------------------------------

USERS_RESULTS, USERS_PAGE_SIZE = 600, 200


@dataclass(frozen=True)
class UsersRun:
    base_url: str
    ds: str
    results: int
    page_size: int


@pytest.fixture(scope="session")
def users_api():
    """The sample RandomUser-compatible API, for the whole session."""
    from devtools.samples.users import serve_users

    with serve_users() as base_url:
        yield base_url


@pytest.fixture(scope="session")
def users_run(lake_env, airflow_db, users_api) -> UsersRun:
    """The users DAG, run once for ``DS`` against the local API (default seed: one per ds)."""
    run_dag("users", run_conf={"base_url": users_api, "results": USERS_RESULTS, "page_size": USERS_PAGE_SIZE})
    return UsersRun(users_api, DS, USERS_RESULTS, USERS_PAGE_SIZE)


@pytest.fixture
def serving_databases():
    """A throwaway PostgreSQL database and a MariaDB database (the TiDB stand-in) of the same name, which it yields.

    For the modules that serve their own gold (products, rentals: test groups of their own, tests/conftest.py).
    """
    import uuid

    import pymysql

    from devtools import local_stack
    from include.serving.tidb import SESSION_DEFAULTS

    name = f"serve_check_{uuid.uuid4().hex[:8]}"
    local_stack.recreate_database(name)
    mysql = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True, **SESSION_DEFAULTS)
    with mysql.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        yield name
    finally:
        with mysql.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        mysql.close()
        local_stack.drop_database(name)
