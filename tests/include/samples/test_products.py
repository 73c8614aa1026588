"""Tests for the product Parquet generator: determinism, schema drift, defects and versions, checked with pyarrow."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.samples.products import ProductOptions, generate_product_files, main, upload_files

FILES, ROWS = 6, 2_000


def digest(paths: list[Path]) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


@pytest.fixture(scope="module")
def drops(tmp_path_factory) -> list[Path]:
    return generate_product_files(tmp_path_factory.mktemp("products"), FILES, ROWS, seed=5)


def test_same_arguments_same_bytes(drops, tmp_path):
    assert digest(generate_product_files(tmp_path / "again", FILES, ROWS, seed=5)) == digest(drops)
    assert digest(generate_product_files(tmp_path / "other", FILES, ROWS, seed=6)) != digest(drops)


def test_names_sort_in_drop_order_and_each_file_has_its_rows(drops):
    assert [p.name for p in drops] == sorted(p.name for p in drops)
    assert [pq.read_metadata(p).num_rows for p in drops] == [ROWS] * FILES


def test_schema_drifts_across_files(drops):
    schemas = [pq.read_schema(p) for p in drops]
    price = [str(s.field("price").type) for s in schemas]
    stock = [str(s.field("stock_quantity").type) if "stock_quantity" in s.names else None for s in schemas]
    assert price == ["float", "float", "double", "double", "double", "double"]
    assert stock == [None, None, "int32", "int32", "int64", "int64"]
    assert ["ean" in s.names for s in schemas] == [False, False, False, False, True, True]
    assert all(s.field("updated_at").type == pa.timestamp("ms", tz="UTC") for s in schemas)


def defect(row: dict) -> str | None:
    if row["product_id"] is None or not row["product_id"].strip():
        return "missing id"
    if row["updated_at"] is None:
        return "missing updated_at"
    if row["price"] is None or math.isnan(row["price"]):
        return "missing price"
    if row["price"] < 0:
        return "negative price"
    if row["currency"] not in {"EUR", "USD", "GBP", "CHF", "SEK", "PLN"}:
        return "unknown currency"
    return None


def test_bad_rows_duplicates_and_later_versions(drops):
    defects, copies = Counter(), 0
    latest_by_file = []
    for path in drops:
        rows = pq.read_table(path).to_pylist()
        seen = set()
        for row in rows:
            kind = defect(row)
            defects[kind] += 1
            if kind is None:
                key = (row["product_id"], row["updated_at"])
                copies += key in seen
                seen.add(key)
        latest_by_file.append(max(r["updated_at"] for r in rows if r["updated_at"] is not None))
    bad = sum(n for kind, n in defects.items() if kind is not None)
    assert set(defects) == {
        None,
        "missing id",
        "missing updated_at",
        "missing price",
        "negative price",
        "unknown currency",
    }
    assert 0.02 < bad / (FILES * ROWS) < 0.04
    assert copies > 0.01 * FILES * ROWS  # re-sent rows: same product and updated_at
    assert latest_by_file == sorted(latest_by_file)  # a later drop holds later versions
    products = Counter(r["product_id"] for p in drops for r in pq.read_table(p, columns=["product_id"]).to_pylist())
    assert sum(1 for n in products.values() if n > 1) > 0.2 * len(products)  # many products come in several versions


def test_options_are_validated(tmp_path):
    with pytest.raises(ValueError, match="products"):
        generate_product_files(tmp_path, 1, 10, options=ProductOptions(products=11))
    with pytest.raises(ValueError, match="ratios"):
        generate_product_files(tmp_path, 1, 10, options=ProductOptions(bad_ratio=0.6))


def test_command_line_and_upload(tmp_path, s3):
    main(["--files", "2", "--rows", "50", "--seed", "3", "--out", str(tmp_path)])
    paths = sorted(tmp_path.glob("*.parquet"))
    assert len(paths) == 2
    keys = upload_files(s3, paths, prefix="products-sample-test/")
    assert keys == [f"products-sample-test/{p.name}" for p in paths]
    stored = s3.list_objects_v2(Bucket="landing", Prefix="products-sample-test/")["Contents"]
    assert sorted((o["Key"], o["Size"]) for o in stored) == [
        (k, p.stat().st_size) for k, p in zip(keys, paths, strict=True)
    ]
    s3.delete_objects(Bucket="landing", Delete={"Objects": [{"Key": k} for k in keys]})
