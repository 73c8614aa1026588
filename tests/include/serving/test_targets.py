"""What is particular to each serving target: PostgreSQL partitions, the TiDB view and retries, connections, types."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pymysql
import pytest

from include.serving import postgres, tidb
from include.serving.loads import check_schema, mysql_type, postgres_type

DS_A = dt.date(2026, 11, 20)
DS_B = dt.date(2026, 11, 21)
SCHEMA = pa.schema([("ds", pa.date32()), ("lang", pa.string()), ("tweets", pa.int64())])


def batch(ds: dt.date, rows: list[tuple[str, int]]) -> list[pa.RecordBatch]:
    data = {"ds": [ds] * len(rows), "lang": [r[0] for r in rows], "tweets": [r[1] for r in rows]}
    return pa.Table.from_pydict(data, schema=SCHEMA).to_batches()


def fetch(conn, sql: str, args=()) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


@pytest.mark.parametrize(
    ("arrow_type", "pg", "mysql"),
    [
        (pa.int32(), "integer", "INT"),
        (pa.int64(), "bigint", "BIGINT"),
        (pa.float64(), "double precision", "DOUBLE"),
        (pa.decimal128(38, 10), "numeric(38,10)", "DECIMAL(38,10)"),
        (pa.date32(), "date", "DATE"),
        (pa.timestamp("us", tz="UTC"), "timestamptz", "DATETIME(6)"),
        (pa.timestamp("us"), "timestamp", "DATETIME(6)"),
        (pa.string(), "text", "TEXT"),
        (pa.large_string(), "text", "TEXT"),
        (pa.bool_(), "boolean", "BOOLEAN"),
    ],
)
def test_type_mapping(arrow_type, pg, mysql):
    assert postgres_type(arrow_type) == pg
    assert mysql_type(arrow_type) == mysql


def test_mysql_key_strings_are_varchar_and_odd_types_are_refused():
    assert mysql_type(pa.string(), key=True) == "VARCHAR(255)"
    with pytest.raises(TypeError):
        mysql_type(pa.decimal256(70, 2))
    with pytest.raises(TypeError):
        postgres_type(pa.list_(pa.int64()))


def test_schema_checks():
    with pytest.raises(ValueError, match="ds"):
        check_schema(pa.schema([("day", pa.date32())]))
    with pytest.raises(ValueError, match="reserved"):
        check_schema(pa.schema([("ds", pa.date32()), ("_loaded_at", pa.int64())]))


@pytest.mark.integration
def test_postgres_keeps_one_partition_per_slice_and_refuses_stray_rows(pg_connect, table_name):
    conn, reader = pg_connect(), pg_connect()
    postgres.load_slice_postgres(conn, table_name, DS_A, SCHEMA, 1, batch(DS_A, [("en", 3)]))
    postgres.load_slice_postgres(conn, table_name, DS_B, SCHEMA, 1, batch(DS_B, [("fr", 4)]))
    postgres.load_slice_postgres(conn, table_name, DS_A, SCHEMA, 2, batch(DS_A, [("de", 5)]))
    stray = batch(DS_A, [("es", 1)]) + batch(DS_B, [("it", 2)])

    with pytest.raises(Exception, match="check constraint"):
        postgres.load_slice_postgres(conn, table_name, DS_A, SCHEMA, 3, stray)

    partitions = fetch(
        reader,
        "SELECT c.relnamespace::regnamespace::text, c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = %s::regclass ORDER BY 2",
        (f"gold.{table_name}",),
    )
    assert partitions == [("gold_slices", f"{table_name}__20261120"), ("gold_slices", f"{table_name}__20261121")]
    assert fetch(reader, f"SELECT ds, lang, tweets FROM gold.{table_name} ORDER BY ds") == [
        (DS_A, "de", 5),
        (DS_B, "fr", 4),
    ]
    leftovers = fetch(
        reader,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'gold_slices' AND tablename LIKE %s",
        (f"{table_name}%",),
    )
    assert leftovers == [(2,)]


@pytest.mark.integration
def test_tidb_view_key_columns_and_old_versions_removed(mysql_connect, mysql_database, table_name):
    conn, reader = mysql_connect(), mysql_connect()
    load = tidb.load_slice_tidb
    load(
        conn,
        table_name,
        DS_A,
        SCHEMA,
        1,
        batch(DS_A, [("en", 3), ("fr", 1)]),
        database=mysql_database,
        key_columns=["lang"],
    )
    load(conn, table_name, DS_A, SCHEMA, 2, batch(DS_A, [("de", 5)]), database=mysql_database, key_columns=["lang"])

    columns = fetch(
        reader,
        "SELECT column_name, column_type FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
        " ORDER BY ordinal_position",
        (mysql_database, f"{table_name}__rows"),
    )
    assert columns == [
        ("ds", "date"),
        ("lang", "varchar(255)"),
        ("tweets", "bigint(20)"),
        ("_loaded_at", "datetime(6)"),
        ("_load_id", "bigint(20)"),
        ("_row", "bigint(20)"),
    ]
    index = fetch(
        reader,
        "SELECT index_name, column_name FROM information_schema.statistics WHERE table_schema = %s"
        " AND table_name = %s ORDER BY index_name, seq_in_index",
        (mysql_database, f"{table_name}__rows"),
    )
    assert index == [
        ("PRIMARY", "ds"),
        ("PRIMARY", "_load_id"),
        ("PRIMARY", "_row"),
        ("slice_keys", "ds"),
        ("slice_keys", "_load_id"),
        ("slice_keys", "lang"),
    ]
    view = fetch(reader, f"SELECT * FROM `{mysql_database}`.`{table_name}`")
    assert [row[:3] for row in view] == [(DS_A, "de", 5)]
    assert len(view[0]) == 4  # ds, lang, tweets, _loaded_at: no _load_id, no _row
    # The superseded version is gone from the rows table, not only hidden.
    assert fetch(reader, f"SELECT count(*) FROM `{mysql_database}`.`{table_name}__rows`") == [(1,)]


def test_with_retries_retries_retryable_errors_only():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock")
        return "done"

    assert tidb.with_retries(flaky, base_delay=0.001) == "done"
    assert len(calls) == 3

    def conflict():
        raise pymysql.err.OperationalError(9007, "Write conflict")

    with pytest.raises(pymysql.err.OperationalError):
        tidb.with_retries(conflict, attempts=3, base_delay=0.001)

    failures = []

    def broken():
        failures.append(1)
        raise pymysql.err.ProgrammingError(1064, "syntax error")

    with pytest.raises(pymysql.err.ProgrammingError):
        tidb.with_retries(broken)
    assert len(failures) == 1


@pytest.mark.integration
def test_connect_from_airflow_connections(airflow_connections, table_name):
    pg = postgres.connect()
    my = tidb.connect()
    try:
        assert fetch(pg, "SELECT current_database()") == [(airflow_connections.postgres,)]
        assert fetch(my, "SELECT DATABASE()") == [(airflow_connections.tidb,)]
        # Without a database argument the TiDB loader serves into the connection's database.
        tidb.load_slice_tidb(my, table_name, DS_A, SCHEMA, 1, batch(DS_A, [("en", 1)]))
        with pytest.raises(ValueError, match="inside a transaction"):
            postgres.load_slice_postgres(pg, table_name, DS_A, SCHEMA, 1, batch(DS_A, [("en", 1)]))
        pg.rollback()
        postgres.load_slice_postgres(pg, table_name, DS_A, SCHEMA, 1, batch(DS_A, [("en", 1)]))
        assert fetch(my, f"SELECT ds, lang, tweets FROM `{airflow_connections.tidb}`.`{table_name}`") == [
            (DS_A, "en", 1)
        ]
        assert fetch(pg, f"SELECT ds, lang, tweets FROM gold.{table_name}") == [(DS_A, "en", 1)]
    finally:
        pg.close()
        my.close()
