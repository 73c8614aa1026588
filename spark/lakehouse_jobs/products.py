"""Products: hourly sensor Parquet files in landing/products/ -> raw -> bronze readings (+ rejects) -> gold."""

# The feed: one pandas-written Parquet file per hour, named after the hour (`2024-01-01 00-00-00.parquet`),
# columns department_name, sensor_serial, create_at, product_name, product_expire (zone-less timestamps).
#
# Why raw keeps every value as a string: files drift (a column appears, a float32 becomes float64), and Spark
# 3.5's `mergeSchema` refuses to merge float with double. Files are read in groups of one Parquet schema (from
# their footers) and unioned by name; a column raw does not know lands in `_extra`, a required column a file lacks
# is named in `_absent` (bronze refuses those rows: NULL because the file has no such column is not NULL because
# the sensor sent none).
#
# A reading is identified by (department_name, sensor_serial, product_name, create_at): a sensor serial is attached
# to several products of its department, so the serial alone does not name what was read; serials are only known
# to be unique within a department; and create_at (the file's hour) tells one hour's reading from the next.
# product_expire is what the reading says, not who it is: a corrected file may change it.
#
# A file is known by path, ETag and size (`ops.processed_files`): an identical re-drop is skipped, a file with new
# content is read again and its rows replace that file's earlier rows in every slice of raw, bronze and gold
# (the slices of gold it took rows out of are recorded in `ops.slice_changes`, and the DAG announces them for
# serving). Bronze validates first and de-duplicates after: a duplicate repeats an accepted reading, of this run or
# of an earlier one.

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse_jobs import ops
from lakehouse_jobs.bronze import RECORD, REJECT, Layer, Reconciliation, Target, run_layer
from lakehouse_jobs.iceberg import ensure_table, qualified, read_slice
from lakehouse_jobs.job import PREFIX_OPTION, Job, layers
from lakehouse_jobs.landed_files import (
    LandedFeed,
    LandedFile,
    drop_superseded,
    glob_escaped,
    load_landed,
    scanned_uris,
    slice_files,
    superseded_slices,
    with_listed_paths,
)
from lakehouse_jobs.schemas import DS, REASON, columns, lineage, schema
from lakehouse_jobs.wap import GoldRun

log = logging.getLogger(__name__)

DOMAIN = "products"
LANDING_PREFIX = "products/"

RAW = "raw.products"
BRONZE = "bronze.products"
REJECTS = "bronze.products_rejects"
MASTER = "gold.product_master"
BY_DEPARTMENT = "gold.products_by_department"
SHELF_LIFE = "gold.product_shelf_life"
EXPIRING = "gold.products_expiring"

FIELDS = ("department_name", "sensor_serial", "create_at", "product_name", "product_expire")
KEY = ("department_name", "sensor_serial", "product_name", "create_at")
# A timestamp outside these bounds is a sensor clock gone wrong (1970 after a reset, a year 2262 overflow).
EARLIEST, LATEST = "2000-01-01 00:00:00", "2100-01-01 00:00:00"
# "Expiring within N days" horizons of gold.products_expiring.
HORIZONS = (1, 7, 30, 90)
SECONDS_PER_DAY = 86_400

LINEAGE = lineage("_row_number bigint")
RAW_SCHEMA = schema(
    DS,
    ", ".join(f"{name} string" for name in FIELDS),
    "_absent array<string> NOT NULL, _extra map<string,string>",
    LINEAGE,
)
READING_FIELDS = columns(
    "department_name string NOT NULL, sensor_serial string NOT NULL, product_name string NOT NULL, "
    "create_at timestamp_ntz NOT NULL, product_expire timestamp_ntz NOT NULL"
)
BRONZE_SCHEMA = schema(DS, READING_FIELDS, LINEAGE)
REJECTS_SCHEMA = schema(DS, REASON, "record string", LINEAGE)  # `record`: every raw value, as JSON
# The target table of the project this replaces, one row per distinct reading, plus its shelf life.
MASTER_SCHEMA = schema(DS, READING_FIELDS, "shelf_life_days double NOT NULL, _source_file string NOT NULL")
BY_DEPARTMENT_SCHEMA = schema(
    DS,
    "department_name string NOT NULL, day date NOT NULL, products bigint NOT NULL, "
    "sensors bigint NOT NULL, readings bigint NOT NULL",
)
SHELF_LIFE_SCHEMA = schema(
    DS,
    "shelf_life_days int NOT NULL, readings bigint NOT NULL, products bigint NOT NULL, "
    "avg_shelf_life_days double NOT NULL",
)
EXPIRING_SCHEMA = schema(
    DS,
    "department_name string NOT NULL, within_days int NOT NULL, as_of timestamp_ntz NOT NULL, "
    "products bigint NOT NULL, readings bigint NOT NULL",
)
GOLD_AGGREGATES = (BY_DEPARTMENT, SHELF_LIFE, EXPIRING)


# --- Parquet footers ------------------------------------------------------------------------------


def parquet_footer(spark, path: str, size: int | None = None) -> tuple[str, int]:
    """(schema text, row count) from a Parquet file's footer, read on the driver without a Spark job.

    With the file's ``size`` (from the listing) the file's status is not asked for again: one HEAD request less per
    file on S3, where a run may read thousands of files.
    """
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    if size is None:
        source = jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(hadoop_path, conf)
    else:
        status = jvm.org.apache.hadoop.fs.FileStatus(size, False, 1, 0, 0, hadoop_path)
        source = jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromStatus(status, conf)
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
    """Rows of files of one schema (columns + ``_source_file``, ``_row_number``) -> raw rows of slice ``ds``.

    Known columns become strings, missing ones NULL and named in ``_absent``; unknown columns go to ``_extra``.
    """
    lineage = {"_source_file", "_row_number"}
    present = {c.lower(): c for c in files.columns if c not in lineage}
    known = [
        (_as_string(files, present[name]) if name in present else F.lit(None).cast("string")).alias(name)
        for name in FIELDS
    ]
    absent = F.array(*[F.lit(name) for name in FIELDS if name not in present]).cast("array<string>")
    unknown = sorted(c for key, c in present.items() if key not in FIELDS)
    extra = (
        F.create_map(*[part for c in unknown for part in (F.lit(c), _as_string(files, c))])
        if unknown
        else F.lit(None).cast("map<string,string>")
    )
    return files.select(
        F.lit(ds).cast("date").alias("ds"),
        *known,
        absent.alias("_absent"),
        extra.alias("_extra"),
        "_source_file",
        F.col("_row_number").cast("long").alias("_row_number"),
        F.current_timestamp().alias("_loaded_at"),
    )


def _text(name: str):
    """The trimmed raw value, NULL when empty."""
    trimmed = F.trim(F.col(name))
    return F.when(trimmed != "", trimmed)


def _outside(value) -> object:
    return (value < F.lit(EARLIEST).cast("timestamp_ntz")) | (value >= F.lit(LATEST).cast("timestamp_ntz"))


def parse(raw: DataFrame) -> DataFrame:
    """Raw rows + typed reading columns (prefixed ``_t_``) + ``reason`` (NULL for a valid row) + ``kind``.

    Three projections, each over the columns of the one before: the trimmed texts, then the typed timestamps, then
    the reason and the kind. Written as one projection, every branch of the reason's ``CASE`` repeats the trims and
    casts before it, and ``kind`` repeats the whole reason: four times the work (1.4 M rows, 2 cores: 7.2 s against
    1.7 s; see README "Benchmarks").
    """
    texts = raw.select("*", *[_text(name).alias(f"_s_{name}") for name in FIELDS])
    typed = texts.select(
        "*",
        *[
            F.expr(f"try_cast(_s_{name} AS TIMESTAMP_NTZ)").alias(f"_t_{name}")
            for name in ("create_at", "product_expire")
        ],
    )
    create_at, expire = F.col("_t_create_at"), F.col("_t_product_expire")
    reason = (
        F.when(F.size("_absent") > 0, "missing_column")
        .when(F.col("_s_department_name").isNull(), "missing_department")
        .when(F.col("_s_sensor_serial").isNull(), "missing_sensor_serial")
        .when(F.col("_s_product_name").isNull(), "missing_product_name")
        .when(F.col("_s_create_at").isNull(), "missing_create_at")
        .when(create_at.isNull(), "bad_create_at")
        .when(F.col("_s_product_expire").isNull(), "missing_product_expire")
        .when(expire.isNull(), "bad_product_expire")
        .when(_outside(create_at) | _outside(expire), "timestamp_out_of_range")
        .when(expire < create_at, "expire_before_create")
    )
    reasoned = typed.select(
        *raw.columns,
        *[F.col(f"_s_{name}").alias(f"_t_{name}") for name in ("department_name", "sensor_serial", "product_name")],
        "_t_create_at",
        "_t_product_expire",
        reason.alias("reason"),
    )
    return reasoned.select("*", F.when(F.col("reason").isNull(), RECORD).otherwise(REJECT).alias("kind"))


def _to_bronze(readings: DataFrame) -> DataFrame:
    typed = [F.col(f"_t_{f.name}").alias(f.name) for f in READING_FIELDS]
    return readings.select("ds", *typed, "_source_file", "_row_number", "_loaded_at")


def _to_rejects(rows: DataFrame) -> DataFrame:
    record = F.to_json(F.struct(*[F.col(name) for name in FIELDS], F.col("_absent"), F.col("_extra")))
    return rows.select("ds", "reason", record.alias("record"), "_source_file", "_row_number", "_loaded_at")


def _slice_files(spark, ds: str) -> list[str]:
    """The files whose rows raw slice ``ds`` holds: the slice owns every row of them, in every layer."""
    return slice_files(spark, RAW, ds)


def _exists(spark, table: str) -> bool:
    return spark.catalog.tableExists(qualified(table))


def _history(spark, ds: str, superseded: Sequence[str]) -> DataFrame | None:
    """The readings of bronze's earlier slices, without the rows of the slice's files (read again by this run)."""
    if not _exists(spark, BRONZE):
        return None
    earlier = spark.table(qualified(BRONZE)).where(F.col("ds") < F.lit(ds).cast("date"))
    if superseded:
        files = spark.createDataFrame([(p,) for p in superseded], "_source_file string")
        earlier = earlier.join(F.broadcast(files), "_source_file", "left_anti")
    return earlier.select(*[F.col(c).alias(f"_t_{c}") for c in KEY])


LAYER = Layer(
    DOMAIN, Target(RAW, RAW_SCHEMA), Target(BRONZE, BRONZE_SCHEMA), Target(REJECTS, REJECTS_SCHEMA),
    parse=parse, key=tuple(f"_t_{c}" for c in KEY), order=("_source_file", "_row_number"), unit="rows",
    to_bronze=_to_bronze, to_rejects=_to_rejects, history=_history, superseded=_slice_files,
)  # fmt: skip


def classify(raw: DataFrame, history: DataFrame | None = None) -> DataFrame:
    """Parse and validate raw rows; ``kind`` is record, duplicate or reject.

    The first valid row of a reading (``KEY``) in the slice, by file then row number, is the record; further valid
    rows of it are duplicates, as is a reading already in ``history`` (bronze's earlier slices, bronze columns).
    Rejects never take a valid reading's place: validation comes first.
    """
    seen = None if history is None else history.select(*[F.col(c).alias(f"_t_{c}") for c in KEY])
    return LAYER.classify(raw, seen)


def accepted(classified: DataFrame) -> DataFrame:
    """The typed readings a slice adds to bronze."""
    return LAYER.accepted(classified)


def rejected(classified: DataFrame) -> DataFrame:
    """Every refused row with its reason and its raw values (and the file's absent columns) as JSON."""
    return LAYER.rejected(classified)


def shelf_life_days(expire, create_at) -> object:
    """``expire - create_at`` in (fractional) days, from two zone-less timestamps."""
    return F.expr(f"timestampdiff(MICROSECOND, {create_at}, {expire})") / (SECONDS_PER_DAY * 1_000_000)


def master_rows(bronze: DataFrame) -> DataFrame:
    """Bronze readings -> ``product_master`` rows (the same slice): every distinct reading and its shelf life."""
    return bronze.select(
        "ds",
        *[f.name for f in READING_FIELDS],
        shelf_life_days("product_expire", "create_at").alias("shelf_life_days"),
        "_source_file",
    )


def by_department(master: DataFrame, ds: str) -> DataFrame:
    """Slice ``ds`` of ``products_by_department``: per department and reading day, over the whole master."""
    return (
        master.groupBy("department_name", F.to_date("create_at").alias("day"))
        .agg(
            F.countDistinct("product_name").alias("products"),
            F.countDistinct("sensor_serial").alias("sensors"),
            F.count("*").alias("readings"),
        )
        .select(F.lit(ds).cast("date").alias("ds"), "*")
    )


def shelf_life(master: DataFrame, ds: str) -> DataFrame:
    """Slice ``ds`` of ``product_shelf_life``: the distribution of shelf life in whole days over the whole master."""
    return (
        master.groupBy(F.floor("shelf_life_days").cast("int").alias("shelf_life_days"))
        .agg(
            F.count("*").alias("readings"),
            F.countDistinct("department_name", "product_name").alias("products"),
            F.avg("shelf_life_days").alias("avg_shelf_life_days"),
        )
        .select(F.lit(ds).cast("date").alias("ds"), "*")
    )


def expiring(master: DataFrame, ds: str, horizons: Sequence[int] = HORIZONS) -> DataFrame:
    """Slice ``ds`` of ``products_expiring``: per department, products whose latest reading expires within N days.

    "Now" (``as_of``) is the latest ``create_at`` in the master, the feed's own clock, so the figures do not
    depend on when the job runs. A product's latest reading (per sensor) holds its current expiry.
    """
    latest = Window.partitionBy("department_name", "sensor_serial", "product_name").orderBy(F.desc("create_at"))
    current = master.withColumn("_rank", F.row_number().over(latest)).where(F.col("_rank") == 1)
    as_of = master.agg(F.max("create_at").alias("as_of"))
    windows = master.sparkSession.createDataFrame([(n,) for n in horizons], "within_days int")
    grid = current.select("department_name").distinct().crossJoin(windows).crossJoin(as_of)
    due = (
        current.crossJoin(as_of)
        .crossJoin(windows)
        .where(
            F.expr("timestampdiff(SECOND, as_of, product_expire)").between(0, F.col("within_days") * SECONDS_PER_DAY)
        )
        .groupBy("department_name", "within_days")
        .agg(F.countDistinct("product_name").alias("products"), F.count("*").alias("readings"))
    )
    return grid.join(due, ["department_name", "within_days"], "left").select(
        F.lit(ds).cast("date").alias("ds"),
        "department_name",
        "within_days",
        "as_of",
        F.coalesce("products", F.lit(0)).cast("long").alias("products"),
        F.coalesce("readings", F.lit(0)).cast("long").alias("readings"),
    )


# --- jobs ------------------------------------------------------------------------------------------


def read_footers(spark, files: Sequence[LandedFile]) -> dict[str, tuple[str, int]]:
    """Each file's (schema text, row count) from its footer; a few at a time, as each is a round trip to S3."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        footers = pool.map(lambda f: parquet_footer(spark, f.path, f.size), files)
        return {file.path: footer for file, footer in zip(files, footers, strict=True)}


def landed_folder(paths: Sequence[str]) -> str:
    """The deepest folder holding every one of ``paths`` (URIs), with a trailing ``/``."""
    common = paths[0].split("/")[:-1]
    for path in paths[1:]:
        parts = path.split("/")[:-1]
        same = 0
        while same < min(len(common), len(parts)) and common[same] == parts[same]:
            same += 1
        common = common[:same]
    return "/".join(common) + "/"


def read_files(spark, files: Sequence[LandedFile], ds: str) -> tuple[DataFrame, dict[str, int]]:
    """Raw rows of ``files`` (read in groups of one Parquet schema), and each file's row count from its footer.

    Each group is read from the folder that holds the files, keeping only the group's files by
    ``_metadata.file_path``: Spark lists the folder (a few LIST requests) and prunes the others before reading,
    where naming thousands of files would cost a HEAD request or more for each before any is read. The group's
    schema is given, so Spark does not infer one from some other file of the folder.
    """
    footers = read_footers(spark, files)
    groups: dict[str, list[str]] = {}
    for path, (file_schema, _) in footers.items():
        groups.setdefault(file_schema, []).append(path)
    folder = glob_escaped(landed_folder([f.path for f in files]))
    frames = []
    for paths in groups.values():
        file_schema = spark.read.parquet(glob_escaped(paths[0])).schema
        uris = list(scanned_uris(spark, paths))
        scanned = (
            spark.read.schema(file_schema)
            .option("recursiveFileLookup", "true")
            .parquet(folder)
            .where(F.col("_metadata.file_path").isin(uris))
            .select(
                "*",
                F.col("_metadata.file_path").alias("_source_file"),
                (F.col("_metadata.row_index") + 1).alias("_row_number"),
            )
        )
        frames.append(to_raw(with_listed_paths(scanned, "_source_file", paths), ds))
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    log.info("reading %d files in %d schema groups under %s", len(files), len(groups), folder)
    return union, {path: rows for path, (_, rows) in footers.items()}


FEED = LandedFeed(
    domain=DOMAIN,
    raw=RAW,
    raw_schema=RAW_SCHEMA,
    suffix=".parquet",
    read=read_files,
    position="_row_number",
    unit="rows",
    replace_everywhere=True,
)


def run_raw(spark, ds: str, *, prefix: str = LANDING_PREFIX, landing_bucket: str = "landing") -> dict:
    """Add the rows of new or changed files under ``landing/<prefix>`` to ``raw.products`` slice ``ds``.

    A file whose ETag and size match its last processed version is skipped. The rows of a file processed again
    replace its earlier rows, in this slice and in any older one.
    """
    return load_landed(spark, FEED, ds, prefix=prefix, landing_bucket=landing_bucket)


def run_bronze(spark, ds: str, *, max_reject_ratio: float = 0.1) -> Reconciliation:
    """Type and validate the slice, keep each reading once; refuse to publish when too many rows fail."""
    return run_layer(spark, LAYER, ds, max_reject_ratio=max_reject_ratio)


# Fast-forwarded in this order: the aggregates, then the master they were computed from (a retry recomputes all).
GOLD_SCHEMAS = {
    BY_DEPARTMENT: BY_DEPARTMENT_SCHEMA,
    SHELF_LIFE: SHELF_LIFE_SCHEMA,
    EXPIRING: EXPIRING_SCHEMA,
    MASTER: MASTER_SCHEMA,
}


def run_gold(spark, ds: str) -> dict:
    """Rebuild ``gold.product_master`` slice ``ds`` from bronze, and the aggregates as of the end of day ``ds``.

    The master slice holds the readings of the files run ``ds`` read (a file read again takes its rows out of every
    older slice). The aggregates are computed over the readings of the whole master created before the end of
    ``ds``, so a day's figures depend on the files landed and on the day, not on the order the days ran in: a
    backfill's first run reads every landed file, and each day's aggregates still count only that day's past.
    Every table is written to the run's branch and published after an audit (``wap.GoldRun``), the master last;
    a table whose slices come out the same keeps its snapshot (a re-run changes nothing).
    """
    bronze = read_slice(spark, BRONZE, ds) if _exists(spark, BRONZE) else spark.createDataFrame([], BRONZE_SCHEMA)
    ensure_table(spark, MASTER, MASTER_SCHEMA)
    files = _slice_files(spark, ds)
    moved = superseded_slices(spark, MASTER, files, ds)
    if moved:
        ops.record_slice_changes(spark, MASTER, ds, moved)
    new = master_rows(bronze).persist()
    try:
        counts = _write_gold(spark, ds, new, files)
    finally:
        new.unpersist()
    counts["moved_from_slices"] = sorted(str(d) for d in moved)
    log.info("gold products ds=%s: %s", ds, counts)
    return counts


def as_of(master: DataFrame, ds: str) -> DataFrame:
    """The readings of ``master`` created before the end of day ``ds`` (UTC, as the feed's zone-less hours)."""
    end = F.date_add(F.lit(ds).cast("date"), 1).cast("timestamp")
    return master.where(F.col("create_at") < end)


def _write_gold(spark, ds: str, new: DataFrame, files: Sequence[str]) -> dict:
    """Write the aggregates over (the other slices without ``files``) + ``new``, then the master; publish them."""
    run = GoldRun(spark, DOMAIN, ds, GOLD_SCHEMAS)
    others = run.table(MASTER).where(F.col("ds") != F.lit(ds).cast("date"))
    if files:
        superseded = spark.createDataFrame([(p,) for p in files], "_source_file string")
        others = others.join(F.broadcast(superseded), "_source_file", "left_anti")
    whole = others.select(*new.columns).unionByName(new).persist()
    try:
        past = as_of(whole, ds)
        for table, build in ((BY_DEPARTMENT, by_department), (SHELF_LIFE, shelf_life), (EXPIRING, expiring)):
            run.replace_slice(build(past, ds), table, ds)
        master_count = whole.count()
    finally:
        whole.unpersist()
    run.touch(MASTER, drop_superseded(spark, MASTER, MASTER_SCHEMA, files, ds, branch=run.branch))
    run.replace_slice(new, MASTER, ds)
    published = run.publish()
    return {"master_rows": master_count, "master_slice_rows": published[MASTER]}


JOBS = layers(Job(run_raw, [PREFIX_OPTION], needs_landing_bucket=True), run_bronze, run_gold, max_reject_ratio=0.1)
