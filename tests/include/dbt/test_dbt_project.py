"""The dbt project built and tested on a throwaway PostgreSQL database, and its Cosmos task group from the manifest."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from dbt_harness import PG_DSN, built_project, dbt_build, failed_nodes, gold_database, outcome, query

GOLD_DDL = """
create table gold.tweets_per_hour (ds date, hour_start timestamptz, tweets bigint, _loaded_at timestamptz);
create table gold.tweets_per_day (ds date, day date, tweets bigint, _loaded_at timestamptz);
create table gold.tweets_by_language (ds date, lang text, tweets bigint, _loaded_at timestamptz);
create table gold._lakehouse_loads (
    table_name text, ds date, snapshot_id bigint, rows bigint, duration_s double precision, loaded_at timestamptz
);
"""

D19, D20 = date(2026, 11, 19), date(2026, 11, 20)
LOADED_19 = datetime(2026, 11, 20, 1, 5, tzinfo=UTC)
LOADED_20 = datetime(2026, 11, 21, 1, 5, tzinfo=UTC)


def utc(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


# Two ds slices that both hold tweets of 2026-11-20 00:00 UTC (a late tweet in the 19th's slice), as the gold jobs
# would write them: each slice's hours add up to its days.
GOLD_ROWS = {
    "tweets_per_hour": [
        (D19, utc(19, 22), 4, LOADED_19),
        (D19, utc(19, 23), 6, LOADED_19),
        (D19, utc(20, 0), 2, LOADED_19),
        (D20, "2026-11-20 02:00:00+02", 5, LOADED_20),  # the same instant as 00:00 UTC, written with an offset
        (D20, utc(20, 1), 3, LOADED_20),
    ],
    "tweets_per_day": [
        (D19, D19, 10, LOADED_19),
        (D19, D20, 2, LOADED_19),
        (D20, D20, 8, LOADED_20),
    ],
    "tweets_by_language": [
        (D19, "en", 7, LOADED_19),
        (D19, "es", 3, LOADED_19),
        (D19, "und", 2, LOADED_19),
        (D20, "en", 5, LOADED_20),
        (D20, "fr", 3, LOADED_20),
    ],
    "_lakehouse_loads": [
        ("tweets_per_hour", D19, 1001, 3, 0.25, LOADED_19),
        ("tweets_per_day", D19, 1002, 2, 0.5, LOADED_19),
        ("tweets_by_language", D19, 1003, 3, 0.125, LOADED_19),
        ("tweets_per_hour", D20, 2001, 2, 1.5, LOADED_20),
    ],
}

# Expected marts, worked out by hand from GOLD_ROWS.
EXPECTED_HOURLY = [
    (utc(19, 22), 4, D19),
    (utc(19, 23), 6, D19),
    (utc(20, 0), 2 + 5, D20),  # both slices; ds is the latest of them
    (utc(20, 1), 3, D20),
]
EXPECTED_DAILY = [(D19, 10), (D20, 2 + 8)]
EXPECTED_LANGUAGES = [  # 20 tweets in all
    ("en", 12, Decimal("0.6")),
    ("es", 3, Decimal("0.15")),
    ("fr", 3, Decimal("0.15")),
    ("und", 2, Decimal("0.1")),
]
EXPECTED_LOADS = [
    ("tweets_by_language", D19, 3, 1003, 0.125, LOADED_19),
    ("tweets_per_day", D19, 2, 1002, 0.5, LOADED_19),
    ("tweets_per_hour", D19, 3, 1001, 0.25, LOADED_19),
    ("tweets_per_hour", D20, 2, 2001, 1.5, LOADED_20),
]
# The Metabase questions depend on these names, columns and types.
EXPECTED_MART_COLUMNS = {
    "tweets_hourly": [("hour_start", "timestamp with time zone"), ("tweets", "bigint"), ("ds", "date")],
    "tweets_daily": [("day", "date"), ("tweets", "bigint")],
    "tweet_languages": [("lang", "text"), ("tweets", "bigint"), ("share", "numeric")],
    "pipeline_loads": [
        ("table_name", "text"),
        ("ds", "date"),
        ("rows", "bigint"),
        ("snapshot_id", "bigint"),
        ("duration_s", "double precision"),
        ("loaded_at", "timestamp with time zone"),
    ],
}
# Every model file of the project; the gold tables of other domains are absent from GOLD_ROWS, so their staging
# views read the empty stand-in of the `gold_source` macro and their marts build empty.
ROOT = Path(__file__).resolve().parents[3]
MODELS = {p.stem for p in (ROOT / "include" / "dbt" / "models").rglob("*.sql")}
# Marts kept as views (every trip: a table would copy the largest table on each run; see the model).
MART_VIEWS = {"trip_facts"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    """The project built once on GOLD_ROWS: (database, node statuses)."""
    with built_project(
        tmp_path_factory.mktemp("dbt"), GOLD_DDL, GOLD_ROWS, extensions=("postgis",), threads=4
    ) as built:
        yield built


def test_build_runs_every_model_and_test(built):
    _, statuses = built
    models, tests = outcome(statuses)
    assert models == MODELS == {uid.split(".")[-1] for uid in statuses if uid.startswith("model.")}
    assert len(tests) >= 40
    assert set(tests.values()) == {"pass"}
    assert "test.lakehouse.assert_language_shares_sum_to_one" in tests
    assert "test.lakehouse.assert_hours_add_up_to_days" in tests


def test_schemas_are_exactly_staging_and_marts(built):
    database, _ = built
    relations = query(
        database,
        "SELECT table_schema, table_name, table_type FROM information_schema.tables "
        "WHERE table_schema NOT IN ('gold', 'pg_catalog', 'information_schema')"
        # PostGIS's own catalogue (the trips cards need the extension).
        " AND NOT (table_schema = 'public' AND table_name IN ('geography_columns', 'geometry_columns',"
        " 'spatial_ref_sys'))",
    )
    assert sorted(relations) == sorted(
        [("staging", m, "VIEW") for m in MODELS if m.startswith("stg_")]
        + [("marts", m, "VIEW" if m in MART_VIEWS else "BASE TABLE") for m in MODELS if not m.startswith("stg_")]
    )


def test_mart_columns_and_types(built):
    database, _ = built
    for mart, columns in EXPECTED_MART_COLUMNS.items():
        found = query(
            database,
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = 'marts' AND table_name = '{mart}' ORDER BY ordinal_position",
        )
        assert found == columns, mart


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        pytest.param(
            "SELECT hour_start, tweets, ds FROM marts.tweets_hourly ORDER BY hour_start",
            EXPECTED_HOURLY,
            id="hourly-sums-slices-sharing-an-hour",
        ),
        pytest.param("SELECT day, tweets FROM marts.tweets_daily ORDER BY day", EXPECTED_DAILY, id="daily"),
        pytest.param(
            "SELECT lang, tweets, share FROM marts.tweet_languages ORDER BY lang", EXPECTED_LANGUAGES, id="languages"
        ),
    ],
)
def test_tweets_marts(built, sql, expected):
    assert query(built[0], sql) == expected


def test_pipeline_loads(built):
    database, _ = built
    rows = query(
        database,
        "SELECT table_name, ds, rows, snapshot_id, duration_s, loaded_at FROM marts.pipeline_loads "
        "ORDER BY ds, table_name",
    )
    assert rows == EXPECTED_LOADS


def test_tests_catch_inconsistent_gold(tmp_path):
    """A day that disagrees with its hours and a duplicated language row fail exactly the tests meant for them."""
    broken = {
        **GOLD_ROWS,
        "tweets_per_day": [(D19, D19, 11, LOADED_19), *GOLD_ROWS["tweets_per_day"][1:]],
        "tweets_by_language": [*GOLD_ROWS["tweets_by_language"], (D20, "fr", 1, LOADED_20)],
    }
    with gold_database(GOLD_DDL, broken, extensions=("postgis",)) as database:
        proc, statuses = dbt_build(database, tmp_path, threads=4)
    assert proc.returncode != 0
    assert failed_nodes(statuses) == {
        "assert_hours_add_up_to_days",
        "unique_combination_stg_tweets_by_language_ds__lang",
    }
    # dbt build skips what depends on a failed test, so the bad languages never reach the mart.
    assert statuses["model.lakehouse.tweet_languages"] == "skipped"


# --- Cosmos ----------------------------------------------------------------------------------------------------------


def test_task_group_renders_from_the_manifest_without_running_dbt(monkeypatch, tmp_path):
    import importlib.util

    import cosmos.dbt.graph
    from cosmos import LoadMode

    from include import cosmos_config

    real_popen = subprocess.Popen

    def no_dbt(*args, **kwargs):
        raise AssertionError(f"dbt was invoked while building the DAG: {args}")

    def popen_without_dbt(args, *rest, **kwargs):
        if "dbt" in str(args):
            no_dbt(args)
        return real_popen(args, *rest, **kwargs)

    # Rendering must come from the manifest alone: any dbt call, or another way of loading the project, fails.
    monkeypatch.setenv("DBT_EXECUTABLE", str(tmp_path / "no-such-dbt"))
    monkeypatch.setattr(cosmos.dbt.graph, "Popen", popen_without_dbt)
    monkeypatch.setattr(subprocess, "Popen", popen_without_dbt)
    for loader in ("load_via_dbt_ls", "load_via_dbt_ls_file", "load_via_dbt_ls_cache", "load_via_custom_parser"):
        monkeypatch.setattr(cosmos.dbt.graph.DbtGraph, loader, no_dbt)

    assert cosmos_config.manifest_path().is_file(), "no manifest: run devtools/dbt_setup.sh first"
    # The serve DAG itself, built from its file (as the scheduler parses it) with the patches above in place.
    spec = importlib.util.spec_from_file_location("serve_dag_under_test", ROOT / "dags" / "serve.py")
    serve_dag = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(serve_dag)
    dag = serve_dag.serve()

    assert dag.task_group_dict["dbt"].dbt_graph.load_method == LoadMode.DBT_MANIFEST
    # One `dbt build` per model (the model, then its own tests, in one dbt process).
    expected = {f"dbt.{model}_model_build" for model in MODELS}
    # A test reading two models runs on its own, after both, and is left out of both builds.
    expected.add("dbt.assert_hours_add_up_to_days_test")
    dbt_tasks = {t for t in dag.task_ids if t.startswith("dbt.")}
    assert expected <= dbt_tasks
    assert all(t.endswith("_test") for t in dbt_tasks - expected), dbt_tasks - expected
    assert dag.get_task("dbt.assert_hours_add_up_to_days_test").upstream_task_ids == {
        "dbt.tweets_hourly_model_build",
        "dbt.tweets_daily_model_build",
    }
    run = dag.get_task("dbt.tweets_hourly_model_build")
    assert run.upstream_task_ids == {"dbt.stg_tweets_per_hour_model_build"}
    assert run.base_cmd == ["build"] and run.select == "fqn:lakehouse.marts.tweets_hourly"
    assert run.exclude == "assert_hours_add_up_to_days"
    assert run.dbt_executable_path == str(tmp_path / "no-such-dbt")
    assert run.emit_datasets is False


def test_profile_is_mapped_from_the_analytics_connection(monkeypatch):
    from include import cosmos_config

    connection = {
        "conn_type": "postgres",
        "host": "analytics-db",
        "port": 5433,
        "login": "analyst",
        "password": "from-the-connection",
        "schema": "analytics",
    }
    monkeypatch.setenv("AIRFLOW_CONN_ANALYTICS_POSTGRES", json.dumps(connection))
    mapping = cosmos_config.profile_config().profile_mapping

    profile = mapping.profile
    assert {k: profile[k] for k in ("type", "host", "port", "user", "dbname", "schema")} == {
        "type": "postgres",
        "host": "analytics-db",
        "port": 5433,
        "user": "analyst",
        "dbname": "analytics",
        "schema": "gold",
    }
    # The password reaches dbt through the environment, never the profiles.yml Cosmos writes.
    assert "from-the-connection" not in json.dumps(profile)
    assert "from-the-connection" in mapping.env_vars.values()


def test_execution_defaults_to_the_image_dbt_venv(monkeypatch):
    from include import cosmos_config

    monkeypatch.delenv("DBT_EXECUTABLE", raising=False)
    assert cosmos_config.execution_config().dbt_executable_path == "/usr/local/airflow/dbt_venv/bin/dbt"


def test_every_dashboard_card_runs_on_the_built_marts(built):
    """The Metabase cards' SQL (template tags at their defaults) runs on the marts dbt really builds, and charts and
    maps only name columns it returns; the gold tables of users and trips are absent, so their marts are empty."""
    import psycopg2

    from include.metabase.specs import load_dashboards

    database, _ = built
    conn = psycopg2.connect(PG_DSN, dbname=database)
    try:
        for dashboard in load_dashboards():
            for card in dashboard.cards:
                with conn.cursor() as cur:
                    cur.execute(card.rendered_sql())
                    columns = {d.name for d in cur.description}
                conn.rollback()
                settings = card.visualization_settings
                for key in ("graph.dimensions", "graph.metrics", "pie.dimension", "pie.metric",
                            "map.latitude_column", "map.longitude_column"):  # fmt: skip
                    wanted = settings.get(key, [])
                    wanted = {wanted} if isinstance(wanted, str) else set(wanted)
                    assert wanted <= columns, f"{dashboard.name} / {card.name}: {key} {wanted} not among {columns}"
    finally:
        conn.close()
