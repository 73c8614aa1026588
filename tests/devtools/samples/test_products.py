"""Tests for the products feed generator: the real feed's shape, determinism, defects and drift, read with pyarrow."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from devtools.samples.products import FeedOptions, corrected, main, write_feed

HOURS = 4
COLUMNS = ["department_name", "sensor_serial", "create_at", "product_name", "product_expire"]


def digest(paths: list[Path]) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> list[Path]:
    return write_feed(tmp_path_factory.mktemp("feed"), HOURS, seed=5, options=FeedOptions(defect_rate=0))


def test_files_are_named_after_their_hour_and_hold_it(clean):
    assert [p.name for p in clean] == [f"2024-01-01 0{h}-00-00.parquet" for h in range(HOURS)]
    for hour, path in enumerate(clean):
        table = pq.read_table(path)
        assert table.column_names == COLUMNS
        assert set(table.column("create_at").to_pylist()) == {dt.datetime(2024, 1, 1, hour)}


def test_the_schema_is_the_pandas_written_feed(clean):
    schema = pq.read_schema(clean[0])
    assert b"pandas" in schema.metadata  # the index entry pandas writes
    assert [str(schema.field(c).type) for c in ("create_at", "product_expire")] == ["timestamp[us]"] * 2
    assert schema.field("create_at").type.tz is None


def test_a_clean_file_looks_like_the_real_one(clean):
    rows = pq.read_table(clean[0]).to_pylist()
    assert 1_500 <= len(rows) <= 2_500
    assert len({r["department_name"] for r in rows}) == 100
    assert len({tuple(r.values()) for r in rows}) == len(rows)  # no exact duplicate rows
    products_per_serial = Counter((r["department_name"], r["sensor_serial"]) for r in rows)
    assert max(products_per_serial.values()) > 1
    shelf_days = [(r["product_expire"] - r["create_at"]).total_seconds() / 86_400 for r in rows]
    assert min(shelf_days) >= 87 and max(shelf_days) <= 89


def test_same_seed_same_bytes(clean, tmp_path):
    options = FeedOptions(defect_rate=0)
    assert digest(write_feed(tmp_path / "again", HOURS, 5, options)) == digest(clean)
    assert digest(write_feed(tmp_path / "other", HOURS, 6, options)) != digest(clean)


def test_defects_drift_and_missing_column(tmp_path):
    options = FeedOptions(defect_rate=0.01, missing_column_every=3, drift_from_hour=1)
    paths = write_feed(tmp_path, 6, 9, options)
    rows = [r for p in paths[:2] for r in pq.read_table(p).to_pylist()]
    assert any(r["department_name"] is None for r in rows)
    assert any(r["sensor_serial"] is not None and not r["sensor_serial"].strip() for r in rows)
    assert any(r["product_name"] is None for r in rows)
    assert any(r["create_at"].year == 1970 for r in rows)
    assert any(r["product_expire"] < r["create_at"] for r in rows)
    assert len({tuple(r.values()) for r in rows}) < len(rows)  # a repeated row
    assert [str(pq.read_schema(p).field("shelf_temperature").type) for p in paths[1:3]] == ["float", "double"]
    assert "shelf_temperature" not in pq.read_schema(paths[0]).names
    assert [i for i, p in enumerate(paths) if "product_expire" not in pq.read_schema(p).names] == [2, 5]


def test_a_correction_changes_expiries_and_withdraws_a_row(clean):
    import pandas as pd

    frame = pd.read_parquet(clean[0])
    fixed = corrected(frame, seed=1)
    assert len(fixed) == len(frame) - 1
    delta = fixed["product_expire"] - frame["product_expire"].iloc[:-1]
    assert set(delta.dt.days) == {0, 1} and (delta.dt.days == 1).sum() >= 1


def test_cli_writes_the_hours(tmp_path, capsys):
    result = main(["write", "--hours", "2", "--out", str(tmp_path), "--start", "2024-03-05T10:00:00"])
    assert result["files"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2024-03-05 10-00-00.parquet", "2024-03-05 11-00-00.parquet"]
    assert '"files": 2' in capsys.readouterr().out
