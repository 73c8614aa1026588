"""Read text files as lines numbered within their file, without a Python round trip."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def number_lines(scanned: DataFrame) -> DataFrame:
    """Turn scan positions into 1-based line numbers per file.

    Args:
        scanned: rows with ``line``, ``_source_file``, ``_block_start`` (byte offset of the file split the row was
            read from) and ``_row_id`` (``monotonically_increasing_id()`` taken in the same scan).

    Spark splits a large file into blocks read by different tasks, and packs blocks into partitions without
    keeping file order. Within one block the ids are consecutive, so a line's number is its position in its
    block plus the line count of every earlier block of the same file.
    """
    blocks = scanned.groupBy("_source_file", "_block_start").agg(
        F.count("*").alias("_block_lines"), F.min("_row_id").alias("_first_row_id")
    )
    earlier = Window.partitionBy("_source_file").orderBy("_block_start")
    blocks = blocks.withColumn("_lines_before", F.sum("_block_lines").over(earlier) - F.col("_block_lines"))
    return scanned.join(F.broadcast(blocks), ["_source_file", "_block_start"]).select(
        "line",
        "_source_file",
        (F.col("_row_id") - F.col("_first_row_id") + F.col("_lines_before") + 1).alias("_line_number"),
    )


def read_numbered_lines(spark, path: str) -> DataFrame:
    """Every line of the files under ``path`` (a file, folder or glob) with its file and line number."""
    scanned = spark.read.text(path).select(
        F.col("value").alias("line"),
        F.input_file_name().alias("_source_file"),
        F.input_file_block_start().alias("_block_start"),
        F.monotonically_increasing_id().alias("_row_id"),
    )
    return number_lines(scanned)
