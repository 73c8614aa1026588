"""The generated freshness of the dbt gold sources works: `dbt source freshness` passes fresh, fails stale."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, date, datetime, timedelta

from dbt_harness import DBT, DBT_PROJECT, gold_database, write_profile

DDL = """
create table gold.tweets_per_hour (ds date, hour_start timestamptz, tweets bigint, _loaded_at timestamptz);
create table gold.tweets_per_day (ds date, day date, tweets bigint, _loaded_at timestamptz);
create table gold.trips_weekly (
    ds date, region text, week_start date, days bigint, trips bigint, days_with_trips bigint,
    average_trips_per_day double precision, _loaded_at timestamptz
);
"""
NOW = datetime.now(UTC)
D = date(2026, 11, 20)
# Hand-picked against the declared cadences: tweets (daily) warn after 26 hours, fail after 50; trips (files when
# they come) warn after 2 days, fail after 7.
ROWS = {
    "tweets_per_hour": [(D, NOW, 1, NOW - timedelta(hours=1))],  # loaded an hour ago: fresh
    "tweets_per_day": [(D, D, 1, NOW - timedelta(hours=60))],  # two and a half days: stale
    "trips_weekly": [(D, "Prague", D, 7, 10, 7, 1.4286, NOW - timedelta(days=3))],  # a quiet weekend: a warning
}
EXPECTED = {"tweets_per_hour": "pass", "tweets_per_day": "error", "trips_weekly": "warn"}


def test_source_freshness_follows_the_declared_cadence(tmp_path):
    with gold_database(DDL, ROWS, prefix="dbt_fresh") as database:
        write_profile(database, tmp_path, threads=1)
        selection = [f"source:gold.{table}" for table in EXPECTED]
        proc = subprocess.run(
            [str(DBT), "source", "freshness", "--select", *selection, "--project-dir", str(DBT_PROJECT)]
            + ["--profiles-dir", str(tmp_path), "--target-path", str(tmp_path / "target")]
            + ["--log-path", str(tmp_path / "logs"), "--output", str(tmp_path / "sources.json")],
            capture_output=True,
            text=True,
            env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
            timeout=300,
        )
    results = json.loads((tmp_path / "sources.json").read_text())["results"]
    statuses = {r["unique_id"].rsplit(".", 1)[-1]: r["status"] for r in results}
    assert statuses == EXPECTED, proc.stdout[-3000:]
    assert proc.returncode != 0  # a source past error_after fails the command
