"""The products staging views and marts, built with `dbt build --select` on a throwaway PostgreSQL database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from dbt_harness import dbt_build, gold_database, query

SELECT = ["stg_product_master+", "stg_products_by_category+"]
MODELS = {"stg_product_master", "stg_products_by_category", "product_catalogue", "product_categories"}

# The tables as the PostgreSQL loader creates them from the Iceberg schemas (include/serving/loads.postgres_type).
GOLD_DDL = """
create table gold.product_master (
    ds date, product_id text, name text, category text, brand text, price numeric(12, 2), currency text,
    updated_at timestamptz, color text, weight_kg double precision, stock_quantity bigint, ean text,
    _source_file text, _row_number bigint, first_ds date, _loaded_at timestamptz
);
create table gold.products_by_category (
    ds date, category text, currency text, products bigint, brands bigint, avg_price numeric(12, 2),
    min_price numeric(12, 2), max_price numeric(12, 2), changed_products bigint, last_updated_at timestamptz,
    _loaded_at timestamptz
);
"""
D19, D20 = date(2026, 11, 19), date(2026, 11, 20)
LOADED = datetime(2026, 11, 21, 1, tzinfo=UTC)
T8, T9 = datetime(2026, 11, 18, 8, tzinfo=UTC), datetime(2026, 11, 18, 9, tzinfo=UTC)
FILE = "s3a://landing/products/a.parquet"

# P1 changed in the run of the 20th; the slice of the 19th is not reloaded yet, so it still holds P1's old version.
MASTER_ROWS = [
    (D19, "P1", "Kettle", "Home & Kitchen", "Acme", Decimal("20.00"), "EUR", T8, "red", 1.2, 5, None, FILE, 1, D19),
    (D19, "P2", "Novel", "Books", "Orbis", Decimal("9.99"), "EUR", T8, None, None, None, None, FILE, 2, D19),
    (D20, "P1", "Kettle", "Home & Kitchen", "Acme", Decimal("18.50"), "EUR", T9, "red", 1.2, 7, "40", FILE, 9, D19),
]
CATEGORY_ROWS = [
    (D19, "Books", "EUR", 1, 1, Decimal("9.99"), Decimal("9.99"), Decimal("9.99"), 1, T8),
    (D19, "Home & Kitchen", "EUR", 1, 1, Decimal("20.00"), Decimal("20.00"), Decimal("20.00"), 1, T8),
    (D20, "Books", "EUR", 1, 1, Decimal("9.99"), Decimal("9.99"), Decimal("9.99"), 0, T8),
    (D20, "Home & Kitchen", "EUR", 1, 1, Decimal("18.50"), Decimal("18.50"), Decimal("18.50"), 1, T9),
]


def database(with_products: bool):
    """A throwaway database with the products gold tables (and rows), or with an empty schema `gold`."""
    if not with_products:
        return gold_database(prefix="dbt_products")
    rows = {
        "product_master": [(*row, LOADED) for row in MASTER_ROWS],
        "products_by_category": [(*row, LOADED) for row in CATEGORY_ROWS],
    }
    return gold_database(GOLD_DDL, rows, prefix="dbt_products")


def build(name: str, work: Path) -> dict[str, str]:
    proc, statuses = dbt_build(name, work, SELECT)
    assert proc.returncode == 0, f"dbt build failed:\n{proc.stdout}\n{proc.stderr}"
    return statuses


def test_marts_keep_the_newest_slice_of_each_product(tmp_path):
    with database(with_products=True) as name:
        statuses = build(name, tmp_path)
        assert {uid.split(".")[-1] for uid in statuses if uid.startswith("model.")} == MODELS
        assert set(statuses.values()) <= {"success", "pass"}
        catalogue = query(
            name, "select product_id, price, stock_quantity, changed_ds, first_ds from marts.product_catalogue"
        )
        categories = query(
            name, "select category, currency, products, avg_price, changed_products, ds from marts.product_categories"
        )
    assert sorted(catalogue) == [("P1", Decimal("18.50"), 7, D20, D19), ("P2", Decimal("9.99"), None, D19, D19)]
    assert sorted(categories) == [
        ("Books", "EUR", 1, Decimal("9.99"), 0, D20),
        ("Home & Kitchen", "EUR", 1, Decimal("18.50"), 1, D20),
    ]


def test_marts_build_empty_before_the_first_products_load(tmp_path):
    with database(with_products=False) as name:
        statuses = build(name, tmp_path)
        assert {uid.split(".")[-1] for uid in statuses if uid.startswith("model.")} == MODELS
        assert query(name, "select count(*) from marts.product_catalogue") == [(0,)]
        assert query(name, "select count(*) from marts.product_categories") == [(0,)]
