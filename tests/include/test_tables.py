"""The table declarations (spark/lakehouse_jobs/tables.toml): what they say agrees with the Spark schemas, and every
Airflow-side and API consumer reads them rather than a list of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The gold tables' Spark schemas, named independently of the declaration (the jobs' own constants).
SPARK_SCHEMAS = {
    "tweets_per_hour": ("tweets", "PER_HOUR_SCHEMA"),
    "tweets_per_day": ("tweets", "PER_DAY_SCHEMA"),
    "tweets_by_language": ("tweets", "BY_LANGUAGE_SCHEMA"),
    "tweets_by_country": ("tweets", "BY_COUNTRY_SCHEMA"),
    "top_countries": ("rentals", "TOP_COUNTRIES_SCHEMA"),
    "films_per_category": ("rentals", "FILMS_PER_CATEGORY_SCHEMA"),
    "product_master": ("products", "MASTER_SCHEMA"),
    "products_by_department": ("products", "BY_DEPARTMENT_SCHEMA"),
    "product_shelf_life": ("products", "SHELF_LIFE_SCHEMA"),
    "products_expiring": ("products", "EXPIRING_SCHEMA"),
    "users": ("users", "USERS_SCHEMA"),
    "user_statistics": ("users", "STATISTICS_SCHEMA"),
    "trips": ("trips", "GOLD_TRIPS_SCHEMA"),
    "trip_origin_cells": ("trips", "GOLD_CELLS_SCHEMA"),
    "trip_groups": ("trips", "GOLD_GROUPS_SCHEMA"),
    "trips_weekly": ("trips", "GOLD_WEEKLY_SCHEMA"),
    "pipeline_runs": ("ops", "PIPELINE_RUNS_SCHEMA"),
}


def _kind(data_type) -> str:
    from pyspark.sql import types as T

    kinds = {
        T.StringType: "str",
        T.LongType: "int",
        T.IntegerType: "int",
        T.DoubleType: "float",
        T.DecimalType: "float",
        T.DateType: "date",
        T.TimestampType: "datetime",
        T.TimestampNTZType: "datetime",
        T.BooleanType: "bool",
    }
    return kinds[type(data_type)]


def test_every_gold_table_is_declared_once():
    from include.tables import DECLARED

    assert sorted(t.name for t in DECLARED.gold) == sorted(SPARK_SCHEMAS)


@pytest.mark.parametrize("table", sorted(SPARK_SCHEMAS))
def test_declared_columns_are_the_spark_schema(table):
    """Names, order and types as the gold job writes them; a column Spark may leave null is declared nullable."""
    import importlib

    from include.tables import DECLARED

    module, name = SPARK_SCHEMAS[table]
    fields = getattr(importlib.import_module(f"lakehouse_jobs.{module}"), name).fields
    declared = DECLARED.table(table)
    assert [(c.name, c.type) for c in declared.columns] == [(f.name, _kind(f.dataType)) for f in fields]
    for column, field in zip(declared.columns, fields, strict=True):
        assert column.nullable or not field.nullable, f"{table}.{column.name} may be null in Spark"


def test_assets_and_outlets_come_from_the_declaration():
    from include.assets import GOLD_TABLES, LAYER_WRITES, gold_assets
    from include.tables import DECLARED

    assert [t for tables in GOLD_TABLES.values() for t in tables] == sorted(
        (t.qualified for t in DECLARED.gold), key=lambda t: list(DECLARED.domains).index(DECLARED.table(t[5:]).domain)
    )
    for domain, writes in LAYER_WRITES.items():
        gold = [t.qualified for t in DECLARED.gold_tables(domain)]
        assert list(writes["gold"]) == [*gold, *DECLARED.domains[domain].gold_also]
        assert writes["bronze"] and writes["raw"]
    assert {a.name for a in gold_assets()} == {t.qualified for t in DECLARED.gold}
    # Run summaries are written by every domain's bronze job.
    assert all("gold.pipeline_runs" in writes["bronze"] for writes in LAYER_WRITES.values())


def test_api_and_serving_read_the_declaration():
    from include.api.datasets import REGISTRY
    from include.serving.table_specs import serving_extras
    from include.tables import DECLARED

    assert [d.name for d in REGISTRY] == [t.name for t in DECLARED.gold if t.api is not None]
    for dataset in REGISTRY:
        table = DECLARED.table(dataset.name)
        assert (dataset.domain, dataset.description, dataset.snapshot) == (
            table.domain,
            table.description,
            table.snapshot,
        )
    trips = serving_extras("trips")
    assert [p.name for p in trips.points] == ["origin_geom", "destination_geom"]
    assert [i.name for i in trips.indexes] == ["origin_fine_cell_date"]
    cells = serving_extras("trip_origin_cells")
    assert ([p.name for p in cells.points], [i.name for i in cells.indexes]) == (
        [],
        ["level_cell_date", "level_region_date"],
    )
    assert serving_extras("tweets_per_hour") == serving_extras("not_a_table")


def test_the_reader_needs_neither_airflow_nor_pyspark_nor_an_installed_package():
    """As in the Airflow image (lakehouse_jobs not installed): no site-packages, spark/ found by path."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from include.tables import DECLARED, declarations; "
        "assert not {'airflow', 'pyspark'} & set(sys.modules), sorted(sys.modules); "
        "print(declarations.__file__, len(DECLARED.gold))"
    )
    proc = subprocess.run([sys.executable, "-S", "-c", code, str(ROOT)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    path, count = proc.stdout.split()
    assert Path(path) == ROOT / "spark" / "lakehouse_jobs" / "declarations.py"
    assert int(count) == len(SPARK_SCHEMAS)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('domain = "trips"\n', 'domain = "nope"\n'), "domain 'nope' is not declared"),
        (('key = ["trip_id"]', 'key = ["nope"]'), "key column 'nope' is not declared"),
        (('latitude = "origin_latitude" }', 'latitude = "nope" }'), "point 'origin_geom'"),
        (('columns = ["origin_fine_x", "origin_fine_y"', 'columns = ["nope", "origin_fine_y"'), "column 'nope'"),
    ],
)
def test_an_inconsistent_declaration_is_refused(tmp_path, edit, message):
    from include.tables import declarations

    text = declarations.DECLARATIONS.read_text()
    assert edit[0] in text
    (path := tmp_path / "tables.toml").write_text(text.replace(*edit, 1))
    with pytest.raises(ValueError, match=message):
        declarations.load(path)
