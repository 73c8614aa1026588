"""Against a real TiDB (``-m tidb``): the compose service at 127.0.0.1:4000, or ``LAKEHOUSE_TEST_TIDB_HOST``/``_PORT``.

Skipped when no TiDB answers, as on machines without Docker. With one (``docker compose up tidb``):

- the weekly bounding-box question is an index range scan in TiDB's own plan (its EXPLAIN has other columns than
  MariaDB's, which ``test_tidb_bbox_indexes`` reads);
- the loader and REST API suites run again, unchanged, with TiDB in MariaDB's place (their fixtures read
  ``LAKEHOUSE_TEST_MYSQL_HOST``/``_PORT``; the MariaDB-only EXPLAIN checks skip themselves there).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from serving_dbs import scratch_database

from include.serving.table_specs import serving_extras
from include.serving.tidb import SESSION_DEFAULTS, load_slice_tidb
from tests.trip_cells import SCHEMA as CELLS_SCHEMA
from tests.trip_cells import cell_rows

pytestmark = pytest.mark.tidb

ROOT = Path(__file__).resolve().parents[3]
TIDB = {
    "host": os.environ.get("LAKEHOUSE_TEST_TIDB_HOST", "127.0.0.1"),
    "port": int(os.environ.get("LAKEHOUSE_TEST_TIDB_PORT", "4000")),
    "user": os.environ.get("LAKEHOUSE_TEST_TIDB_USER", "root"),
    "password": os.environ.get("LAKEHOUSE_TEST_TIDB_PASSWORD", ""),
}


def _tidb_version() -> str | None:
    """TiDB's version string, or None when nothing, or something other than TiDB, answers."""
    import pymysql

    try:
        with socket.create_connection((TIDB["host"], TIDB["port"]), timeout=1):
            pass
        conn = pymysql.connect(**TIDB, connect_timeout=3, **SESSION_DEFAULTS)
    except (OSError, pymysql.err.MySQLError):
        return None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            version = str(cur.fetchone()[0])
    finally:
        conn.close()
    return version if "TiDB" in version else None


@pytest.fixture(scope="module")
def tidb_database():
    """A fresh database on the TiDB, dropped afterwards; skips the module when no TiDB answers."""
    if _tidb_version() is None:
        pytest.skip(f"no TiDB at {TIDB['host']}:{TIDB['port']} (docker compose up tidb)")
    with scratch_database("mysql", "tidb_test", server=TIDB) as name:
        yield name


def test_the_weekly_question_is_an_index_range_scan_in_tidbs_plan(tidb_database, trips):
    import pymysql

    from include.api.queries import BoundingBox, weekly_average_query

    conn = pymysql.connect(**TIDB, autocommit=True, local_infile=True, **SESSION_DEFAULTS)
    for seed, ds in enumerate((dt.date(2026, 11, 20), dt.date(2026, 11, 21))):
        rows = trips.rows(ds, 3_000, seed=seed)
        data = pa.Table.from_pylist(rows, schema=trips.schema).to_batches(2_000)
        load_slice_tidb(conn, "trips", ds, trips.schema, 1, data, database=tidb_database,
                        indexes=serving_extras("trips").indexes)  # fmt: skip
        cells = pa.Table.from_pylist(cell_rows(rows), schema=CELLS_SCHEMA).to_batches(5_000)
        load_slice_tidb(conn, "trip_origin_cells", ds, CELLS_SCHEMA, 1, cells, database=tidb_database,
                        indexes=serving_extras("trip_origin_cells").indexes)  # fmt: skip
    conn.select_db(tidb_database)
    sql, params = weekly_average_query(BoundingBox(-74.0, 40.7, -73.9, 40.8), dt.date(2025, 3, 5), dt.date(2025, 4, 28))
    with conn.cursor() as cur:
        cur.execute("EXPLAIN FORMAT = 'brief' " + sql, params)
        names = [d[0].lower() for d in cur.description]
        plan = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    conn.close()
    on_rows = [step for step in plan if "__rows" in str(step.get("access object", ""))]
    assert on_rows, plan
    # TiDB reads both rows tables through their declared indexes as ranges, never a full table scan.
    assert all("TableFullScan" not in step["id"] for step in on_rows), plan
    indexes = ("index:origin_fine_cell_date", "index:level_cell_date")
    assert {box for step in on_rows for box in indexes if box in step["access object"]} == set(indexes), plan


def test_the_loader_and_api_suites_pass_on_tidb(tidb_database):
    env = {**os.environ, "LAKEHOUSE_TEST_MYSQL_HOST": TIDB["host"], "LAKEHOUSE_TEST_MYSQL_PORT": str(TIDB["port"]),
           "LAKEHOUSE_TEST_MYSQL_USER": TIDB["user"], "LAKEHOUSE_TEST_MYSQL_PASSWORD": TIDB["password"]}  # fmt: skip
    suites = ["tests/include/serving", "tests/include/api", "-m", "not tidb", "-q", "-p", "no:cacheprovider"]
    run = subprocess.run([sys.executable, "-m", "pytest", *suites], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
