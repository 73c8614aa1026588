"""Table schemas in one compact notation, and the columns that every layer of every domain shares."""

from __future__ import annotations

from pyspark.sql import types as T

_ATOMIC = {
    "string": T.StringType,
    "int": T.IntegerType,
    "bigint": T.LongType,
    "double": T.DoubleType,
    "boolean": T.BooleanType,
    "date": T.DateType,
    "timestamp": T.TimestampType,
    "timestamp_ntz": T.TimestampNTZType,
}


def _split(text: str) -> list[str]:
    """``text`` split at the commas outside brackets, each part stripped."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        depth += (c in "<(") - (c in ">)")
        if c == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    return [p for p in [*parts, text[start:].strip()] if p]


def data_type(text: str) -> T.DataType:
    """A Spark SQL type name (``bigint``, ``decimal(5,2)``, ``array<string>``, ``map<string,string>``) as a type."""
    text = text.strip().lower()
    if text.startswith("decimal("):
        precision, scale = _split(text[len("decimal(") : -1])
        return T.DecimalType(int(precision), int(scale))
    if text.startswith("array<"):
        return T.ArrayType(data_type(text[len("array<") : -1]))
    if text.startswith("map<"):
        key, value = _split(text[len("map<") : -1])
        return T.MapType(data_type(key), data_type(value))
    return _ATOMIC[text]()


def columns(ddl: str) -> list[T.StructField]:
    """``"name type [NOT NULL], ..."`` -> the fields, in order (nullable unless ``NOT NULL``)."""
    fields = []
    for spec in _split(ddl):
        name, kind = spec.split(None, 1)
        required = kind.upper().endswith(" NOT NULL")
        fields.append(T.StructField(name, data_type(kind[: -len(" NOT NULL")] if required else kind), not required))
    return fields


def schema(*parts: str | list[T.StructField]) -> T.StructType:
    """A schema from column notations (see ``columns``) and field lists, in order."""
    return T.StructType([f for part in parts for f in (columns(part) if isinstance(part, str) else part)])


# The slice every table is partitioned by.
DS = "ds date NOT NULL"
# A rejects table: the slice, the reason, then what the domain keeps of the refused record, then its lineage.
REASON = "reason string NOT NULL"


def lineage(*position: str) -> list[T.StructField]:
    """Where a record came from: its file, its ``position`` in it (e.g. ``_line_number bigint``), when it was loaded."""
    required = ", ".join(f"{p} NOT NULL" for p in position)
    return columns(f"_source_file string NOT NULL, {required}, _loaded_at timestamp NOT NULL")
