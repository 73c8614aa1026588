"""Products: Parquet drops in landing/products/ -> raw.products -> bronze.products (+ rejects) -> gold master."""

# Why raw keeps every value as a string: the drops drift (float32 prices become float64, an int32 column becomes
# int64, columns appear), and Spark 3.5's `mergeSchema` refuses to merge float with double or int with bigint.
# Strings hold every version of a column, keep a float32 price as the decimal text the feed meant ("19.99", not
# the 19.989999771 a cast to double gives), and leave every typing decision to bronze. Files are read in groups of
# one Parquet schema (from their footers) and unioned by name; a column raw does not know lands in `_extra`.
#
# `ops.processed_files` remembers each file version processed (path, ETag, size): an identical re-drop is skipped,
# a file with new content is read again, and its rows replace that file's earlier rows in the run's raw slice.
#
# Gold `product_master` holds the current version of each product; its `ds` is the run that last changed the row,
# so a run's slice is the rows it changed. A change moves a row out of an older slice: the job records those
# slices in `ops.slice_changes`, and the DAG announces them so the serving copies reload them too.

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse_jobs.bronze import (
    DUPLICATE,
    RECORD,
    REJECT,
    Reconciliation,
    Target,
    publish_slice,
)
from lakehouse_jobs.iceberg import ensure_table, merge_rows, qualified, read_slice, replace_slice
from lakehouse_jobs.job import Job
from lakehouse_jobs.landed_files import (
    LandedFile,
    landing_uri,
    list_landed,
    plan_files,
    read_processed,
    record_processed,
)
from lakehouse_jobs.ops import SLICE_CHANGES, SLICE_CHANGES_SCHEMA

log = logging.getLogger(__name__)

DOMAIN = "products"
LANDING_PREFIX = "products/"

RAW = "raw.products"
BRONZE = "bronze.products"
REJECTS = "bronze.products_rejects"
MASTER = "gold.product_master"
BY_CATEGORY = "gold.products_by_category"

# The columns raw knows, in order; any other column of a drop goes to `_extra`.
FIELDS = (
    "product_id", "name", "category", "brand", "price", "currency", "updated_at",
    "color", "weight_kg", "stock_quantity", "ean",
)  # fmt: skip
# ISO 4217 codes accepted in bronze (upper-cased first); anything else is an `unknown_currency` reject.
CURRENCIES = frozenset({"EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "JPY", "CAD", "AUD"})
UNKNOWN_CATEGORY = "Uncategorised"
# The product's business values: a version whose values differ from the master row changes it.
VALUES = (
    "name", "category", "brand", "price", "currency", "updated_at", "color", "weight_kg", "stock_quantity", "ean",
)  # fmt: skip
PRICE = T.DecimalType(12, 2)
LINEAGE = [
    T.StructField("_source_file", T.StringType(), False),
    T.StructField("_row_number", T.LongType(), False),
    T.StructField("_loaded_at", T.TimestampType(), False),
]

RAW_SCHEMA = T.StructType(
    [T.StructField("ds", T.DateType(), False)]
    + [T.StructField(name, T.StringType()) for name in FIELDS]
    + [T.StructField("_extra", T.MapType(T.StringType(), T.StringType()))]
    + LINEAGE
)
PRODUCT_FIELDS = [
    T.StructField("product_id", T.StringType(), False),
    T.StructField("name", T.StringType()),
    T.StructField("category", T.StringType(), False),
    T.StructField("brand", T.StringType()),
    T.StructField("price", PRICE, False),
    T.StructField("currency", T.StringType(), False),
    T.StructField("updated_at", T.TimestampType(), False),
    T.StructField("color", T.StringType()),
    T.StructField("weight_kg", T.DoubleType()),
    T.StructField("stock_quantity", T.LongType()),
    T.StructField("ean", T.StringType()),
]
BRONZE_SCHEMA = T.StructType([T.StructField("ds", T.DateType(), False), *PRODUCT_FIELDS, *LINEAGE])
REJECTS_SCHEMA = T.StructType(
    [
        T.StructField("ds", T.DateType(), False),
        T.StructField("reason", T.StringType(), False),
        T.StructField("product_id", T.StringType()),
        T.StructField("record", T.StringType()),  # every raw value, as JSON
        *LINEAGE,
    ]
)
# `ds` is the run that last changed the row; `_source_file`/`_row_number` say where its version came from.
MASTER_SCHEMA = T.StructType(
    [T.StructField("ds", T.DateType(), False), *PRODUCT_FIELDS, *LINEAGE[:2], T.StructField("first_ds", T.DateType())]
)
BY_CATEGORY_SCHEMA = T.StructType(
    [
        T.StructField("ds", T.DateType(), False),
        T.StructField("category", T.StringType(), False),
        T.StructField("currency", T.StringType(), False),
        T.StructField("products", T.LongType(), False),
        T.StructField("brands", T.LongType(), False),
        T.StructField("avg_price", PRICE, False),
        T.StructField("min_price", PRICE, False),
        T.StructField("max_price", PRICE, False),
        T.StructField("changed_products", T.LongType(), False),
        T.StructField("last_updated_at", T.TimestampType(), False),
    ]
)

UPSERT, DELETE = "upsert", "delete"


# --- Parquet footers ------------------------------------------------------------------------------


def parquet_footer(spark, path: str) -> tuple[str, int]:
    """(schema text, row count) from a Parquet file's footer, read on the driver without a Spark job."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    source = jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(jvm.org.apache.hadoop.fs.Path(path), conf)
    reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(source)
    try:
        return reader.getFooter().getFileMetaData().getSchema().toString(), int(reader.getRecordCount())
    finally:
        reader.close()


# --- pure transformations ----------------------------------------------------------------------------


def _as_string(df: DataFrame, name: str):
    data_type = df.schema[name].dataType
    if isinstance(data_type, (T.StructType, T.ArrayType, T.MapType)):
        return F.to_json(F.col(f"`{name}`"))
    return F.col(f"`{name}`").cast("string")


def to_raw(files: DataFrame, ds: str) -> DataFrame:
    """Rows of drops of one schema (columns + ``_source_file``, ``_row_number``) -> raw rows of slice ``ds``.

    Known columns become strings (nested values JSON), missing ones NULL; unknown columns go to ``_extra``.
    """
    lineage = {"_source_file", "_row_number"}
    present = {c.lower(): c for c in files.columns if c not in lineage}
    known = [
        (_as_string(files, present[name]) if name in present else F.lit(None).cast("string")).alias(name)
        for name in FIELDS
    ]
    unknown = sorted(c for key, c in present.items() if key not in FIELDS)
    extra = (
        F.create_map(*[part for c in unknown for part in (F.lit(c), _as_string(files, c))])
        if unknown
        else F.lit(None).cast("map<string,string>")
    )
    return files.select(
        F.lit(ds).cast("date").alias("ds"),
        *known,
        extra.alias("_extra"),
        "_source_file",
        F.col("_row_number").cast("long").alias("_row_number"),
        F.current_timestamp().alias("_loaded_at"),
    )


def _text(name: str):
    """The trimmed raw value, NULL when empty."""
    trimmed = F.trim(F.col(name))
    return F.when(trimmed != "", trimmed)


def parse(raw: DataFrame) -> DataFrame:
    """Raw rows + typed product columns (prefixed ``_t_``) + ``reason`` (NULL for a valid row)."""
    price = F.expr("try_cast(trim(price) AS DECIMAL(12,2))")
    updated_at = F.expr("try_cast(trim(updated_at) AS TIMESTAMP)")
    currency = F.upper(_text("currency"))
    reason = (
        F.when(_text("product_id").isNull(), "missing_product_id")
        .when(_text("updated_at").isNull(), "missing_updated_at")
        .when(updated_at.isNull(), "bad_updated_at")
        .when(_text("price").isNull(), "missing_price")
        .when(price.isNull(), "bad_price")
        .when(price < 0, "negative_price")
        .when(currency.isNull() | ~currency.isin(*sorted(CURRENCIES)), "unknown_currency")
    )
    typed = {
        "product_id": _text("product_id"),
        "name": _text("name"),
        "category": F.coalesce(_text("category"), F.lit(UNKNOWN_CATEGORY)),
        "brand": _text("brand"),
        "price": price,
        "currency": currency,
        "updated_at": updated_at,
        "color": F.lower(_text("color")),
        # Optional attributes: an unreadable value is a missing value, not a reason to refuse the product.
        "weight_kg": F.expr("try_cast(trim(weight_kg) AS DOUBLE)"),
        "stock_quantity": F.expr("try_cast(trim(stock_quantity) AS BIGINT)"),
        "ean": _text("ean"),
    }
    return raw.select("*", *[value.alias(f"_t_{name}") for name, value in typed.items()], reason.alias("reason"))


def classify(raw: DataFrame, history: DataFrame | None = None) -> DataFrame:
    """Parse and validate raw rows; ``kind`` is record, duplicate or reject.

    A version is a (product_id, updated_at) pair. Its first row in the slice (by file, then row number) is the
    record; further rows of it are duplicates, as are versions already in ``history`` (the
    ``product_id``/``updated_at`` of bronze's earlier slices), so bronze keeps each version once.
    """
    parsed = parse(raw)
    if history is not None:
        seen = history.select(
            F.col("product_id").alias("_t_product_id"),
            F.col("updated_at").alias("_t_updated_at"),
            F.lit(True).alias("_seen"),
        ).distinct()
        parsed = parsed.join(seen, ["_t_product_id", "_t_updated_at"], "left")
    else:
        parsed = parsed.withColumn("_seen", F.lit(None).cast("boolean"))
    # Rejects get their own partitions, so they never take a valid version's first place.
    valid = F.col("reason").isNull()
    first = Window.partitionBy("_t_product_id", "_t_updated_at", valid).orderBy("_source_file", "_row_number")
    occurrence = F.when(valid, F.row_number().over(first))
    return parsed.withColumn(
        "kind",
        F.when(F.col("reason").isNotNull(), REJECT)
        .when(F.col("_seen").isNull() & (occurrence == 1), RECORD)
        .otherwise(DUPLICATE),
    ).drop("_seen")


def accepted(classified: DataFrame) -> DataFrame:
    """The typed versions a slice adds to bronze."""
    typed = [F.col(f"_t_{f.name}").alias(f.name) for f in PRODUCT_FIELDS]
    return classified.where(F.col("kind") == RECORD).select("ds", *typed, "_source_file", "_row_number", "_loaded_at")


def rejected(classified: DataFrame) -> DataFrame:
    """Every refused row with its reason and its raw values as JSON."""
    record = F.to_json(F.struct(*[F.col(name) for name in FIELDS], F.col("_extra")))
    return classified.where(F.col("kind") == REJECT).select(
        "ds", "reason", "product_id", record.alias("record"), "_source_file", "_row_number", "_loaded_at"
    )


def latest_versions(bronze: DataFrame) -> DataFrame:
    """The current version of each product: latest ``updated_at`` (ties: latest slice, file, row)."""
    order = [F.desc(c) for c in ("updated_at", "ds", "_source_file", "_row_number")]
    rank = F.row_number().over(Window.partitionBy("product_id").orderBy(*order))
    return bronze.withColumn("_rank", rank).where(F.col("_rank") == 1).drop("_rank")


def master_changes(bronze: DataFrame, master: DataFrame, ds: str) -> DataFrame:
    """What run ``ds`` changes in the product master, as rows of the master schema plus ``_op`` and ``_previous_ds``.

    The products considered are those with a version in bronze slice ``ds`` and those the master says slice
    ``ds`` last changed (a re-run after the slice's files changed). Each gets its latest version over all of
    bronze: an upsert stamped ``ds`` when it is new or its values differ from the master row; a delete when bronze
    no longer holds any version of it. Unchanged products keep their row and its ``ds``.

    Args:
        bronze: every slice of ``bronze.products``.
        master: ``gold.product_master`` as it is.
        ds: the run's slice.
    """
    day = F.lit(ds).cast("date")
    touched = (
        bronze.where(F.col("ds") == day)
        .select("product_id")
        .union(master.where(F.col("ds") == day).select("product_id"))
        .distinct()
    )
    latest = latest_versions(bronze.join(touched, "product_id", "left_semi"))
    current = master.join(touched, "product_id", "left_semi")
    new = latest.select("product_id", *[F.col(c).alias(f"_n_{c}") for c in (*VALUES, "_source_file", "_row_number")])
    old = current.select("product_id", *[F.col(c).alias(f"_o_{c}") for c in VALUES], "ds", "first_ds")
    both = new.join(old, "product_id", "full_outer")
    differs = F.lit(False)
    for c in VALUES:
        differs = differs | ~F.col(f"_n_{c}").eqNullSafe(F.col(f"_o_{c}"))
    op = F.when(F.col("_n_updated_at").isNull(), DELETE).when(F.col("ds").isNull() | differs, UPSERT)
    return both.select(
        day.alias("_new_ds"),
        "product_id",
        *[F.col(f"_n_{c}").alias(c) for c in (*VALUES, "_source_file", "_row_number")],
        F.coalesce("first_ds", day).alias("first_ds"),
        op.alias("_op"),
        F.col("ds").alias("_previous_ds"),
    ).where(F.col("_op").isNotNull())


def moved_slices(changes: DataFrame, ds: str) -> DataFrame:
    """The older slices a change takes rows out of: (changed_ds, rows_out)."""
    return (
        changes.where(F.col("_previous_ds").isNotNull() & (F.col("_previous_ds") != F.lit(ds).cast("date")))
        .groupBy(F.col("_previous_ds").alias("changed_ds"))
        .agg(F.count("*").alias("rows_out"))
    )


def by_category(master: DataFrame, ds: str) -> DataFrame:
    """Slice ``ds`` of ``products_by_category``: the whole current master, per category and currency.

    Prices in different currencies are never averaged together, hence the currency in the key.
    """
    day = F.lit(ds).cast("date")
    return (
        master.groupBy("category", "currency")
        .agg(
            F.count("*").alias("products"),
            F.countDistinct("brand").alias("brands"),
            F.round(F.avg("price"), 2).cast(PRICE).alias("avg_price"),
            F.min("price").alias("min_price"),
            F.max("price").alias("max_price"),
            F.sum(F.when(F.col("ds") == day, 1).otherwise(0)).cast("long").alias("changed_products"),
            F.max("updated_at").alias("last_updated_at"),
        )
        .select(day.alias("ds"), "*")
    )


# --- reconciliation ------------------------------------------------------------------------------


class LandingMismatch(RuntimeError):
    """Raw holds a different number of rows for a file than its Parquet footer declares."""


# --- jobs ------------------------------------------------------------------------------------------


def read_files(spark, files: Sequence[LandedFile], ds: str) -> tuple[DataFrame, dict[str, int]]:
    """Raw rows of ``files`` (read in groups of one Parquet schema), and each file's row count from its footer."""
    groups: dict[str, list[str]] = {}
    expected = {}
    for file in files:
        schema, rows = parquet_footer(spark, file.path)
        groups.setdefault(schema, []).append(file.path)
        expected[file.path] = rows
    frames = []
    for paths in groups.values():
        scanned = spark.read.parquet(*paths)
        scanned = scanned.select(
            "*",
            F.col("_metadata.file_path").alias("_source_file"),
            (F.col("_metadata.row_index") + 1).alias("_row_number"),
        )
        frames.append(to_raw(scanned, ds))
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    log.info("reading %d files in %d schema groups", len(files), len(groups))
    return union, expected


def run_raw(spark, ds: str, *, prefix: str = LANDING_PREFIX, landing_bucket: str = "landing") -> dict:
    """Add the rows of new or changed drops under ``landing/<prefix>`` to ``raw.products`` slice ``ds``.

    A file whose ETag and size match its last processed version is skipped. The rows of a file processed again
    replace its earlier rows in the slice; the slice's other rows stay.
    """
    source = landing_uri(prefix, landing_bucket)
    landed = list_landed(spark, source, suffix=".parquet")
    todo = plan_files(landed, read_processed(spark, DOMAIN))
    summary = {"landed_files": len(landed), "new_files": len(todo), "new_rows": 0}
    if not todo:
        log.info("raw.products ds=%s: nothing new among %d files under %s", ds, len(landed), source)
        return summary
    new_rows, expected = read_files(spark, todo, ds)
    ensure_table(spark, RAW, RAW_SCHEMA)
    paths = [f.path for f in todo]
    kept = read_slice(spark, RAW, ds).where(~F.col("_source_file").isin(paths))
    replace_slice(kept.unionByName(new_rows), RAW, RAW_SCHEMA, ds)
    written = {
        r["_source_file"]: r["n"]
        for r in read_slice(spark, RAW, ds)
        .where(F.col("_source_file").isin(paths))
        .groupBy("_source_file")
        .agg(F.count("*").alias("n"))
        .collect()
    }
    wrong = {p: (written.get(p, 0), n) for p, n in expected.items() if written.get(p, 0) != n}
    if wrong:
        raise LandingMismatch(f"raw rows != footer rows for {len(wrong)} files, e.g. {next(iter(wrong.items()))}")
    record_processed(spark, DOMAIN, todo, expected, ds)
    summary["new_rows"] = sum(expected.values())
    log.info("raw.products ds=%s: %s", ds, summary)
    return summary


def run_bronze(spark, ds: str, *, max_reject_ratio: float = 0.1) -> Reconciliation:
    """Type and validate the slice, keep each product version once; refuse to publish when too many rows fail."""
    raw = read_slice(spark, RAW, ds) if _exists(spark, RAW) else spark.createDataFrame([], RAW_SCHEMA)
    raw_count = raw.count()
    history = None
    if _exists(spark, BRONZE):
        history = spark.table(qualified(BRONZE)).where(F.col("ds") < F.lit(ds).cast("date"))
    classified = classify(raw, history).persist()
    try:
        return publish_slice(
            classified,
            raw_count,
            domain=DOMAIN,
            ds=ds,
            accepted=accepted(classified),
            rejected=rejected(classified),
            bronze=Target(BRONZE, BRONZE_SCHEMA),
            rejects=Target(REJECTS, REJECTS_SCHEMA),
            max_reject_ratio=max_reject_ratio,
            unit="rows",
        )
    finally:
        classified.unpersist()


def _exists(spark, table: str) -> bool:
    return spark.catalog.tableExists(qualified(table))


def merge_master(changes: DataFrame) -> None:
    """Apply ``master_changes`` with one ``MERGE INTO``: update or insert upserts (stamped ``_new_ds``), delete."""
    spark = changes.sparkSession
    name = ensure_table(spark, MASTER, MASTER_SCHEMA)
    view = "_product_master_changes"
    columns = [f"`{f.name}`" for f in MASTER_SCHEMA.fields]
    typed = [
        F.col("_new_ds" if f.name == "ds" else f.name).cast(f.dataType).alias(f.name) for f in MASTER_SCHEMA.fields
    ]
    changes.select(*typed, "_op").createOrReplaceTempView(view)
    spark.sql(
        f"MERGE INTO {name} t USING {view} s ON t.product_id = s.product_id"
        f" WHEN MATCHED AND s._op = '{DELETE}' THEN DELETE"
        f" WHEN MATCHED THEN UPDATE SET {', '.join(f't.{c} = s.{c}' for c in columns)}"
        f" WHEN NOT MATCHED AND s._op = '{UPSERT}' THEN INSERT ({', '.join(columns)})"
        f" VALUES ({', '.join(f's.{c}' for c in columns)})"
    )
    spark.catalog.dropTempView(view)


def run_gold(spark, ds: str) -> dict:
    """Merge the slice's changes into ``gold.product_master``; rebuild slice ``ds`` of ``products_by_category``."""
    bronze = spark.table(qualified(BRONZE)) if _exists(spark, BRONZE) else spark.createDataFrame([], BRONZE_SCHEMA)
    master = spark.table(ensure_table(spark, MASTER, MASTER_SCHEMA))
    changes = master_changes(bronze, master, ds).persist()
    try:
        ops = {row["_op"]: row["n"] for row in changes.groupBy("_op").agg(F.count("*").alias("n")).collect()}
        moved = moved_slices(changes, ds).collect()
        if moved:
            # Recorded before the MERGE: if the job dies in between, a re-run still announces these slices.
            now = dt.datetime.now(dt.timezone.utc)  # noqa: UP017 - the image runs Python 3.10
            day = dt.date.fromisoformat(ds)
            rows = [(MASTER, day, r["changed_ds"], r["rows_out"], now) for r in moved]
            frame = spark.createDataFrame(rows, SLICE_CHANGES_SCHEMA)
            merge_rows(frame, SLICE_CHANGES, SLICE_CHANGES_SCHEMA, keys=("table_name", "ds", "changed_ds"))
        if ops:
            merge_master(changes)
    finally:
        changes.unpersist()
    master = spark.table(qualified(MASTER))
    replace_slice(by_category(master, ds), BY_CATEGORY, BY_CATEGORY_SCHEMA, ds)
    counts = {
        "upserts": ops.get(UPSERT, 0),
        "deletes": ops.get(DELETE, 0),
        "moved_from_slices": sorted(str(r["changed_ds"]) for r in moved),
        "master_rows": master.count(),
        "master_slice_rows": read_slice(spark, MASTER, ds).count(),
        "categories": read_slice(spark, BY_CATEGORY, ds).count(),
    }
    log.info("gold products ds=%s: %s", ds, counts)
    return counts


JOBS = {
    "raw": Job(
        run_raw,
        [("--prefix", {"help": "drops to read: a key prefix in the landing bucket, or a full URI"})],
        needs_landing_bucket=True,
    ),
    "bronze": Job(
        run_bronze,
        [("--max-reject-ratio", {"type": float, "default": 0.1, "help": "fail above this share of rejects"})],
    ),
    "gold": Job(run_gold),
}
