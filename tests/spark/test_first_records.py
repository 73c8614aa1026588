"""bronze.first_records: the first valid row of each key (validation first, then de-duplication).

The expected rows are computed in plain Python from the generated rows: sort the valid rows by (file, line), keep
the first of each key that the history does not hold.
"""

from __future__ import annotations

import random

import pytest

KEY = ("k1", "k2")
ORDER = ("_source_file", "_line_number")
SCHEMA = "k1 string, k2 bigint, _source_file string, _line_number bigint, kind string, payload string"


def generated(seed: int = 5, rows: int = 3_000) -> list[tuple]:
    """Rows with keys repeated across and within files, some rejected (never a record), one NULL key part."""
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        k1 = rng.choice(["a", "b", "c 1", "d%", None])
        k2 = rng.randrange(400) if i % 7 else i  # most keys repeat; every 7th is unique
        kind = "reject" if rng.random() < 0.1 else "record"
        out.append((k1, k2, f"s3a://landing/f{rng.randrange(5)}.csv", rng.randrange(1, 1_000), kind, f"p{i}"))
    return out


def expected_firsts(rows: list[tuple], history: set[tuple]) -> list[tuple]:
    firsts: dict[tuple, tuple] = {}
    for row in sorted((r for r in rows if r[4] == "record"), key=lambda r: (r[2], r[3], r[5])):
        key = (row[0], row[1])
        if key not in history and key not in firsts:
            firsts[key] = row
    return sorted(firsts.values(), key=repr)


def result(spark, rows: list[tuple], history: set[tuple] | None):
    from lakehouse_jobs.bronze import first_records

    parsed = spark.createDataFrame(rows, SCHEMA)
    seen = None if history is None else spark.createDataFrame(sorted(history, key=repr), "k1 string, k2 bigint")
    firsts = first_records(parsed, KEY, ORDER, seen).select(*parsed.columns).collect()
    return firsts, parsed


def assert_firsts(spark, rows, history):
    firsts, _ = result(spark, rows, history)
    got = [tuple(r) for r in firsts]
    want = expected_firsts(rows, history or set())
    # Rows tied on (file, line) are the same record delivered twice: compare the key and the order, then the rows.
    assert sorted(((r[0], r[1], r[2], r[3]) for r in got), key=repr) == sorted(
        ((r[0], r[1], r[2], r[3]) for r in want), key=repr
    )
    assert len(got) == len({(r[0], r[1]) for r in got})


@pytest.mark.parametrize("with_history", [False, True], ids=["alone", "after_history"])
def test_the_first_valid_row_of_each_key_is_kept(spark, with_history):
    rows = generated()
    history = {("a", 3), ("b", 10), (None, 7)} if with_history else None
    assert_firsts(spark, rows, history)


def test_a_slice_of_unique_keys_is_kept_whole(spark):
    rows = [("a", i, "s3a://landing/f.csv", i + 1, "record", f"p{i}") for i in range(50)]
    rows.append(("a", 0, "s3a://landing/f.csv", 99, "reject", "refused"))  # a reject with a key already kept
    firsts, _ = result(spark, rows, None)
    assert sorted(r["payload"] for r in firsts) == sorted(f"p{i}" for i in range(50))
