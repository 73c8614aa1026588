"""The TiDB loader's TiDB behaviour on MariaDB: session defaults, key-range deletes, analyze, retries, chunk sizes."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from include.serving import tidb
from include.serving.table_specs import SecondaryIndex
from include.serving.tidb import SESSION_DEFAULTS, load_slice_tidb

pytestmark = pytest.mark.integration

DS_A = dt.date(2026, 11, 20)
DS_B = dt.date(2026, 11, 21)
SCHEMA = pa.schema([("ds", pa.date32()), ("id", pa.int64()), ("k", pa.string())])


def batch(ds: dt.date, count: int, start: int = 0) -> pa.RecordBatch:
    ids = list(range(start, start + count))
    return pa.record_batch([pa.array([ds] * count, pa.date32()), pa.array(ids, pa.int64()),
                            pa.array([f"k{i % 7}" for i in ids])], schema=SCHEMA)  # fmt: skip


def rows_by_load(conn, db: str, table: str) -> dict[tuple[dt.date, int], int]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT ds, _load_id, COUNT(*) FROM `{db}`.`{table}__rows` GROUP BY ds, _load_id")
        return {(ds, load_id): count for ds, load_id, count in cur.fetchall()}


# --- session defaults --------------------------------------------------------------------------------------------


def test_test_connections_run_with_tidbs_sql_mode_and_collation(mysql_connect):
    conn = mysql_connect()
    with conn.cursor() as cur:
        cur.execute("SELECT @@SESSION.sql_mode, @@SESSION.collation_connection")
        sql_mode, collation = cur.fetchone()
    # TiDB v8.5's documented default sql_mode, written out here independently of the constant.
    assert set(sql_mode.split(",")) == {"ONLY_FULL_GROUP_BY", "STRICT_TRANS_TABLES", "NO_ZERO_IN_DATE",
                                        "NO_ZERO_DATE", "ERROR_FOR_DIVISION_BY_ZERO", "NO_AUTO_CREATE_USER",
                                        "NO_ENGINE_SUBSTITUTION"}  # fmt: skip
    assert collation == "utf8mb4_bin"


def test_sql_only_mariadbs_defaults_accept_fails(mysql_connect):
    import pymysql

    conn = mysql_connect()
    with conn.cursor() as cur:
        # A column neither grouped nor aggregated: MariaDB's default mode returns any value, TiDB refuses (1055).
        with pytest.raises(pymysql.err.OperationalError) as refused:
            cur.execute("SELECT a, b FROM (SELECT 1 AS a, 2 AS b UNION ALL SELECT 1, 3) t GROUP BY a")
        assert refused.value.args[0] == 1055
        # utf8mb4_bin compares case-sensitively, as TiDB does; utf8mb4_general_ci would say 1.
        cur.execute("SELECT 'Abc' = 'abc'")
        assert cur.fetchone()[0] == 0


def test_the_api_uses_the_same_session_defaults():
    from include.api import db

    assert (db.TIDB_SQL_MODE, db.TIDB_COLLATION) == (tidb.TIDB_SQL_MODE, tidb.TIDB_COLLATION)
    assert SESSION_DEFAULTS == {"charset": "utf8mb4", "collation": "utf8mb4_bin", "sql_mode": tidb.TIDB_SQL_MODE}


# --- deleting old versions by key range ---------------------------------------------------------------------------


def test_old_versions_are_deleted_by_key_range_leaving_other_slices(mysql_connect, mysql_database, table_name):
    conn = mysql_connect()
    load_slice_tidb(conn, table_name, DS_A, SCHEMA, 1, [batch(DS_A, 23_456)], database=mysql_database)
    load_slice_tidb(conn, table_name, DS_B, SCHEMA, 1, [batch(DS_B, 300)], database=mysql_database)
    statements: list[str] = []
    real = tidb._execute

    def spy(conn_, sql, args=None):
        statements.append(sql)
        return real(conn_, sql, args)

    tidb._execute = spy
    try:
        load_slice_tidb(conn, table_name, DS_A, SCHEMA, 2, [batch(DS_A, 5)], database=mysql_database)
    finally:
        tidb._execute = real
    current = rows_by_load(conn, mysql_database, table_name)
    # Only the new load of DS_A (5 rows) and the untouched DS_B load (300 rows) are left.
    assert sorted(current.values()) == [5, 300] and {ds for ds, _ in current} == {DS_A, DS_B}
    deletes = [sql for sql in statements if sql.startswith("DELETE")]
    # 23,456 rows in batches of at most 10,000: 3 range deletes, none with LIMIT.
    assert len(deletes) == 3 and not any("LIMIT" in sql for sql in deletes)


def test_deleting_resumes_after_an_interrupted_delete_and_spans_loads(mysql_connect, mysql_database, table_name):
    conn = mysql_connect()
    load_slice_tidb(conn, table_name, DS_A, SCHEMA, 1, [batch(DS_A, 12_000)], database=mysql_database)
    rows_table = f"`{mysql_database}`.`{table_name}__rows`"
    with conn.cursor() as cur:
        cur.execute(f"SELECT MAX(_load_id) FROM {rows_table}")
        first = cur.fetchone()[0]
        # An earlier delete stopped after its first batch, and a failed load left 7 rows of a later load_id.
        cur.execute(f"DELETE FROM {rows_table} WHERE _row < 10000")
        cur.execute(f"INSERT INTO {rows_table} (ds, id, k, _loaded_at, _load_id, _row)"
                    f" SELECT ds, id, k, _loaded_at, %s, _row FROM {rows_table} WHERE _row < 12000 LIMIT 7",
                    (first + 1,))  # fmt: skip
    assert tidb._delete_rows(conn, mysql_database, table_name, DS_A, "<", first + 2) == 2_000 + 7
    assert rows_by_load(conn, mysql_database, table_name) == {}


def test_discarding_a_failed_load_deletes_only_that_load(mysql_connect, mysql_database, table_name):
    conn = mysql_connect()
    load_slice_tidb(conn, table_name, DS_A, SCHEMA, 1, [batch(DS_A, 40)], database=mysql_database)
    (served_load,) = {load_id for _, load_id in rows_by_load(conn, mysql_database, table_name)}
    rows_table = f"`{mysql_database}`.`{table_name}__rows`"
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {rows_table} (ds, id, k, _loaded_at, _load_id, _row)"
                    f" SELECT ds, id, k, _loaded_at, %s, _row FROM {rows_table}", (served_load + 5,))  # fmt: skip
    assert tidb._delete_rows(conn, mysql_database, table_name, DS_A, "=", served_load + 5) == 40
    assert rows_by_load(conn, mysql_database, table_name) == {(DS_A, served_load): 40}


# --- load ids from the database, not from a clock ------------------------------------------------------------------


def served_load_id(conn, db: str, table: str, ds: dt.date) -> int:
    with conn.cursor() as cur:
        cur.execute(f"SELECT load_id FROM `{db}`._lakehouse_loads WHERE table_name = %s AND ds = %s", (table, ds))
        return cur.fetchone()[0]


def test_a_later_load_wins_whatever_the_workers_clocks_say(mysql_connect, mysql_database, table_name, monkeypatch):
    import time

    first_worker, second_worker = mysql_connect(), mysql_connect()
    load_slice_tidb(first_worker, table_name, DS_A, SCHEMA, 1, [batch(DS_A, 3)], database=mysql_database)
    first = served_load_id(first_worker, mysql_database, table_name, DS_A)
    # The second worker's clock is a day behind: a load id taken from it would be older, and the flip refused.
    behind = time.time_ns() - 86_400 * 10**9
    monkeypatch.setattr(time, "time_ns", lambda: behind)

    load_slice_tidb(second_worker, table_name, DS_A, SCHEMA, 2, [batch(DS_A, 5, start=100)], database=mysql_database)

    assert served_load_id(first_worker, mysql_database, table_name, DS_A) == first + 1
    assert rows_by_load(first_worker, mysql_database, table_name) == {(DS_A, first + 1): 5}


def test_the_counter_starts_past_load_ids_an_older_loader_took_from_the_clock(
    mysql_connect, mysql_database, table_name
):
    conn = mysql_connect()
    load_slice_tidb(conn, table_name, DS_A, SCHEMA, 1, [batch(DS_A, 3)], database=mysql_database)
    clock_era = 1_764_000_000_000_000 + 10**12  # microseconds since 1970, past every id the counter gave so far
    with conn.cursor() as cur:
        # As an older loader left the database: its load ids were the clock, and it had no counter.
        cur.execute(f"UPDATE `{mysql_database}`.`{table_name}__rows` SET _load_id = %s", (clock_era,))
        cur.execute(
            f"UPDATE `{mysql_database}`._lakehouse_loads SET load_id = %s WHERE table_name = %s",
            (clock_era, table_name),
        )
        cur.execute(f"DROP TABLE `{mysql_database}`._lakehouse_load_ids")

    load_slice_tidb(conn, table_name, DS_A, SCHEMA, 2, [batch(DS_A, 4)], database=mysql_database)

    assert served_load_id(conn, mysql_database, table_name, DS_A) > clock_era
    assert sorted(rows_by_load(conn, mysql_database, table_name).values()) == [4]


# --- analyze only on growth, only the questions' indexes ------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (0, 1, True),  # first load
        (0, 0, False),  # an empty table stays empty
        (1000, 2000, True),  # doubled
        (2000, 2100, False),  # +5%: both on step 1 + floor(ln n / ln 1.2) = 42
        (2000, 2000, False),  # a reload of the same size
        (1000, 1100, True),  # 1000 is on step 38, 1100 (ln 1100 / ln 1.2 = 38.41) on 39
    ],
)
def test_analyze_runs_only_when_the_table_grew_a_step(before, after, expected):
    assert tidb._should_analyze(before, after) is expected


def test_a_load_analyzes_when_the_table_grew_and_not_otherwise(mysql_connect, mysql_database, table_name, monkeypatch):
    calls: list[tuple[str, tuple[str, ...]]] = []
    monkeypatch.setattr(tidb, "_analyze", lambda conn, db, table, indexes: calls.append((table, indexes)))
    index = (SecondaryIndex("by_k", ("k",)),)
    conn = mysql_connect()
    # (slice, snapshot, rows): the served rows go 0 -> 1000 -> 2000 -> 2100 -> 2100.
    for ds, snapshot, rows in ((DS_A, 1, 1000), (DS_B, 1, 1000), (DS_B, 2, 1100), (DS_A, 2, 1000)):
        load_slice_tidb(
            conn, table_name, ds, SCHEMA, snapshot, [batch(ds, rows)], database=mysql_database, indexes=index
        )
    assert calls == [(table_name, index), (table_name, index)]


class Recorder:
    """A connection that answers VERSION() with ``version`` and records every statement."""

    def __init__(self, version: str):
        self.version, self.sql = version, []

    def cursor(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql, args=None):
        self.sql.append(sql)

    def fetchall(self):
        return [(self.version,)] if self.sql[-1] == "SELECT VERSION()" else []


def test_analyze_on_tidb_names_only_the_questions_indexes():
    conn = Recorder("8.0.11-TiDB-v8.5.8")
    indexes = (SecondaryIndex("pickup_date_point", ("a",)), SecondaryIndex("pickup_point_date", ("b",)))
    tidb._analyze(conn, "lakehouse", "trips", indexes)
    assert conn.sql[-1] == "ANALYZE TABLE `lakehouse`.`trips__rows` INDEX `pickup_date_point`, `pickup_point_date`"


def test_analyze_on_mariadb_uses_its_own_syntax():
    conn = Recorder("11.4.5-MariaDB")
    tidb._analyze(conn, "lakehouse", "trips", (SecondaryIndex("i", ("a",)),))
    assert conn.sql[-1] == "ANALYZE TABLE `lakehouse`.`trips__rows`"


# --- retries ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [8005, 9001, 9002, 9005, 8002, 9007, 1213, 1205])
def test_tidbs_transient_errors_are_retried(code):
    import pymysql

    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise pymysql.err.OperationalError(code, "transient")
        return "done"

    assert tidb.with_retries(flaky, base_delay=0.001) == "done" and len(attempts) == 3


def test_a_memory_quota_error_is_not_retried():
    import pymysql

    attempts = []

    def over_quota():
        attempts.append(1)
        raise pymysql.err.OperationalError(8175, "Your query has been cancelled due to exceeding the memory quota")

    with pytest.raises(pymysql.err.OperationalError):
        tidb.with_retries(over_quota, base_delay=0.001)
    assert len(attempts) == 1


# --- chunks under TiDB's transaction size limit ----------------------------------------------------------------------


def test_wide_rows_make_smaller_chunks_counting_their_index_entries():
    wide = pa.record_batch([pa.array(["x" * 1_000_000] * 100)], names=["s"])
    # ~1 MB a row (plus 8 bytes of offsets), 3 entries a row: 64 MiB / ~3 MB = 22 rows a transaction.
    assert tidb._rows_per_chunk(wide, 10_000, 3) == 67_108_864 // (wide.nbytes / 100 * 3)
    assert 20 <= tidb._rows_per_chunk(wide, 10_000, 3) <= 23
    narrow = pa.record_batch([pa.array(range(50_000), pa.int64())], names=["n"])
    assert tidb._rows_per_chunk(narrow, 10_000, 3) == 10_000
    chunks = list(tidb._chunks([wide], 10_000, 3))
    assert sum(chunk.num_rows for chunk in chunks) == 100 and max(chunk.num_rows for chunk in chunks) <= 23
    assert chunks[-1].column(tidb.ROW).to_pylist()[-1] == 99
