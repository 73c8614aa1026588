"""The tweets DAG end to end through Airflow (local Spark runner) against PostgreSQL, moto S3 and Iceberg."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

DS = "2026-11-20"  # tests/integration/conftest.py runs the tweets DAG for this date
SAMPLE_LINES = 30_000

pytestmark = pytest.mark.integration

HEADER = "tweet_id\tdate\ttime\tlang\tcountry_code"
TABLES = [
    "raw.tweets",
    "bronze.tweets",
    "bronze.tweets_rejects",
    "gold.tweets_per_hour",
    "gold.tweets_per_day",
    "gold.tweets_by_language",
    "gold.tweets_by_country",
    "gold.pipeline_runs",
]


def reject_reason(line: str) -> str | None:
    """Why the pipeline must refuse `line`, by the rules of the issue, written independently of the job."""
    fields = line.split("\t")
    if not line.strip():
        return "blank_line"
    if line == HEADER:
        return "repeated_header"
    if len(fields) != 5:
        return "wrong_column_count"
    if not re.fullmatch(r"\d{1,19}", fields[0].strip()) or int(fields[0]) > 2**63 - 1:
        return "bad_tweet_id"
    date, time = fields[1].strip(), fields[2].strip()
    if not (re.fullmatch(r"\d{4}-\d\d-\d\d", date) and re.fullmatch(r"\d\d:\d\d:\d\d", time)):
        return "bad_timestamp"
    try:
        dt.datetime.strptime(f"{date} {time}", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return "bad_timestamp"
    return "bad_timestamp" if int(time[-2:]) > 59 else None  # strptime accepts leap seconds; the pipeline not


def expected_from_file(path: Path) -> dict:
    """Independent reading of the generated TSV: what bronze and gold must contain."""
    text = path.read_bytes().decode("utf-8")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    seen: set[int] = set()
    per_hour, per_day, by_lang, by_country, rejects = Counter(), Counter(), Counter(), Counter(), Counter()
    duplicates = 0
    for number, line in enumerate(lines, start=1):
        if number == 1 and line == HEADER:
            continue
        reason = reject_reason(line)
        if reason:
            rejects[reason] += 1
            continue
        tweet_id, date, time, lang, country = (f.strip() for f in line.split("\t"))
        if int(tweet_id) in seen:
            duplicates += 1
            continue
        seen.add(int(tweet_id))
        created = dt.datetime.strptime(f"{date} {time}", "%Y-%m-%d %H:%M:%S")
        per_hour[created.replace(minute=0, second=0)] += 1
        per_day[created.date()] += 1
        by_lang[lang.lower() or "und"] += 1
        by_country[country.upper() or "ZZ"] += 1
    return {
        "raw": len(lines),
        "accepted": len(seen),
        "duplicates": duplicates,
        "rejects": rejects,
        "per_hour": per_hour,
        "per_day": per_day,
        "by_lang": by_lang,
        "by_country": by_country,
    }


@pytest.fixture(scope="module")
def sample(tweets_run):
    return tweets_run.sample


# When the slice was last written, and how long its download took: a re-run measures them anew.
VOLATILE = {"_loaded_at", "extraction_s"}


def slice_rows(catalog, table: str) -> Counter:
    """The slice's rows as a multiset, without the columns that time the last run (`VOLATILE`)."""
    from pyiceberg.expressions import EqualTo

    arrow = catalog.load_table(table).scan(row_filter=EqualTo("ds", DS)).to_arrow()
    columns = [c for c in arrow.column_names if c not in VOLATILE]
    return Counter(tuple(row[c] for c in columns) for row in arrow.select(columns).to_pylist())


@pytest.fixture(scope="module")
def first_run(tweets_run, iceberg_catalog):
    assert (tweets_run.ds, tweets_run.lines) == (DS, SAMPLE_LINES)
    return {t: slice_rows(iceberg_catalog, t) for t in TABLES}


def test_gold_matches_counts_computed_from_the_file(first_run, sample):
    want = expected_from_file(sample)
    utc = dt.UTC
    assert sum(want["rejects"].values()) > 0 and want["duplicates"] > 0  # the sample exercises both paths
    per_hour = {(h.replace(tzinfo=utc)): n for (_, h, n) in first_run["gold.tweets_per_hour"]}
    assert per_hour == {h.replace(tzinfo=utc): n for h, n in want["per_hour"].items()}
    assert {d: n for (_, d, n) in first_run["gold.tweets_per_day"]} == dict(want["per_day"])
    assert {lang: n for (_, lang, n) in first_run["gold.tweets_by_language"]} == dict(want["by_lang"])
    assert {cc: n for (_, cc, n) in first_run["gold.tweets_by_country"]} == dict(want["by_country"])


def test_every_raw_line_is_accounted_for(first_run, sample):
    want = expected_from_file(sample)
    raw, bronze, rejects = (
        sum(first_run[t].values()) for t in ("raw.tweets", "bronze.tweets", "bronze.tweets_rejects")
    )
    assert raw == want["raw"] == SAMPLE_LINES + 1
    assert bronze == want["accepted"]
    reasons = Counter(row[1] for row in first_run["bronze.tweets_rejects"].elements())
    assert reasons == want["rejects"]
    assert raw == 1 + bronze + want["duplicates"] + rejects


def test_extraction_is_recorded(first_run, sample, iceberg_catalog):
    from pyiceberg.expressions import EqualTo

    rows = iceberg_catalog.load_table("ops.extractions").scan(row_filter=EqualTo("domain", "tweets")).to_arrow()
    rows = [r for r in rows.to_pylist() if r["ds"] == dt.date.fromisoformat(DS)]
    assert len(rows) == 1
    row = rows[0]
    assert row["bytes"] == sample.stat().st_size
    assert row["sha256"] == hashlib.sha256(sample.read_bytes()).hexdigest()
    assert row["lines"] == row["raw_rows"] == SAMPLE_LINES + 1
    assert row["status"] == "succeeded"
    assert row["object_key"] == f"tweets/ds={DS}/{sample.name}"


def test_spark_and_pyiceberg_read_the_same_snapshot(first_run, spark, iceberg_catalog):
    table = "gold.tweets_per_day"
    spark_snapshot = spark.sql(
        f"SELECT snapshot_id FROM lake.{table}.snapshots ORDER BY committed_at DESC LIMIT 1"
    ).first()["snapshot_id"]
    py_table = iceberg_catalog.load_table(table)
    assert py_table.current_snapshot().snapshot_id == spark_snapshot
    spark_rows = Counter(
        (r["ds"], r["day"], r["tweets"]) for r in spark.table(f"lake.{table}").where(f"ds = DATE'{DS}'").collect()
    )
    assert spark_rows == first_run[table]


def test_rerun_changes_no_table(first_run, tweets_run, dag_runner, iceberg_catalog):
    dag_runner("tweets", run_conf={"source_url": tweets_run.source_url})
    assert {t: slice_rows(iceberg_catalog, t) for t in TABLES} == first_run
    # The extraction row was upserted, not appended (other domains' runs of the session have their own rows).
    extractions = iceberg_catalog.load_table("ops.extractions").scan().to_arrow().to_pylist()
    assert [r["ds"] for r in extractions if r["domain"] == "tweets"] == [dt.date.fromisoformat(DS)]


def run_bronze(lake_env, *args: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "lakehouse_jobs", "tweets", "bronze", "--ds", DS, *args],
        env={**os.environ, **lake_env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def run_status(catalog) -> str:
    from pyiceberg.expressions import EqualTo

    rows = catalog.load_table("gold.pipeline_runs").scan(row_filter=EqualTo("ds", DS)).to_arrow().to_pylist()
    return [r["status"] for r in rows if r["domain"] == "tweets"][0]


def test_bronze_refuses_to_publish_above_the_reject_ratio(first_run, lake_env, iceberg_catalog):
    before = slice_rows(iceberg_catalog, "bronze.tweets")
    proc = run_bronze(lake_env, "--max-reject-ratio", "0.0001")
    assert proc.returncode == 1
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"tweets bronze ds={DS} failed: RejectRatioExceeded:")
    assert "max_reject_ratio" in last_line
    assert slice_rows(iceberg_catalog, "bronze.tweets") == before
    assert run_status(iceberg_catalog) == "rejected"  # the dashboard shows the refusal

    assert run_bronze(lake_env).returncode == 0  # the default threshold publishes again, as before
    assert run_status(iceberg_catalog) == "published"
    assert {t: slice_rows(iceberg_catalog, t) for t in TABLES} == first_run
