"""The schema notation: the fields it gives, beside the fields written out."""

from __future__ import annotations

from pyspark.sql import types as T


def test_columns_types_nullability_and_nested_types():
    from lakehouse_jobs.schemas import DS, REASON, columns, lineage, schema

    assert columns("a decimal(5,2) NOT NULL, m map<string,string>, x array<string> NOT NULL, t timestamp_ntz") == [
        T.StructField("a", T.DecimalType(5, 2), False),
        T.StructField("m", T.MapType(T.StringType(), T.StringType()), True),
        T.StructField("x", T.ArrayType(T.StringType()), False),
        T.StructField("t", T.TimestampNTZType(), True),
    ]
    assert schema(DS, REASON, "line string", lineage("_page int", "_record_number int")) == T.StructType(
        [
            T.StructField("ds", T.DateType(), False),
            T.StructField("reason", T.StringType(), False),
            T.StructField("line", T.StringType(), True),
            T.StructField("_source_file", T.StringType(), False),
            T.StructField("_page", T.IntegerType(), False),
            T.StructField("_record_number", T.IntegerType(), False),
            T.StructField("_loaded_at", T.TimestampType(), False),
        ]
    )
