"""Faults in the middle of Spark jobs, reproduced through the jobs' command line; the tables compared with a clean run.

The jobs run as the DAGs' Spark tasks run them (``python -m lakehouse_jobs <domain> <layer> --ds ...``), a process
group of their own (several jobs in one process where a test chains them, so the JVM starts once), on a moto S3
server and catalog databases of this module's own: two clean ones (tweets; trips and products), run once without a
fault, and ``faulted``. The faulted runs reach S3 through a TCP proxy that can go away
(``devtools.local_stack.CuttableProxy``); a reader of ``main`` is PyIceberg, straight to moto.

The moment of a commit is caught in the catalog, not guessed: the test holds the table's row of the catalog's
``iceberg_tables`` (``SELECT ... FOR UPDATE``), so the job's commit, which has written its data files, manifests and
``*.metadata.json`` and now swaps the pointer (``UPDATE iceberg_tables ... WHERE metadata_location = <base>``), waits
on it (``pg_blocking_pids``). Each fault lands inside that commit, and what a reader of ``main`` sees is checked then,
after the failure, and after the retry:

- ``kill -9`` of the job's process group (driver and JVM) while bronze fast-forwards ``main`` of ``bronze.tweets``;
  the catalog connection the dead job left waiting is terminated (as if the kill came before the update reached the
  server). Readers see the previous slice of every table but raw (whose job had completed) during and after; the
  run's branch stays; the retry ends as a clean run, without branches.
- the S3 endpoint going away (connections reset, new ones refused) at bronze's first request for a data file of
  ``raw.tweets``. With S3A's retries bounded (``BOUNDED_S3A``) the job fails within seconds; readers see the previous
  slice; the retry, the endpoint back, ends as a clean run. With the session's settings (Hadoop 3.3's defaults) the
  job was still retrying after 400 s.
- every connection of the faulted catalog database terminated (``pg_terminate_backend``) while gold commits
  ``gold.tweets_per_day``; terminating the database's backends rather than restarting the shared PostgreSQL keeps
  the tests running beside it intact, and the job sees the same (its connections dropped mid-statement). The job
  fails (``UncheckedSQLException: Unknown failure``, caused by ``terminating connection due to administrator
  command``); gold commits straight to ``main`` table by table, so readers see per_hour new and per_day onwards
  previous, each a whole slice; the retry ends as a clean run.
- trips and products (raw, then bronze) at once, their commits to ``ops.processed_files`` and then to
  ``gold.pipeline_runs`` held until both wait on the same base: one swap fails (Iceberg retries it, its MERGE's
  validation finds the other's files), ``wap.retry_conflicts`` re-runs the MERGE, both succeed, and every table
  equals the clean runs'.

Each tweets test moves the faulted catalog's slice from one source version to the other (samples ``a``, ``b``), so
"the previous slice" and "the new slice" differ; the clean slices of ``a`` are the faulted catalog's first run.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devtools import local_stack

pytestmark = pytest.mark.integration

DS = "2026-11-20"
SAMPLE_LINES = 1_500
GATE = ("--max-reject-ratio", "0.5")  # small samples: their planted defects are a larger share than the DAGs allow
TWEETS = (
    "raw.tweets",
    "bronze.tweets",
    "bronze.tweets_rejects",
    "gold.tweets_per_hour",
    "gold.tweets_per_day",
    "gold.tweets_by_language",
    "gold.tweets_by_country",
    "gold.pipeline_runs",
)
SHARED = ("ops.processed_files", "gold.pipeline_runs")
CONFLICT_TABLES = ("raw.trips", "bronze.trips", "raw.products", "bronze.products", *SHARED)
# Columns that time the run that wrote a row, so they differ between any two runs.
VOLATILE = {"_loaded_at", "extraction_s", "processed_at"}
# S3A's own retries, bounded (Hadoop 3.3's defaults retry a refused connection for tens of minutes; see
# test_the_session_bounds_s3a_retries).
BOUNDED_S3A = {"spark.hadoop.fs.s3a.attempts.maximum": "3", "spark.hadoop.fs.s3a.retry.limit": "3"}
DRIVER = """
import sys
from lakehouse_jobs.__main__ import main
for line in sys.argv[1:]:
    code = main(line.split("|"))
    if code:
        sys.exit(f"failed: {line}")
"""


# --- the module's services, sources and clean runs -------------------------------------------------------------


@dataclass
class Lake:
    """This module's S3 (moto, and the proxy the faulted runs use), its three catalogs, and the clean slices."""

    moto: str
    proxy: local_stack.CuttableProxy
    workdir: Path
    clean: dict[str, str]  # the clean tweets run's catalog
    faulted: dict[str, str]
    landed: dict[str, str]  # the clean trips and products runs' catalog
    landed_run: Job | None = None
    versions: dict[str, dict] = field(default_factory=dict)  # sample -> the clean tweets slices of that source

    def catalog(self, env: dict[str, str]):
        return local_stack.pyiceberg_catalog(self.moto, env["_CATALOG_DB"])

    def next_version(self) -> tuple[dict[str, Counter], str]:
        """What the faulted catalog's tweets tables hold now, and the sample whose bronze differs from it."""
        previous = tweets_slices(self, self.faulted)
        sample = "b" if previous["bronze.tweets"] == self.versions["a"]["bronze.tweets"] else "a"
        return previous, sample


def catalog_env(s3_endpoint: str, name: str) -> dict[str, str]:
    """The job environment of a catalog database and warehouse of its own."""
    return {
        **local_stack.job_env(s3_endpoint, name),
        "LAKEHOUSE_WAREHOUSE": f"s3a://lakehouse/{name}",
        "SPARK_MASTER": "local[2]",
        "SPARK_SHUFFLE_PARTITIONS": "2",
        "_CATALOG_DB": name,
    }


def tweets_jobs(sample: str, *layers: str) -> list[str]:
    options = {"raw": ("--source", f"s3a://landing/faults/tweets/{sample}/"), "bronze": GATE}
    return ["|".join(("tweets", layer, "--ds", DS, *options.get(layer, ()))) for layer in layers]


def landed_jobs(domain: str) -> list[str]:
    return [f"{domain}|raw|--ds|{DS}|--prefix|faults/{domain}/", f"{domain}|bronze|--ds|{DS}|{'|'.join(GATE)}"]


def land_sources(s3, workdir: Path) -> None:
    """Two versions of a tweets source, two trip files, three hourly product files, all small."""
    from devtools.samples.products import FeedOptions, drop_feed
    from devtools.samples.trips import TripOptions, drop_file, generate_trip_file
    from devtools.samples.tweets import generate_tweets_tsv

    for sample, seed in (("a", 1), ("b", 2)):
        path = workdir / sample / "full_dataset.tsv"
        generate_tweets_tsv(path, SAMPLE_LINES, seed=seed)
        s3.upload_file(str(path), "landing", f"faults/tweets/{sample}/full_dataset.tsv")
    options = TripOptions(start=dt.datetime(2026, 11, 16, tzinfo=dt.UTC), days=5)
    for rows, seed in ((400, 41), (300, 42)):
        drop_file(s3, generate_trip_file(rows, seed, options), prefix="faults/trips/")
    drop_feed(s3, 3, seed=43, options=FeedOptions(departments=4, sensors_per_department=3), prefix="faults/products/")


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """Own moto and catalogs, the clean runs, and the faulted catalog's first run, all started at once.

    The clean tweets run (sample ``b``) and the faulted catalog's first run (``a``, a clean run of ``a`` too) are
    waited for here. The clean trips and products runs, in a catalog of their own (two runs in one catalog at once
    would conflict: not a clean run), go on while the tweets faults are injected; the concurrent test waits for them.
    An empty trips run in the faulted catalog creates ``ops.processed_files``, so that the concurrent runs find both
    shared tables existing.
    """
    workdir = tmp_path_factory.mktemp("spark-faults")
    with local_stack.moto_s3(workdir / "moto.log") as moto:
        host, port = moto.removeprefix("http://").split(":")
        proxy = local_stack.CuttableProxy((host, int(port)))
        names = [f"faults_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("clean", "landed", "faulted")]
        for name in names:
            local_stack.recreate_database(name)
        jobs = []
        try:
            land_sources(local_stack.s3_client(moto), workdir)
            clean, landed, faulted = (
                catalog_env(moto, names[0]),
                catalog_env(moto, names[1]),
                catalog_env(proxy.endpoint, names[2]),
            )
            lake = Lake(moto, proxy, workdir, clean, faulted, landed)
            jobs = [
                Job(clean, tweets_jobs("b", "raw", "bronze", "gold"), workdir / "clean"),
                Job(
                    faulted,
                    [*tweets_jobs("a", "raw", "bronze", "gold"), f"trips|raw|--ds|{DS}|--prefix|faults/none/"],
                    workdir / "first",
                ),
                Job(landed, [*landed_jobs("trips"), *landed_jobs("products")], workdir / "landed"),
            ]
            lake.landed_run = jobs[2]
            jobs[0].succeeds()
            jobs[1].succeeds()
            lake.versions = {"a": tweets_slices(lake, faulted), "b": tweets_slices(lake, clean)}
            assert lake.versions["a"] != lake.versions["b"]
            yield lake
        finally:
            for job in jobs:
                if job.alive():
                    job.kill()
            proxy.close()
            for name in names:
                local_stack.drop_database(name)


# --- jobs, readers, the catalog row lock ---------------------------------------------------------------------------


class Job:
    """Jobs run one after the other in one process (group) of their own, as ``python -m lakehouse_jobs`` would."""

    def __init__(self, env: dict[str, str], lines: list[str], log: Path) -> None:
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        job_env = {k: v for k, v in env.items() if not k.startswith("_")}
        self.out = log.with_suffix(".out").open("w")
        self.err = log.with_suffix(".err").open("w")
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and driver
            [sys.executable, "-c", DRIVER, *lines],
            env={**os.environ, **job_env},
            stdout=self.out,
            stderr=self.err,
            start_new_session=True,  # its own process group: kill -9 takes the JVM with the driver
        )

    def wait(self, timeout: float = 300) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise
        finally:
            self.out.close()
            self.err.close()

    def succeeds(self) -> None:
        code = self.wait()
        assert code == 0, self.stderr()[-3000:]

    def kill(self) -> None:
        """``kill -9`` of the job's process group: the driver and its JVM die at once, as in a killed container."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.wait()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stdout(self) -> str:
        return self.log.with_suffix(".out").read_text()

    def stderr(self) -> str:
        return self.log.with_suffix(".err").read_text()

    def reason(self) -> str:
        """The one line the job printed about its failure (what the Spark task reports)."""
        lines = [line for line in self.stderr().splitlines() if " failed: " in line and not line.startswith("failed:")]
        return lines[-1] if lines else ""


def rows_of(catalog, table: str) -> Counter:
    """The ``DS`` slice of ``table`` on ``main`` as a multiset of rows, without the volatile columns."""
    from pyiceberg.expressions import And, EqualTo

    loaded = catalog.load_table(table)
    where = EqualTo("ds", DS)
    if table == "gold.pipeline_runs":
        where = And(where, EqualTo("domain", "tweets"))
    return multiset(loaded.scan(row_filter=where).to_arrow())


def multiset(arrow) -> Counter:
    """Rows of an Arrow table as a multiset of tuples, without the volatile columns (lists and maps made hashable)."""

    def frozen(value):
        if isinstance(value, list):
            return tuple(frozen(v) for v in value)
        if isinstance(value, dict):
            return tuple(sorted((k, frozen(v)) for k, v in value.items()))
        return value

    columns = [c for c in arrow.column_names if c not in VOLATILE]
    return Counter(tuple(frozen(row[c]) for c in columns) for row in arrow.select(columns).to_pylist())


def tweets_slices(lake: Lake, env: dict[str, str], tables=TWEETS) -> dict[str, Counter]:
    catalog = lake.catalog(env)
    try:
        return {table: rows_of(catalog, table) for table in tables}
    finally:
        catalog.engine.dispose()


def refs(lake: Lake, env: dict[str, str], table: str) -> set[str]:
    catalog = lake.catalog(env)
    try:
        return set(catalog.load_table(table).metadata.refs)
    finally:
        catalog.engine.dispose()


def pg(database: str):
    import psycopg2

    conn = psycopg2.connect(
        host=local_stack.PG_HOST, port=local_stack.PG_PORT, user=local_stack.PG_USER, dbname=database
    )
    conn.autocommit = True
    return conn


def query(database: str, sql: str, *args) -> list[tuple]:
    conn = pg(database)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        conn.close()


@dataclass
class RowLock:
    """The catalog row of a table held by this test: its commits wait in ``UPDATE iceberg_tables``."""

    database: str
    conn: object
    pid: int

    def waiting(self) -> list[tuple[int, str]]:
        """The backends (pid, query) waiting on the row: on this lock, or queued behind another waiter on it."""
        return query(
            self.database,
            "SELECT pid, query FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'"
            " AND cardinality(pg_blocking_pids(pid)) > 0",
            self.database,
        )

    def wait_for(self, jobs: list[Job], count: int = 1, timeout: float = 240) -> list[tuple[int, str]]:
        deadline = time.monotonic() + timeout
        while len(waiting := self.waiting()) < count:
            dead = [job for job in jobs if not job.alive()]
            assert not dead, f"a job ended before its commit: {dead[0].stderr()[-2000:]}"
            assert time.monotonic() < deadline, f"{len(waiting)} of {count} commits waiting after {timeout}s"
            time.sleep(0.05)
        assert all(q.lstrip().upper().startswith("UPDATE ICEBERG_TABLES") for _, q in waiting), waiting
        return waiting

    def terminate_others(self) -> int:
        """``pg_terminate_backend`` every other backend of the catalog database (the jobs', the readers')."""
        rows = query(
            "postgres",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
            self.database,
            self.pid,
        )
        return len(rows)


@contextmanager
def row_locked(env: dict[str, str], table: str):
    """Hold ``table``'s row of the catalog's ``iceberg_tables`` until the block ends (then release it)."""
    database = env["_CATALOG_DB"]
    namespace, name = table.split(".")
    conn = pg(database)
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
            cur.execute(
                "SELECT metadata_location FROM iceberg_tables WHERE table_namespace = %s AND table_name = %s"
                " FOR UPDATE",
                (namespace, name),
            )
            assert cur.rowcount == 1, f"{table} is not in the catalog yet"
        yield RowLock(database, conn, pid)
    finally:
        conn.rollback()
        conn.close()


def wait_until(condition, what: str, jobs: list[Job], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert all(job.alive() for job in jobs), f"a job ended before {what}: {jobs[0].stderr()[-2000:]}"
        assert time.monotonic() < deadline, f"no {what} after {timeout}s"
        time.sleep(0.05)


def branch_written(lake: Lake, table: str, branch: str, since_ms: int):
    """A condition: ``table``'s ``branch`` holds a snapshot written after ``since_ms`` (the run wrote its slice)."""

    def written() -> bool:
        catalog = lake.catalog(lake.faulted)
        try:
            loaded = catalog.load_table(table)
            ref = loaded.metadata.refs.get(branch)
            return ref is not None and loaded.snapshot_by_id(ref.snapshot_id).timestamp_ms >= since_ms
        finally:
            catalog.engine.dispose()

    return written


# --- kill -9 during a commit ---------------------------------------------------------------------------------------

BRANCH = f"wap_tweets_bronze_{DS.replace('-', '')}"
BEYOND_RAW = tuple(t for t in TWEETS if t != "raw.tweets")


@pytest.fixture(scope="module")
def killed(lake):
    """Raw, then bronze of the other sample, ``kill -9`` while bronze fast-forwards ``main`` of ``bronze.tweets``."""
    previous, sample = lake.next_version()
    seen = {"previous": previous, "new": lake.versions[sample]}
    started = int(time.time() * 1000)
    job = Job(lake.faulted, tweets_jobs(sample, "raw", "bronze"), lake.workdir / "kill" / "run")
    try:
        wait_until(branch_written(lake, "bronze.tweets", BRANCH, started), "the bronze branch written", [job])
        with row_locked(lake.faulted, "bronze.tweets") as lock:
            seen["commit"] = lock.wait_for([job])  # the fast-forward: its metadata file written, the swap waiting
            seen["during"] = tweets_slices(lake, lake.faulted)
            job.kill()
            lock.terminate_others()  # the dead job's connection, which would otherwise still swap the pointer
    finally:
        if job.alive():
            job.kill()
    seen["after"] = tweets_slices(lake, lake.faulted)
    seen["bronze_refs"] = refs(lake, lake.faulted, "bronze.tweets")
    retry = Job(lake.faulted, tweets_jobs(sample, "bronze", "gold"), lake.workdir / "kill" / "retry")
    retry.succeeds()
    seen["retried"] = tweets_slices(lake, lake.faulted)
    seen["refs"] = {t: refs(lake, lake.faulted, t) for t in ("bronze.tweets", "bronze.tweets_rejects")}
    return seen


def test_kill_9_during_the_commit_of_main_serves_the_previous_slice_throughout(killed):
    assert len(killed["commit"]) == 1  # the job was inside its commit when it was killed
    assert killed["during"]["raw.tweets"] == killed["new"]["raw.tweets"]  # the raw job before it had completed
    for view in ("during", "after"):
        assert {t: killed[view][t] for t in BEYOND_RAW} == {t: killed["previous"][t] for t in BEYOND_RAW}, view
    assert BRANCH in killed["bronze_refs"]  # what the killed run wrote stays on its branch


def test_the_retry_after_a_kill_9_ends_as_a_clean_run(killed):
    assert killed["retried"] == killed["new"]
    assert killed["refs"] == {"bronze.tweets": {"main"}, "bronze.tweets_rejects": {"main"}}


# --- the S3 endpoint gone during a read ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_gone(lake):
    """Raw, then bronze of the other sample; the endpoint goes away at bronze's first request for a raw data file.

    S3A's retries are bounded by spark/conf/spark-defaults.conf (``BOUNDED_S3A``); with Hadoop's defaults the job
    was still retrying 400 s after the cut.
    """
    previous, sample = lake.next_version()
    seen = {"previous": previous, "new": lake.versions[sample]}
    job = Job(
        lake.faulted,
        tweets_jobs(sample, "raw", "bronze"),
        lake.workdir / "s3" / "run",
    )
    try:
        wait_until(lambda: f"tweets raw ds={DS} done" in job.stdout(), "the raw job done", [job])
        lake.proxy.cut_on = f"/{lake.faulted['_CATALOG_DB']}/raw/tweets/data/".encode()
        wait_until(lake.proxy.cut_done.is_set, "a read of raw's data files", [job])
        cut_at = time.monotonic()
        seen["during"] = tweets_slices(lake, lake.faulted)
        seen["code"] = job.wait(timeout=180)
        seen["failed_after_s"] = time.monotonic() - cut_at
        seen["after"] = tweets_slices(lake, lake.faulted)
    finally:
        if job.alive():
            job.kill()
        lake.proxy.restore()
    seen["reason"], seen["stderr"] = job.reason(), job.stderr()
    retry = Job(lake.faulted, tweets_jobs(sample, "bronze", "gold"), lake.workdir / "s3" / "retry")
    retry.succeeds()
    seen["retried"] = tweets_slices(lake, lake.faulted)
    return seen


def test_the_s3_endpoint_gone_during_a_read_fails_the_job_and_leaves_main_as_it_was(s3_gone):
    assert s3_gone["code"] != 0
    assert s3_gone["failed_after_s"] < 120
    assert s3_gone["reason"].startswith(f"tweets bronze ds={DS} failed: ")
    assert "Connection refused" in s3_gone["stderr"] or "Connection reset" in s3_gone["stderr"]
    for view in ("during", "after"):
        assert s3_gone[view]["raw.tweets"] == s3_gone["new"]["raw.tweets"]
        assert {t: s3_gone[view][t] for t in BEYOND_RAW} == {t: s3_gone["previous"][t] for t in BEYOND_RAW}, view


def test_the_retry_after_the_s3_endpoint_came_back_ends_as_a_clean_run(s3_gone):
    assert s3_gone["retried"] == s3_gone["new"]


# --- the catalog's connections terminated during a commit ----------------------------------------------------------


@pytest.fixture(scope="module")
def catalog_dropped(lake):
    """Raw, bronze and gold of the other sample; every catalog connection terminated while gold commits per_day."""
    previous, sample = lake.next_version()
    seen = {"previous": previous, "new": lake.versions[sample]}
    job = None
    try:
        with row_locked(lake.faulted, "gold.tweets_per_day") as lock:
            job = Job(lake.faulted, tweets_jobs(sample, "raw", "bronze", "gold"), lake.workdir / "catalog" / "run")
            seen["commit"] = lock.wait_for([job])
            seen["during"] = tweets_slices(lake, lake.faulted)
            seen["terminated"] = lock.terminate_others()
        seen["code"] = job.wait(timeout=180)
    finally:
        if job is not None and job.alive():
            job.kill()
    seen["after"] = tweets_slices(lake, lake.faulted)
    seen["reason"], seen["stderr"] = job.reason(), job.stderr()
    retry = Job(lake.faulted, tweets_jobs(sample, "gold"), lake.workdir / "catalog" / "retry")
    retry.succeeds()
    seen["retried"] = tweets_slices(lake, lake.faulted)
    return seen


GOLD = ("gold.tweets_per_hour", "gold.tweets_per_day", "gold.tweets_by_language", "gold.tweets_by_country")


def test_the_catalog_connections_terminated_during_a_commit_fail_the_job_and_leave_whole_slices(catalog_dropped):
    seen = catalog_dropped
    assert len(seen["commit"]) == 1 and seen["terminated"] >= 1
    assert seen["code"] != 0
    assert seen["reason"].startswith(f"tweets gold ds={DS} failed: ")
    assert "terminating connection due to administrator command" in seen["stderr"]
    for view in ("during", "after"):
        # raw and bronze were done; gold writes every table to the run's branch before it fast-forwards any
        # (wap.publish_gold), and per_day's failed commit is one of those writes: main of every gold table still
        # holds the previous slice, per_hour's included, whose branch was written already.
        assert {t: seen[view][t] for t in TWEETS if t not in GOLD} == {
            t: seen["new"][t] for t in TWEETS if t not in GOLD
        }
        assert {t: seen[view][t] for t in GOLD} == {t: seen["previous"][t] for t in GOLD}, view


def test_the_retry_after_the_catalog_came_back_ends_as_a_clean_run(catalog_dropped):
    assert catalog_dropped["retried"] == catalog_dropped["new"]


# --- two runs committing to the shared tables at once --------------------------------------------------------------


@pytest.fixture(scope="module")
def concurrent(lake):
    """Trips and products (raw, then bronze), run at once; each shared table's commits held until both wait on it."""
    seen = {}
    jobs = []
    try:
        for table in SHARED:
            with row_locked(lake.faulted, table) as lock:
                if not jobs:
                    jobs = [
                        Job(lake.faulted, landed_jobs(d), lake.workdir / "concurrent" / d)
                        for d in ("trips", "products")
                    ]
                seen[table] = lock.wait_for(jobs, count=2)
        seen["codes"] = [job.wait(timeout=240) for job in jobs]
    finally:
        for job in jobs:
            if job.alive():
                job.kill()
    seen["logs"] = {job.log.name: job.stdout() + job.stderr() for job in jobs}
    lake.landed_run.succeeds()
    catalogs = (("faulted", lake.faulted), ("clean", lake.landed))
    seen["tables"] = {name: conflict_slices(lake, env) for name, env in catalogs}
    return seen


def conflict_slices(lake: Lake, env: dict[str, str]) -> dict[str, Counter]:
    from pyiceberg.expressions import And, EqualTo, In

    catalog = lake.catalog(env)
    try:
        slices = {}
        for table in CONFLICT_TABLES:
            where = EqualTo("ds", DS)
            if table in SHARED:
                where = And(where, In("domain", ("trips", "products")))
            slices[table] = multiset(catalog.load_table(table).scan(row_filter=where).to_arrow())
        return slices
    finally:
        catalog.engine.dispose()


def test_two_runs_committing_to_the_shared_tables_at_once_conflict_and_both_land(concurrent):
    assert concurrent["codes"] == [0, 0], {name: log[-2000:] for name, log in concurrent["logs"].items()}
    for table in SHARED:
        assert len(concurrent[table]) == 2  # both commits waited on the same base
    # wap.retry_conflicts logs "<table> <domain> ds=<ds>: commit conflict (n of m), retry in ...: <Iceberg's reason>"
    retried = [
        line for log in concurrent["logs"].values() for line in log.splitlines() if ": commit conflict (" in line
    ]
    assert {table for table in SHARED if any(f" {table} " in line for line in retried)} == set(SHARED), retried


def test_no_row_is_lost_when_two_runs_commit_at_once(concurrent):
    assert concurrent["tables"]["faulted"] == concurrent["tables"]["clean"]
    assert all(concurrent["tables"]["clean"][t] for t in CONFLICT_TABLES)


# --- settings and messages the faults call for ---------------------------------------------------------------------


def test_the_jobs_bound_s3a_retries():
    from lakehouse_jobs.session import PROJECT_CONF_DIR

    lines = (PROJECT_CONF_DIR / "spark-defaults.conf").read_text().splitlines()
    conf = dict(line.split(None, 1) for line in lines if line.strip() and not line.startswith("#"))
    assert all(int(conf.get(k, "1000")) <= int(v) for k, v in BOUNDED_S3A.items()), conf


@pytest.mark.parametrize(
    ("fault", "cause"), [("s3_gone", "Connection refused"), ("catalog_dropped", "terminating connection")]
)
def test_the_failed_jobs_one_line_names_the_cause(fault, cause, request):
    assert cause in request.getfixturevalue(fault)["reason"]
