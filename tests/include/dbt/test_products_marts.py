"""The products staging views and marts, built with `dbt build --select` on a throwaway PostgreSQL database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from dbt_harness import dbt_build, gold_database, query

SELECT = ["stg_product_master+", "stg_products_by_department+", "stg_product_shelf_life+", "stg_products_expiring+"]
MODELS = {
    "stg_product_master", "stg_products_by_department", "stg_product_shelf_life", "stg_products_expiring",
    "product_catalogue", "product_departments_daily", "product_shelf_life_distribution", "products_expiring_soon",
}  # fmt: skip

# The tables as the PostgreSQL loader creates them from the Iceberg schemas (include/serving/loads.postgres_type).
GOLD_DDL = """
create table gold.product_master (
    ds date, department_name text, sensor_serial text, product_name text, create_at timestamp,
    product_expire timestamp, shelf_life_days double precision, _source_file text, _loaded_at timestamptz
);
create table gold.products_by_department (
    ds date, department_name text, day date, products bigint, sensors bigint, readings bigint, _loaded_at timestamptz
);
create table gold.product_shelf_life (
    ds date, shelf_life_days integer, readings bigint, products bigint, avg_shelf_life_days double precision,
    _loaded_at timestamptz
);
create table gold.products_expiring (
    ds date, department_name text, within_days integer, as_of timestamp, products bigint, readings bigint,
    _loaded_at timestamptz
);
"""
D19, D20 = date(2026, 11, 19), date(2026, 11, 20)
LOADED = datetime(2026, 11, 21, 1, tzinfo=UTC)
H0, H1 = datetime(2024, 1, 1, 0), datetime(2024, 1, 1, 1)
FILE0, FILE1 = (
    "s3a://landing/products/2024-01-01 00-00-00.parquet",
    "s3a://landing/products/2024-01-01 01-00-00.parquet",
)


def reading(ds, serial, product, created, shelf_days, source=FILE0, department="Dairy North"):
    return (ds, department, serial, product, created, created + timedelta(days=shelf_days), shelf_days, source)


# FILE1 was corrected in the run of the 20th; the slice of the 19th is not reloaded yet, so it still holds the
# reading's first version.
MASTER_ROWS = [
    reading(D19, "SN-1", "Whole Milk 1L", H0, 88.0),
    reading(D19, "SN-1", "Butter 250g", H0, 87.5),
    reading(D19, "SN-2", "Whole Milk 1L", H0, 89.0),
    reading(D19, "SN-1", "Whole Milk 1L", H1, 88.0, FILE1),
    reading(D20, "SN-1", "Whole Milk 1L", H1, 89.0, FILE1),
    reading(D19, "SN-7", "Baguette", H0, 3.0, department="Bakery East"),
]
BY_DEPARTMENT_ROWS = [
    (D19, "Dairy North", date(2024, 1, 1), 2, 2, 4),
    (D20, "Dairy North", date(2024, 1, 1), 2, 2, 4),
    (D20, "Bakery East", date(2024, 1, 1), 1, 1, 1),
]
SHELF_ROWS = [(D19, 88, 2, 1, 88.0), (D20, 88, 1, 1, 88.0), (D20, 89, 2, 1, 89.0)]
EXPIRING_ROWS = [
    (D19, "Dairy North", 90, H1, 2, 3),
    (D20, "Dairy North", 90, H1, 2, 3),
    (D20, "Dairy North", 7, H1, 0, 0),
]


def database(with_products: bool):
    """A throwaway database with the products gold tables (and rows), or with an empty schema `gold`."""
    if not with_products:
        return gold_database(prefix="dbt_products")
    rows = {
        "product_master": [(*row, LOADED) for row in MASTER_ROWS],
        "products_by_department": [(*row, LOADED) for row in BY_DEPARTMENT_ROWS],
        "product_shelf_life": [(*row, LOADED) for row in SHELF_ROWS],
        "products_expiring": [(*row, LOADED) for row in EXPIRING_ROWS],
    }
    return gold_database(GOLD_DDL, rows, prefix="dbt_products")


def build(name: str, work: Path) -> dict[str, str]:
    proc, statuses = dbt_build(name, work, SELECT)
    assert proc.returncode == 0, f"dbt build failed:\n{proc.stdout}\n{proc.stderr}"
    return statuses


def test_marts_keep_the_newest_slice_of_each_reading_and_the_latest_figures(tmp_path):
    with database(with_products=True) as name:
        statuses = build(name, tmp_path)
        assert {uid.split(".")[-1] for uid in statuses if uid.startswith("model.")} == MODELS
        assert set(statuses.values()) <= {"success", "pass"}
        catalogue = query(
            name,
            "select department_name, product_name, sensors, readings, first_seen_at, last_seen_at,"
            " latest_expires_at, avg_shelf_life_days from marts.product_catalogue",
        )
        departments = query(name, "select department_name, day, products, ds from marts.product_departments_daily")
        shelf = query(name, "select shelf_life_days, readings, ds from marts.product_shelf_life_distribution")
        expiring = query(name, "select department_name, within_days, products, ds from marts.products_expiring_soon")
    # Milk's H1 reading counts once, in its corrected version (89 days); Milk's readings: SN-1 H0, SN-2 H0, SN-1 H1.
    assert sorted(catalogue) == [
        ("Bakery East", "Baguette", 1, 1, H0, H0, H0 + timedelta(days=3), 3.0),
        ("Dairy North", "Butter 250g", 1, 1, H0, H0, H0 + timedelta(days=87.5), 87.5),
        ("Dairy North", "Whole Milk 1L", 2, 3, H0, H1, H1 + timedelta(days=89), (88.0 + 89.0 + 89.0) / 3),
    ]
    assert sorted(departments) == [("Bakery East", date(2024, 1, 1), 1, D20), ("Dairy North", date(2024, 1, 1), 2, D20)]
    assert sorted(shelf) == [(88, 1, D20), (89, 2, D20)]
    assert sorted(expiring) == [("Dairy North", 7, 0, D20), ("Dairy North", 90, 2, D20)]


def test_marts_build_empty_before_the_first_products_load(tmp_path):
    with database(with_products=False) as name:
        statuses = build(name, tmp_path)
        assert {uid.split(".")[-1] for uid in statuses if uid.startswith("model.")} == MODELS
        for mart in ("product_catalogue", "product_departments_daily", "products_expiring_soon"):
            assert query(name, f"select count(*) from marts.{mart}") == [(0,)]


def test_every_product_catalogue_card_runs_on_the_marts(tmp_path):
    from include.metabase.specs import load_dashboards

    (dashboard,) = [d for d in load_dashboards() if d.name == "Product catalogue"]
    with database(with_products=True) as name:
        build(name, tmp_path)
        results = {card.name: query(name, card.rendered_sql()) for card in dashboard.cards}
    assert results["Products in the catalogue"] == [(3,)]
    assert results["Product readings"] == [(5,)]
    assert results["Products expiring within 7 days"] == [(0,)]
    assert results["Shelf life distribution"] == [(88, 1), (89, 2)]
    assert all(results.values()), [card for card, rows in results.items() if not rows]
