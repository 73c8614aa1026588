"""Which gold slices a serve run loads: from the triggering asset events, or from the manual params."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from include.assets import iceberg_asset
from include.serving.tasks import plan_slices


def event(ds: str | None) -> SimpleNamespace:
    return SimpleNamespace(extra={"ds": ds} if ds else {})


def test_slices_come_from_the_gold_asset_events():
    events = {
        iceberg_asset("gold.tweets_per_day"): [event("2026-11-20"), event("2026-11-21"), event("2026-11-20")],
        iceberg_asset("gold.tweets_by_language"): [event("2026-11-20")],
        iceberg_asset("bronze.tweets"): [event("2026-11-20")],  # not a gold table: ignored
        iceberg_asset("gold.tweets_per_hour"): [event(None)],  # an event without ds: nothing to serve
    }
    assert plan_slices(events) == [
        {"table": "tweets_by_language", "ds": "2026-11-20"},
        {"table": "tweets_per_day", "ds": "2026-11-20"},
        {"table": "tweets_per_day", "ds": "2026-11-21"},
    ]


def test_manual_run_serves_every_gold_table_or_the_chosen_ones():
    tweets = ["tweets_by_language", "tweets_per_day", "tweets_per_hour"]
    assert plan_slices({}, "2026-11-20", available=set(tweets)) == [{"table": t, "ds": "2026-11-20"} for t in tweets]
    assert plan_slices(None, "2026-11-20", ["tweets_per_day"]) == [{"table": "tweets_per_day", "ds": "2026-11-20"}]


def test_manual_run_skips_gold_tables_not_yet_in_the_lake():
    available = {"tweets_per_day"}
    assert plan_slices({}, "2026-11-20", available=available) == [{"table": "tweets_per_day", "ds": "2026-11-20"}]


@pytest.mark.parametrize(
    ("ds", "tables", "message"),
    [
        (None, None, "nothing to serve"),
        ("2026-13-01", None, "month must be in 1..12"),
        ("2026-11-20", ["no_such_table"], "unknown gold tables"),
    ],
)
def test_bad_requests_are_refused_clearly(ds, tables, message):
    with pytest.raises(ValueError, match=message):
        plan_slices({}, ds, tables)


def test_serving_extras_are_declared_for_declared_gold_tables_only():
    from include.serving.table_specs import EXTRAS
    from include.serving.tasks import gold_tables

    assert set(EXTRAS) <= set(gold_tables())


@pytest.mark.integration
def test_marts_are_built_again_only_after_a_load_wrote(pg_connect, table_name):
    import datetime as dt

    import pyarrow as pa

    from include.serving.postgres import load_slice_postgres
    from include.serving.tasks import marts_to_build, record_marts_built

    conn = pg_connect()
    schema = pa.schema([("ds", pa.date32()), ("n", pa.int64())])

    def load(snapshot_id: int, rows: int):
        batch = pa.record_batch([pa.array([dt.date(2026, 11, 20)] * rows), pa.array(range(rows))], schema=schema)
        return load_slice_postgres(conn, table_name, dt.date(2026, 11, 20), schema, snapshot_id, [batch])

    load(1, 3)
    first = marts_to_build(conn=conn)
    assert first  # never built: build
    record_marts_built(first, conn=conn)
    assert marts_to_build(conn=conn) is None  # built from this load-log
    assert load(1, 3).skipped and marts_to_build(conn=conn) is None  # a load that skipped changes nothing
    load(2, 4)
    second = marts_to_build(conn=conn)
    assert second and second != first  # a load that wrote: build again
    # A build that failed records nothing: the next run still builds.
    assert marts_to_build(conn=conn) == second
