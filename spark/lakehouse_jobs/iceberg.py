"""Iceberg helpers: create-if-missing tables and writes that replace only the slice a job owns."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from lakehouse_jobs.session import CATALOG

log = logging.getLogger(__name__)

TABLE_PROPERTIES = {
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
    # Concurrent DAG runs of different days write different slices; let their commits retry.
    "commit.retry.num-retries": "10",
}


def qualified(table: str, branch: str | None = None) -> str:
    """Return ``lake.<namespace>.<table>`` for ``<namespace>.<table>``, with ``.branch_<branch>`` for a branch."""
    if table.count(".") != 1:
        raise ValueError(f"expected <namespace>.<table>, got {table!r}")
    return f"{CATALOG}.{table}" + (f".branch_{branch}" if branch else "")


def ensure_table(spark, table: str, schema, partitioned_by: Sequence[str] = ("ds",)) -> str:
    """Create the namespace and the table when missing; return the qualified name.

    Args:
        spark: the active SparkSession.
        table: ``<namespace>.<table>``.
        schema: a ``StructType``; nullability is kept.
        partitioned_by: identity partition columns.
    """
    name = qualified(table)
    namespace = name.rsplit(".", 1)[0]
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {namespace}")
    columns = ",\n  ".join(
        f"`{f.name}` {f.dataType.simpleString()}{'' if f.nullable else ' NOT NULL'}" for f in schema.fields
    )
    partitions = f"PARTITIONED BY ({', '.join(partitioned_by)})" if partitioned_by else ""
    props = ", ".join(f"'{k}'='{v}'" for k, v in TABLE_PROPERTIES.items())
    spark.sql(f"CREATE TABLE IF NOT EXISTS {name} (\n  {columns}\n) USING iceberg {partitions} TBLPROPERTIES ({props})")
    add_missing_columns(spark, name, schema)
    return name


def add_missing_columns(spark, name: str, schema) -> list[str]:
    """Add the columns of ``schema`` that the existing table ``name`` lacks, as nullable columns at its end.

    A table created by an older version of a job grows the columns the job writes now; Iceberg cannot add a
    required column to a table that has rows, so they are nullable whatever ``schema`` says. Returns the names added.
    """
    existing = {column.lower() for column in spark.table(name).columns}
    missing = [f for f in schema.fields if f.name.lower() not in existing]
    for f in missing:
        spark.sql(f"ALTER TABLE {name} ADD COLUMN `{f.name}` {f.dataType.simpleString()}")
        log.info("added column %s %s to %s", f.name, f.dataType.simpleString(), name)
    return [f.name for f in missing]


def conform(df, schema):
    """Select and cast ``df``'s columns to ``schema``'s order and types, failing on a missing column."""
    from pyspark.sql import functions as F

    missing = [f.name for f in schema.fields if f.name not in df.columns]
    if missing:
        raise ValueError(f"columns missing for the target schema: {missing}")
    return df.select([F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields])


def replace_slice(df, table: str, schema, ds: str, *, branch: str | None = None) -> None:
    """Atomically replace the rows of partition ``ds`` with ``df`` (an empty ``df`` empties the slice).

    With ``branch``, the slice is replaced on that branch of the table (write-audit-publish, lakehouse_jobs.wap),
    which must exist; ``main`` is left as it is.

    A static ``overwrite`` by filter is used instead of ``overwritePartitions`` because the latter leaves a
    partition untouched when the new data has no row for it, so a re-run that now finds nothing would keep
    stale rows.
    """
    from pyspark.sql import functions as F

    ensure_table(df.sparkSession, table, schema)
    target = qualified(table, branch)
    conform(df, schema).writeTo(target).overwrite(F.col("ds") == F.lit(ds).cast("date"))
    log.info("replaced slice ds=%s of %s", ds, target)


def merge_rows(df, table: str, schema, keys: Sequence[str], partitioned_by: Sequence[str] = ()) -> None:
    """Upsert ``df`` into ``table`` on ``keys`` with ``MERGE INTO`` (rows with the same keys are updated)."""
    spark = df.sparkSession
    name = ensure_table(spark, table, schema, partitioned_by)
    view = f"_merge_source_{table.replace('.', '_')}"
    conform(df, schema).createOrReplaceTempView(view)
    on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    spark.sql(
        f"MERGE INTO {name} t USING {view} s ON {on} WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )
    spark.catalog.dropTempView(view)
    log.info("merged into %s on %s", name, ", ".join(keys))


def read_slice(spark, table: str, ds: str, *, branch: str | None = None):
    """Return the rows of partition ``ds`` of ``table`` (of its ``branch``, by default of ``main``)."""
    from pyspark.sql import functions as F

    return spark.table(qualified(table, branch)).where(F.col("ds") == F.lit(ds).cast("date"))


def read_text_file(spark, uri: str) -> str | None:
    """Read a small text object through Hadoop's FileSystem API; ``None`` when it does not exist.

    Spark's file sources skip names starting with ``_``, which is how landing manifests stay out of the data.
    """
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(path):
        return None
    stream = fs.open(path)
    try:
        return jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()


def apply_changes(
    changes,
    table: str,
    schema,
    keys: Sequence[str],
    op: str = "_op",
    delete: str = "delete",
    *,
    branch: str | None = None,
) -> None:
    """Apply change rows to ``table`` with one ``MERGE INTO`` on ``keys``: ``op`` = ``delete`` deletes, else upserts.

    Args:
        changes: rows of ``schema`` plus the ``op`` column.
        table: ``<namespace>.<table>``.
        schema: the table's schema (the table is created when missing).
        keys: the columns that identify a row.
        op: the column naming each change's operation.
        delete: the operation that deletes.
        branch: merge into this branch of the table (which must exist) instead of ``main``.
    """
    from pyspark.sql import functions as F

    spark = changes.sparkSession
    ensure_table(spark, table, schema)
    name = qualified(table, branch)
    view = f"_changes_{table.replace('.', '_')}"
    columns = [f"`{f.name}`" for f in schema.fields]
    typed = [F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields]
    changes.select(*typed, op).createOrReplaceTempView(view)
    on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
    spark.sql(
        f"MERGE INTO {name} t USING {view} s ON {on}"
        f" WHEN MATCHED AND s.{op} = '{delete}' THEN DELETE"
        f" WHEN MATCHED THEN UPDATE SET {', '.join(f't.{c} = s.{c}' for c in columns)}"
        f" WHEN NOT MATCHED AND s.{op} != '{delete}' THEN INSERT ({', '.join(columns)})"
        f" VALUES ({', '.join(f's.{c}' for c in columns)})"
    )
    spark.catalog.dropTempView(view)
    log.info("applied changes to %s on %s", name, ", ".join(keys))
