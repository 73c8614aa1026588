"""The PostgreSQL and TiDB loaders against the real local PostgreSQL and MariaDB (the TiDB stand-in)."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pyarrow as pa
import pytest

from include.serving.postgres import load_slice_postgres
from include.serving.tidb import load_slice_tidb

pytestmark = pytest.mark.integration

UTC = dt.UTC
DS_A = dt.date(2026, 11, 20)
DS_B = dt.date(2026, 11, 21)
SCHEMA = pa.schema(
    [
        ("ds", pa.date32()),
        ("id", pa.int64()),
        ("n", pa.int64()),
        ("x", pa.float64()),
        ("amount", pa.decimal128(12, 2)),
        ("day", pa.date32()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("s", pa.string()),
    ]
)
NULLS = {"n": None, "x": None, "amount": None, "day": None, "at": None, "s": None}
# Hand-written rows: the edge cases of each type, and strings that break naive CSV or SQL quoting.
MIXED = [
    {
        "id": 1,
        "n": 2**63 - 1,
        "x": 0.1,
        "amount": Decimal("9999999999.99"),
        "day": dt.date(2026, 11, 20),
        "at": dt.datetime(2026, 11, 20, 23, 59, 59, 999999, tzinfo=UTC),
        "s": "double \" and single ' quotes, a comma",
    },
    {
        "id": 2,
        "n": -(2**63),
        "x": -2.5e20,
        "amount": Decimal("-9999999999.99"),
        "day": dt.date(1900, 1, 1),
        "at": dt.datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        "s": "tab\there\nnewline\r\nCRLF\rCR",
    },
    {
        "id": 3,
        "n": 0,
        "x": 1 / 3,
        "amount": Decimal("0.01"),
        "day": dt.date(9999, 12, 31),
        "at": dt.datetime(2000, 2, 29, 12, 0, tzinfo=UTC),
        "s": "back\\slash \\N \\\\ \\t and a trailing backslash\\",
    },
    {"id": 4, **NULLS},
    {"id": 5, **NULLS, "x": 1e-300, "s": "ünïcødé ✓ 日本語 🙂 𝄞"},
    {"id": 6, **NULLS, "x": 1.7976931348623157e308, "s": ""},
    {"id": 7, **NULLS, "s": "NULL"},
    {"id": 8, **NULLS, "s": '"'},
    {"id": 9, **NULLS, "s": ","},
]


def rows_for(ds: dt.date, rows: list[dict]) -> list[dict]:
    """The rows of a slice, as the test expects to read them back."""
    return [{"ds": ds, **row} for row in rows]


def batches(rows: list[dict], schema: pa.Schema = SCHEMA, size: int = 3) -> list[pa.RecordBatch]:
    return pa.Table.from_pylist(rows, schema=schema).to_batches(max_chunksize=size)


def simple_rows(ds: dt.date, ids: range, tag: str) -> list[dict]:
    return [{**dict.fromkeys(SCHEMA.names), "ds": ds, "id": i, "n": i * 10, "s": f"{tag}-{i}"} for i in ids]


class Target:
    """Drives a loader and reads the served rows back with a separate connection.

    A target class names its loader, and how SQL spells a served table (``table_sql``, with ``{table}``), the
    load-log, and a column's type (``types_sql``: ``c``, ``t`` of the columns of table ``%s`` in schema ``%s``).
    """

    name = ""
    loader = staticmethod(load_slice_postgres)
    table_sql = ""
    log_sql = ""
    types_sql = ""
    schema = ""

    def __init__(self, connect, **options) -> None:
        self.conn = connect()
        self.reader = connect()
        self.options = options

    def load(self, table, ds, schema, snapshot_id, data, **kwargs):
        return self.loader(self.conn, table, ds, schema, snapshot_id, data, **self.options, **kwargs)

    def query(self, sql: str, args=()) -> list[dict]:
        with self.reader.cursor() as cur:
            cur.execute(sql, args)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def served(self, table: str, ds: dt.date | None = None) -> list[dict]:
        where, args = ("WHERE ds = %s", (ds,)) if ds else ("", ())
        return self.query(f"SELECT * FROM {self.table_sql.format(table=table)} {where} ORDER BY ds, id", args)

    def log(self, table: str, ds: dt.date) -> dict | None:
        found = self.query(f"SELECT * FROM {self.log_sql} WHERE table_name = %s AND ds = %s", (table, ds))
        return found[0] if found else None

    def column_types(self, table: str) -> dict[str, str]:
        return {r["c"]: r["t"] for r in self.query(self.types_sql, (self.schema, table))}


class PostgresTarget(Target):
    """load_slice_postgres into the schema ``gold``."""

    name = "postgres"
    table_sql = 'gold."{table}"'
    log_sql = "gold._lakehouse_loads"
    types_sql = (
        "SELECT column_name AS c, CASE WHEN data_type = 'numeric'"
        " THEN 'numeric(' || numeric_precision || ',' || numeric_scale || ')' ELSE data_type END AS t"
        " FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
    )
    schema = "gold"

    def __init__(self, connect) -> None:
        super().__init__(connect)
        self.reader.autocommit = True

    def rows_in_flight(self, table: str) -> int:
        """Rows the running COPY has written so far (invisible to other transactions until COMMIT)."""
        found = self.query("SELECT coalesce(sum(tuples_processed), 0) AS n FROM pg_stat_progress_copy")
        return int(found[0]["n"])

    def stored(self, table: str) -> int:
        """Relations the loader keeps for the table: one partition per slice, no staging table left over."""
        found = self.query(
            "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace"
            " WHERE s.nspname = 'gold_slices' AND c.relname LIKE %s",
            (f"{table}__%",),
        )
        return int(found[0]["n"])

    @staticmethod
    def normalize(row: dict) -> dict:
        return row


class MariaDBTarget(Target):
    """load_slice_tidb on MariaDB; the served rows are the view's."""

    name = "mariadb"
    loader = staticmethod(load_slice_tidb)
    types_sql = (
        "SELECT column_name AS c, column_type AS t FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s"
    )

    def __init__(self, connect, database: str) -> None:
        super().__init__(connect, database=database)
        self.schema = database
        self.table_sql = f"`{database}`.`{{table}}`"
        self.log_sql = f"`{database}`._lakehouse_loads"

    def rows_in_flight(self, table: str) -> int:
        """Rows committed to the rows table, served or not."""
        return self.stored(table)

    def stored(self, table: str) -> int:
        """Rows the loader keeps for the table, served or not: no rows of a failed load left over."""
        return int(self.query(f"SELECT count(*) AS n FROM `{self.schema}`.`{table}__rows`")[0]["n"])

    @staticmethod
    def normalize(row: dict) -> dict:
        """DATETIME has no zone: the loader stores UTC wall-clock time."""
        return {k: v.replace(tzinfo=UTC) if isinstance(v, dt.datetime) else v for k, v in row.items()}


@pytest.fixture(params=["postgres", "mariadb"])
def target(request, pg_connect, mysql_connect, mysql_database):
    if request.param == "postgres":
        return PostgresTarget(pg_connect)
    return MariaDBTarget(mysql_connect, mysql_database)


def served_data(target, table: str, ds: dt.date | None = None) -> list[dict]:
    """Served rows without the load time, in the target's values normalised to Python's."""
    return [{k: v for k, v in target.normalize(r).items() if k != "_loaded_at"} for r in target.served(table, ds)]


def test_types_round_trip(target, table_name):
    expected = rows_for(DS_A, MIXED)

    result = target.load(table_name, DS_A, SCHEMA, 101, batches(expected))

    assert (result.rows, result.snapshot_id, result.skipped, result.ds) == (len(MIXED), 101, False, DS_A)
    assert served_data(target, table_name) == expected
    served = target.served(table_name)
    assert all(row["_loaded_at"] is not None for row in served)
    assert len({row["_loaded_at"] for row in served}) == 1
    types = target.column_types(table_name)
    if target.name == "postgres":
        assert types == {
            "ds": "date",
            "id": "bigint",
            "n": "bigint",
            "x": "double precision",
            "amount": "numeric(12,2)",
            "day": "date",
            "at": "timestamp with time zone",
            "s": "text",
            "_loaded_at": "timestamp with time zone",
        }
    else:
        assert types == {
            "ds": "date",
            "id": "bigint(20)",
            "n": "bigint(20)",
            "x": "double",
            "amount": "decimal(12,2)",
            "day": "date",
            "at": "datetime(6)",
            "s": "text",
            "_loaded_at": "datetime(6)",
        }
    log = target.log(table_name, DS_A)
    assert (log["snapshot_id"], log["rows"]) == (101, len(MIXED))


def test_schema_growth_adds_columns(target, table_name):
    old = simple_rows(DS_A, range(3), "old")
    target.load(table_name, DS_A, SCHEMA, 1, batches(old))
    grown = SCHEMA.append(pa.field("extra", pa.float64())).append(pa.field("label", pa.string()))
    new = [{**row, "extra": row["id"] / 4, "label": f"L{row['id']}"} for row in simple_rows(DS_B, range(10, 12), "new")]

    result = target.load(table_name, DS_B, grown, 2, batches(new, grown))

    assert result.rows == 2
    assert {"extra", "label"} <= set(target.column_types(table_name))
    assert served_data(target, table_name, DS_A) == [{**row, "extra": None, "label": None} for row in old]
    assert served_data(target, table_name, DS_B) == new


def test_reload_replaces_only_its_slice(target, table_name):
    a_first = simple_rows(DS_A, range(0, 5), "a1")
    b_rows = simple_rows(DS_B, range(100, 104), "b")
    a_second = simple_rows(DS_A, range(50, 52), "a2")
    target.load(table_name, DS_A, SCHEMA, 1, batches(a_first))
    target.load(table_name, DS_B, SCHEMA, 1, batches(b_rows))
    b_loaded_at = {row["_loaded_at"] for row in target.served(table_name, DS_B)}

    result = target.load(table_name, DS_A, SCHEMA, 2, batches(a_second))

    assert (result.rows, result.skipped) == (2, False)
    assert served_data(target, table_name, DS_A) == a_second
    assert served_data(target, table_name, DS_B) == b_rows
    assert {row["_loaded_at"] for row in target.served(table_name, DS_B)} == b_loaded_at
    assert target.log(table_name, DS_A)["snapshot_id"] == 2
    assert target.log(table_name, DS_B)["snapshot_id"] == 1


def test_empty_slice_empties_the_slice(target, table_name):
    target.load(table_name, DS_A, SCHEMA, 1, batches(simple_rows(DS_A, range(3), "a")))

    result = target.load(table_name, DS_A, SCHEMA, 2, iter(()))

    assert result.rows == 0
    assert target.served(table_name, DS_A) == []
    assert target.log(table_name, DS_A)["rows"] == 0


def test_failure_mid_load_keeps_the_previous_rows(target, table_name):
    old = simple_rows(DS_A, range(5), "old")
    target.load(table_name, DS_A, SCHEMA, 1, batches(old))
    old_log = target.log(table_name, DS_A)
    stored_before = target.stored(table_name)
    seen_mid_load: list[list[dict]] = []

    def failing_stream():
        # 30,000 rows: three of the TiDB loader's 10,000-row transactions, several COPY batches.
        for start in range(0, 30_000, 10_000):
            yield pa.Table.from_pylist(
                simple_rows(DS_A, range(start, start + 10_000), "new"), schema=SCHEMA
            ).to_batches()[0]
        # Wait until the database holds part of the new slice, then look at what readers see.
        deadline = time.monotonic() + 20
        while target.rows_in_flight(table_name) < stored_before + 10_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert target.rows_in_flight(table_name) >= stored_before + 10_000, "the new rows never reached the database"
        seen_mid_load.append(served_data(target, table_name, DS_A))
        raise RuntimeError("injected failure mid-stream")

    with pytest.raises(RuntimeError, match="injected failure"):
        target.load(table_name, DS_A, SCHEMA, 2, failing_stream())

    assert seen_mid_load == [old]
    assert served_data(target, table_name, DS_A) == old
    assert target.log(table_name, DS_A) == old_log
    assert target.stored(table_name) == stored_before
    # The connection is usable again, and the next load goes through.
    new = simple_rows(DS_A, range(7, 9), "new")
    assert target.load(table_name, DS_A, SCHEMA, 2, batches(new)).rows == 2
    assert served_data(target, table_name, DS_A) == new


def test_same_snapshot_twice_is_skipped(target, table_name):
    rows = simple_rows(DS_A, range(4), "a")
    target.load(table_name, DS_A, SCHEMA, 42, batches(rows))
    loaded_at = [row["_loaded_at"] for row in target.served(table_name)]
    log_before = target.log(table_name, DS_A)

    def untouched():
        raise AssertionError("a skipped load must not read its batches")
        yield  # pragma: no cover

    result = target.load(table_name, DS_A, SCHEMA, 42, untouched())

    assert (result.skipped, result.rows, result.snapshot_id) == (True, 4, 42)
    assert [row["_loaded_at"] for row in target.served(table_name)] == loaded_at
    assert target.log(table_name, DS_A) == log_before
    assert served_data(target, table_name) == rows
