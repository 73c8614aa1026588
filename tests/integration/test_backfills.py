"""Backfills in reverse order and with gaps: every day's gold is what SQL on the source says that day's is.

The expected gold is computed on the source alone (``rentals_oracle``, the rules the rentals DAG test checks one day
against), so it is what a clean run in date order must give too, without running one. The backfill runs in a catalog
(and warehouse) of its own, through the jobs' command line (``python -m lakehouse_jobs <domain> <layer> --ds ...``,
the line the DAGs' Spark tasks run), its jobs one after the other in one Python process so that the JVM starts once.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence

import pytest
from rentals_oracle import GOLD as RENTALS_GOLD
from rentals_oracle import expected_gold, late_payments, source_dsn

from devtools import local_stack

pytestmark = pytest.mark.integration

LAYERS = ("raw", "bronze", "gold")
# The samples are small, so their planted defects are a larger share of a day than the DAGs' gates allow.
GATE = ("--max-reject-ratio", "0.5")
DRIVER = """
import sys
from lakehouse_jobs.__main__ import main
for line in sys.argv[1:]:
    code = main(line.split("|"))
    if code:
        sys.exit(f"failed: {line}")
"""


@pytest.fixture
def fresh_catalog(lake_env):
    """``make(order)`` -> the job environment of a catalog database and warehouse of its own; dropped afterwards."""
    names = []

    def make(order: str) -> dict[str, str]:
        name = f"backfill_{order}_{uuid.uuid4().hex[:8]}"
        local_stack.recreate_database(name)
        names.append(name)
        return {
            **lake_env,
            "LAKEHOUSE_CATALOG_URI": f"jdbc:postgresql://{local_stack.PG_HOST}:{local_stack.PG_PORT}/{name}",
            "LAKEHOUSE_WAREHOUSE": f"s3a://lakehouse/{name}",
            "_CATALOG_DB": name,
        }

    yield make
    for name in names:
        local_stack.drop_database(name)


def run_days(env: dict[str, str], domain: str, days: Sequence[str], options: Mapping[str, Sequence[str]]) -> None:
    """Run raw, bronze and gold of ``domain`` for each of ``days``, in order, through the CLI (``options`` by layer)."""
    lines = ["|".join((domain, layer, "--ds", day, *options.get(layer, ()))) for day in days for layer in LAYERS]
    job_env = {k: v for k, v in env.items() if not k.startswith("_")}
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, *lines],
        env={**os.environ, **job_env},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def gold_slices(env: dict[str, str], tables: Sequence[str], days: Sequence[str]) -> dict[tuple[str, str], Counter]:
    """Each (table, day) slice as a multiset of rows, without ``_loaded_at`` (the time of the write)."""
    from pyiceberg.expressions import EqualTo

    catalog = local_stack.pyiceberg_catalog(env["S3_ENDPOINT"], env["_CATALOG_DB"])
    slices = {}
    for table in tables:
        loaded = catalog.load_table(table)
        for day in days:
            arrow = loaded.scan(row_filter=EqualTo("ds", day)).to_arrow()
            columns = [c for c in arrow.column_names if c != "_loaded_at"]
            slices[(table, day)] = Counter(tuple(r[c] for c in columns) for r in arrow.select(columns).to_pylist())
    return slices


# --- rentals -------------------------------------------------------------------------------------------------

BACKFILL = ("2026-11-21", "2026-11-19", "2026-11-18")  # newest first, 2026-11-20 never run


@pytest.fixture
def rentals_source(lake_env):
    """A generated DVD-rental database of four days from 2026-11-18, a third of the payments taken on return."""
    from devtools.samples.rentals import RentalsOptions, generate_rentals_db

    name = f"dvdrental_backfill_{uuid.uuid4().hex[:8]}"
    local_stack.recreate_database(name)
    options = RentalsOptions(rentals=1200, seed=9, start=dt.date(2026, 11, 18), days=4, pay_on_return_every=3)
    generate_rentals_db(source_dsn(name), options)
    yield name
    local_stack.drop_database(name)


def add_customer_who_joined_later(database: str) -> None:
    """A customer created after every day run (the source as a later re-run finds it), at an existing address."""
    import psycopg2

    conn = psycopg2.connect(source_dsn(database))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO customer SELECT max(customer_id) + 1, 1, 'NEW', 'CUSTOMER', NULL, 5, true, "
                "DATE '2026-12-01', now(), 1 FROM customer"
            )
    finally:
        conn.close()


def test_rentals_backfill_in_reverse_with_a_gap_equals_sql_on_the_source(fresh_catalog, rentals_source):
    source = {
        "SOURCE_JDBC_URL": f"jdbc:postgresql://{local_stack.PG_HOST}:{local_stack.PG_PORT}/{rentals_source}",
        "SOURCE_USER": local_stack.PG_USER,
        "SOURCE_PASSWORD": "",
    }
    add_customer_who_joined_later(rentals_source)  # the backfill runs later, on a source that has grown
    # The first day run has payments for rentals of earlier days, none of which has been run yet.
    assert late_payments(rentals_source, BACKFILL[0]) > 0
    backfill = {**fresh_catalog("reverse"), **source}
    run_days(backfill, "rentals", BACKFILL, {"bronze": GATE})
    want = {(table, day): rows for day in BACKFILL for table, rows in expected_gold(rentals_source, day).items()}
    assert all(want[("gold.top_countries", day)] for day in BACKFILL)
    assert gold_slices(backfill, RENTALS_GOLD, BACKFILL) == want
