"""Both serving targets load the one snapshot a serve run pinned for a slice, whatever is committed meanwhile."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pyarrow as pa
import pytest

from include.serving.tasks import CURRENT, pin_snapshots, serve_postgres, serve_tidb

DS = dt.date(2026, 11, 20)
SCHEMA = pa.schema([("ds", pa.date32()), ("lang", pa.string()), ("tweets", pa.int64())])


@pytest.fixture
def lake(tmp_path):
    """A PyIceberg catalog of its own (SQLite and a local warehouse) with a ``gold`` namespace."""
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("test", uri=f"sqlite:///{tmp_path}/catalog.db", warehouse=f"file://{tmp_path}/warehouse")
    catalog.create_namespace("gold")
    return catalog


def commit(table, rows: list[tuple[str, int]]) -> int:
    """Append one snapshot of ``rows`` to the DS slice (as a Spark run of the domain would); returns its id."""
    data = {"ds": [DS] * len(rows), "lang": [r[0] for r in rows], "tweets": [r[1] for r in rows]}
    table.append(pa.Table.from_pydict(data, schema=SCHEMA))
    return table.current_snapshot().snapshot_id


def test_the_source_and_the_tasks_agree_on_current():
    from include.serving import source

    assert CURRENT == source.CURRENT


def test_each_table_is_pinned_once_to_its_current_snapshot():
    snapshots = {"gold.a": iter([11, 12]), "gold.b": iter([21, 22])}
    catalog = SimpleNamespace(
        load_table=lambda name: SimpleNamespace(
            current_snapshot=lambda: SimpleNamespace(snapshot_id=next(snapshots[name]))
        )
    )
    slices = [
        {"table": "a", "ds": "2026-11-20"},
        {"table": "b", "ds": "2026-11-20"},
        {"table": "a", "ds": "2026-11-21"},
    ]

    assert pin_snapshots(slices, catalog) == [
        {"table": "a", "ds": "2026-11-20", "snapshot_id": 11},
        {"table": "b", "ds": "2026-11-20", "snapshot_id": 21},
        {"table": "a", "ds": "2026-11-21", "snapshot_id": 11},
    ]


@pytest.mark.integration
def test_a_snapshot_committed_between_the_two_loads_does_not_make_them_differ(
    lake, airflow_connections, pg_connect, mysql_connect, table_name
):
    table = lake.create_table(f"gold.{table_name}", schema=SCHEMA)
    first = commit(table, [("en", 3), ("fr", 1)])
    (gold_slice,) = pin_snapshots([{"table": table_name, "ds": DS.isoformat()}], lake)

    on_postgres = serve_postgres(**gold_slice, catalog=lake)
    later = commit(table, [("de", 7)])  # another run's gold job commits while this serve run is between its loads
    on_tidb = serve_tidb(**gold_slice, catalog=lake)

    assert later != first and on_postgres["snapshot_id"] == on_tidb["snapshot_id"] == first
    pg = pg_connect()
    pg.autocommit = True  # a reader's open transaction would hold up the next load's swap
    with pg.cursor() as cur:
        cur.execute(f"SELECT lang, tweets FROM gold.{table_name} ORDER BY lang")
        assert cur.fetchall() == [("en", 3), ("fr", 1)]
    with mysql_connect().cursor() as cur:
        cur.execute(f"SELECT lang, tweets FROM `{airflow_connections.tidb}`.`{table_name}` ORDER BY lang")
        assert list(cur.fetchall()) == [("en", 3), ("fr", 1)]
    # The next serve run pins the later snapshot, and both targets move to it.
    (next_slice,) = pin_snapshots([{"table": table_name, "ds": DS.isoformat()}], lake)
    results = [serve(**next_slice, catalog=lake) for serve in (serve_postgres, serve_tidb)]
    assert [(r["snapshot_id"], r["rows"], r["skipped"]) for r in results] == [(later, 3, False)] * 2


@pytest.mark.integration
def test_a_slice_pinned_before_its_table_had_a_snapshot_stays_empty_in_both(lake, airflow_connections, table_name):
    table = lake.create_table(f"gold.{table_name}", schema=SCHEMA)
    (gold_slice,) = pin_snapshots([{"table": table_name, "ds": DS.isoformat()}], lake)
    commit(table, [("en", 3)])

    results = [serve(**gold_slice, catalog=lake) for serve in (serve_postgres, serve_tidb)]

    assert gold_slice["snapshot_id"] is None
    assert [(r["snapshot_id"], r["rows"]) for r in results] == [(None, 0)] * 2
