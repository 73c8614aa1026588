"""Line numbering survives Spark splitting a file into blocks read by different tasks."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.spark


def test_numbers_match_file_order_across_blocks_and_files(spark, tmp_path):
    from lakehouse_jobs.lines import read_numbered_lines

    big = [f"line {i:06d} " + "x" * (i % 37) for i in range(1, 20001)]
    small = ["alpha", "", "gamma"]
    (tmp_path / "big.txt").write_text("\n".join(big) + "\n")
    (tmp_path / "small.txt").write_text("\n".join(small))  # no final newline
    spark.conf.set("spark.sql.files.maxPartitionBytes", "65536")  # force ~9 blocks for big.txt
    try:
        df = read_numbered_lines(spark, f"file://{tmp_path}")
        blocks = df.rdd.getNumPartitions()
        got = {(r["_source_file"].rsplit("/", 1)[-1], r["_line_number"], r["line"]) for r in df.collect()}
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    expected = {("big.txt", n, text) for n, text in enumerate(big, start=1)}
    expected |= {("small.txt", n, text) for n, text in enumerate(small, start=1)}
    assert blocks > 1
    assert got == expected
