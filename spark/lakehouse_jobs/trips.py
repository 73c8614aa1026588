"""Trips: taxi-trip CSV files in landing/trips/ -> raw.trips -> bronze.trips (+ rejects) -> gold trips, trips_daily."""

# Files land at any time, under any name ending in `.csv`, anywhere below the prefix. `ops.processed_files`
# (lakehouse_jobs.landed_files) remembers the versions (path, ETag, size) already read, so raw reads only new or
# changed files, and a changed file's lines replace its earlier lines in the run's slice.
#
# Raw keeps every line of a file, the header included (line 1), split on commas into the ten columns as received.
# A line that does not split into exactly ten fields is kept too: `_field_count` says how many it had and `_line`
# holds its text, so bronze can refuse it with a reason instead of the job failing. Each file's raw lines are
# checked against a line count taken independently on the driver (a Java LineNumberReader over the object).
#
# Bronze trims each value and drops one pair of surrounding double quotes (a quoted field holding a comma is not
# supported: no column of this feed has one, so such a line is `wrong_column_count`). Reasons, first match wins
# (every line of a file whose line 1 is not the header is refused):
#   bad_header             line 1 of the file is not the expected header
#   blank_line             an empty line
#   repeated_header        the header again after line 1 (files concatenated)
#   wrong_column_count     not exactly ten comma-separated fields
#   bad_pickup_datetime    missing, or not a valid `YYYY-MM-DD HH:MM:SS` (UTC) of the years 1900..2099
#   bad_dropoff_datetime   same for the dropoff
#   dropoff_before_pickup  dropoff earlier than pickup
#   zero_duration          dropoff at the pickup second
#   bad_passenger_count    not a whole number 0..9 (an empty value is accepted as unknown)
#   bad_distance           missing or not a finite number
#   non_positive_distance  zero or negative distance
#   implausible_distance   more than 500 miles (odometer glitches)
#   missing_coordinates    a longitude or latitude empty or exactly 0 (how the feeds write "no GPS fix")
#   bad_coordinates        a longitude or latitude that is not a finite number
#   outside_service_area   pickup or dropoff outside longitude -74.30..-73.65, latitude 40.45..40.95
#   bad_fare / negative_fare     fare missing or not a decimal of at most 7 integer digits / below zero
#   bad_total / negative_total   the same for the total amount
#   total_below_fare       total amount below the fare (the total includes the fare)
#
# `trip_id` is the SHA-256 of the typed values, normalised (timestamps to the second, doubles to 6 decimals,
# amounts to cents), so "2.5" and "2.50" are the same trip. A trip seen earlier in the slice (by file, then line)
# or in an earlier bronze slice is a duplicate. gold.trips is the accepted slice with derived columns;
# gold.trips_daily slice ds is a snapshot per pickup day over every gold.trips slice up to ds.

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from pyspark.sql import Column, DataFrame, Window
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
from lakehouse_jobs.bronze import HEADER as HEADER_LINE
from lakehouse_jobs.iceberg import ensure_table, qualified, read_slice, replace_slice
from lakehouse_jobs.job import Job
from lakehouse_jobs.landed_files import (
    LandedFile,
    landing_uri,
    list_landed,
    plan_files,
    read_processed,
    record_processed,
)
from lakehouse_jobs.lines import number_lines

log = logging.getLogger(__name__)

DOMAIN = "trips"
LANDING_PREFIX = "trips/"
SUFFIX = ".csv"
COLUMNS = (
    "pickup_datetime", "dropoff_datetime", "passenger_count", "trip_distance", "pickup_longitude", "pickup_latitude",
    "dropoff_longitude", "dropoff_latitude", "fare_amount", "total_amount",
)  # fmt: skip
HEADER = ",".join(COLUMNS)
COORDINATES = ("pickup_longitude", "pickup_latitude", "dropoff_longitude", "dropoff_latitude")
# The NYC service area: (lowest, highest) longitude and latitude, bounds included.
LONGITUDE = (-74.30, -73.65)
LATITUDE = (40.45, 40.95)
MAX_PASSENGERS = 9
MAX_DISTANCE = 500.0  # miles

RAW = "raw.trips"
BRONZE = "bronze.trips"
REJECTS = "bronze.trips_rejects"
GOLD_TRIPS = "gold.trips"
GOLD_DAILY = "gold.trips_daily"

AMOUNT = T.DecimalType(10, 2)
LINEAGE = [
    T.StructField("_source_file", T.StringType(), False),
    T.StructField("_line_number", T.LongType(), False),
    T.StructField("_loaded_at", T.TimestampType(), False),
]
RAW_SCHEMA = T.StructType(
    [T.StructField("ds", T.DateType(), False)]
    + [T.StructField(name, T.StringType()) for name in COLUMNS]
    + [
        T.StructField("_field_count", T.IntegerType(), False),
        T.StructField("_line", T.StringType()),  # the line as received, when it is not ten fields
    ]
    + LINEAGE
)
TRIP_FIELDS = [
    T.StructField("trip_id", T.StringType(), False),
    T.StructField("pickup_at", T.TimestampType(), False),
    T.StructField("dropoff_at", T.TimestampType(), False),
    T.StructField("passenger_count", T.IntegerType()),
    T.StructField("trip_distance", T.DoubleType(), False),
    T.StructField("pickup_longitude", T.DoubleType(), False),
    T.StructField("pickup_latitude", T.DoubleType(), False),
    T.StructField("dropoff_longitude", T.DoubleType(), False),
    T.StructField("dropoff_latitude", T.DoubleType(), False),
    T.StructField("fare_amount", AMOUNT, False),
    T.StructField("total_amount", AMOUNT, False),
]
BRONZE_SCHEMA = T.StructType([T.StructField("ds", T.DateType(), False), *TRIP_FIELDS, *LINEAGE])
REJECTS_SCHEMA = T.StructType(
    [
        T.StructField("ds", T.DateType(), False),
        T.StructField("reason", T.StringType(), False),
        T.StructField("record", T.StringType()),  # the raw values as JSON (with `_line` for a malformed line)
        *LINEAGE,
    ]
)
GOLD_TRIPS_SCHEMA = T.StructType(
    [
        T.StructField("ds", T.DateType(), False),
        T.StructField("trip_id", T.StringType(), False),
        T.StructField("pickup_at", T.TimestampType(), False),
        T.StructField("dropoff_at", T.TimestampType(), False),
        T.StructField("pickup_date", T.DateType(), False),
        T.StructField("passenger_count", T.IntegerType()),
        T.StructField("trip_distance", T.DoubleType(), False),
        T.StructField("duration_minutes", T.DoubleType(), False),
        T.StructField("pickup_longitude", T.DoubleType(), False),
        T.StructField("pickup_latitude", T.DoubleType(), False),
        T.StructField("dropoff_longitude", T.DoubleType(), False),
        T.StructField("dropoff_latitude", T.DoubleType(), False),
        T.StructField("fare_amount", AMOUNT, False),
        T.StructField("total_amount", AMOUNT, False),
    ]
)
GOLD_DAILY_SCHEMA = T.StructType(
    [
        T.StructField("ds", T.DateType(), False),
        T.StructField("pickup_date", T.DateType(), False),
        T.StructField("trips", T.LongType(), False),
        T.StructField("average_distance", T.DoubleType(), False),
        T.StructField("average_fare", T.DoubleType(), False),
        T.StructField("total_fare", T.DecimalType(18, 2), False),
    ]
)

# Kinds of raw line after classification.


_DATETIME = r"^(19|20)[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"  # years 1900..2099
_NUMBER = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_WHOLE = r"^[+-]?[0-9]+(\.0*)?$"  # "1", or "1.0" from a feed that went through a float column
_AMOUNT = r"^[+-]?([0-9]{1,7}(\.[0-9]*)?|\.[0-9]+)$"  # fits DECIMAL(10,2) once rounded to cents


# --- pure transformations ----------------------------------------------------------------------


def to_raw(lines: DataFrame, ds: str) -> DataFrame:
    """Numbered lines (``line``, ``_source_file``, ``_line_number``) -> raw rows of slice ``ds``.

    The line is split on commas; the ten columns take the first ten fields as received (missing ones NULL), and a
    line of any other number of fields keeps its text in ``_line``.
    """
    parts = F.split(F.col("line"), ",", -1)
    count = F.size(parts)
    return lines.select(
        F.lit(ds).cast("date").alias("ds"),
        *[F.get(parts, i).alias(name) for i, name in enumerate(COLUMNS)],
        count.cast("int").alias("_field_count"),
        F.when(count != len(COLUMNS), F.col("line")).alias("_line"),
        "_source_file",
        F.col("_line_number").cast("long").alias("_line_number"),
        F.current_timestamp().alias("_loaded_at"),
    )


def _clean(name: str) -> Column:
    """The raw value trimmed, one pair of surrounding double quotes removed; NULL when empty."""
    value = F.trim(F.regexp_replace(F.trim(F.col(name)), r'^"(.*)"$', "$1"))
    return F.when(value != "", value)


def _number(value: Column) -> Column:
    """A finite double from its text, else NULL."""
    number = F.when(value.rlike(_NUMBER), value.cast("double"))
    return F.when(F.abs(number) < F.lit(float("inf")), number)


def _amount(value: Column) -> Column:
    """An amount in cents (half up) from its text, else NULL."""
    return F.when(value.rlike(_AMOUNT), value.cast(AMOUNT))


def _normalised(column: Column, data_type: str) -> Column:
    """The text a typed value contributes to ``trip_id``; empty for NULL so the fields never shift."""
    return F.coalesce(column.cast(data_type).cast("string"), F.lit(""))


def _value(name: str) -> Column:
    """The cleaned value of a raw column (see ``parse``)."""
    return F.col(f"_v_{name}")


def _header_line() -> Column:
    """The line is the header: ten fields naming the columns (case and a UTF-8 byte order mark ignored)."""
    matches = F.col("_field_count") == len(COLUMNS)
    for name in COLUMNS:
        value = F.lower(F.regexp_replace(_value(name), "^\ufeff", ""))
        matches = matches & value.eqNullSafe(F.lit(name))
    return matches


def _typed_values() -> dict[str, Column]:
    """The trip columns typed from the cleaned values; NULL where a value does not parse."""
    pickup, dropoff = _value("pickup_datetime"), _value("dropoff_datetime")
    passengers = _value("passenger_count")
    return {
        "pickup_at": F.when(pickup.rlike(_DATETIME), F.try_to_timestamp(pickup)),
        "dropoff_at": F.when(dropoff.rlike(_DATETIME), F.try_to_timestamp(dropoff)),
        "passenger_count": F.when(passengers.rlike(_WHOLE), passengers.cast("double")),  # an int once checked
        "trip_distance": _number(_value("trip_distance")),
        **{name: _number(_value(name)) for name in COORDINATES},
        "fare_amount": _amount(_value("fare_amount")),
        "total_amount": _amount(_value("total_amount")),
    }


def _reason() -> Column:
    """The first rule a line breaks (see the module comment), NULL for a valid trip or the file's header."""
    t = {name: F.col(f"_t_{name}") for name in ("pickup_at", "dropoff_at", "passenger_count", "trip_distance")}
    t.update({name: F.col(f"_t_{name}") for name in (*COORDINATES, "fare_amount", "total_amount")})
    missing_point, bad_point, outside = F.lit(False), F.lit(False), F.lit(False)
    for name in COORDINATES:
        missing_point = missing_point | _value(name).isNull() | (t[name] == 0)
        bad_point = bad_point | t[name].isNull()
        outside = outside | _outside(t[name], LONGITUDE if name.endswith("longitude") else LATITUDE)
    passengers = t["passenger_count"]
    blank = (F.col("_field_count") == 1) & F.coalesce(F.trim(F.col(COLUMNS[0])) == "", F.lit(True))
    return (
        F.when(~F.col("_file_has_header"), "bad_header")
        .when(F.col("_header"), F.lit(None))
        .when(blank, "blank_line")
        .when(F.col("_header_like"), "repeated_header")
        .when(F.col("_field_count") != len(COLUMNS), "wrong_column_count")
        .when(t["pickup_at"].isNull(), "bad_pickup_datetime")
        .when(t["dropoff_at"].isNull(), "bad_dropoff_datetime")
        .when(t["dropoff_at"] < t["pickup_at"], "dropoff_before_pickup")
        .when(t["dropoff_at"] == t["pickup_at"], "zero_duration")
        .when(
            _value("passenger_count").isNotNull()
            & (passengers.isNull() | (passengers < 0) | (passengers > MAX_PASSENGERS)),
            "bad_passenger_count",
        )
        .when(t["trip_distance"].isNull(), "bad_distance")
        .when(t["trip_distance"] <= 0, "non_positive_distance")
        .when(t["trip_distance"] > MAX_DISTANCE, "implausible_distance")
        .when(missing_point, "missing_coordinates")
        .when(bad_point, "bad_coordinates")
        .when(outside, "outside_service_area")
        .when(t["fare_amount"].isNull(), "bad_fare")
        .when(t["fare_amount"] < 0, "negative_fare")
        .when(t["total_amount"].isNull(), "bad_total")
        .when(t["total_amount"] < 0, "negative_total")
        .when(t["total_amount"] < t["fare_amount"], "total_below_fare")
    )


def _outside(column: Column, bounds: tuple[float, float]) -> Column:
    return (column < bounds[0]) | (column > bounds[1])


def parse(raw: DataFrame) -> DataFrame:
    """Raw rows + ``_header`` + typed trip columns (prefixed ``_t_``) + ``reason`` (NULL for a valid trip or header).

    Built in steps (cleaned values, typed values, reason) so that each value is cleaned and parsed once: inlined
    into one expression, the rules outgrow the 64 KB Java method Spark generates code into.
    """
    cleaned = raw.select("*", *[_clean(name).alias(f"_v_{name}") for name in COLUMNS])
    header = _header_line()
    typed = cleaned.select(
        "*",
        ((F.col("_line_number") == 1) & header).alias("_header"),
        header.alias("_header_like"),
        *[value.alias(f"_t_{name}") for name, value in _typed_values().items()],
    )
    typed = typed.withColumn("_file_has_header", F.max("_header").over(Window.partitionBy("_source_file")))
    checked = typed.withColumn("reason", _reason())
    return checked.withColumn("_t_passenger_count", F.col("_t_passenger_count").cast("int")).drop(
        *[f"_v_{name}" for name in COLUMNS], "_header_like", "_file_has_header"
    )


def trip_id(prefix: str = "_t_") -> Column:
    """SHA-256 hex of the normalised typed values: timestamps to the second, doubles to 6 decimals, amounts to cents.

    Args:
        prefix: the prefix of the typed columns (``_t_`` in ``parse``'s output, empty on bronze rows).
    """
    parts = []
    for field in TRIP_FIELDS[1:]:
        column = F.col(prefix + field.name)
        if isinstance(field.dataType, T.TimestampType):
            parts.append(F.coalesce(F.date_format(column, "yyyy-MM-dd HH:mm:ss"), F.lit("")))
        elif isinstance(field.dataType, T.DoubleType):
            parts.append(_normalised(column, "decimal(18,6)"))
        else:
            parts.append(_normalised(column, field.dataType.simpleString()))
    return F.sha2(F.concat_ws("|", *parts), 256)


def classify(raw: DataFrame, history: DataFrame | None = None) -> DataFrame:
    """Parse and validate raw lines; ``kind`` is header, record, duplicate or reject.

    The first valid occurrence of a ``trip_id`` in the slice (by file, then line) is the record; later ones are
    duplicates, as are trips whose id is in ``history`` (the ``trip_id`` of bronze's earlier slices).
    """
    parsed = parse(raw)
    valid = ~F.col("_header") & F.col("reason").isNull()
    parsed = parsed.withColumn("trip_id", F.when(valid, trip_id()))
    if history is not None:
        seen = history.select("trip_id", F.lit(True).alias("_seen")).distinct()
        parsed = parsed.join(seen, "trip_id", "left")
    else:
        parsed = parsed.withColumn("_seen", F.lit(None).cast("boolean"))
    first = Window.partitionBy("trip_id").orderBy("_source_file", "_line_number")
    occurrence = F.when(valid, F.row_number().over(first))
    return parsed.withColumn(
        "kind",
        F.when(F.col("_header"), HEADER_LINE)
        .when(F.col("reason").isNotNull(), REJECT)
        .when(F.col("_seen").isNull() & (occurrence == 1), RECORD)
        .otherwise(DUPLICATE),
    ).drop("_seen")


def accepted(classified: DataFrame) -> DataFrame:
    """The typed, de-duplicated trips a slice adds to bronze."""
    typed = [F.col(f"_t_{f.name}").alias(f.name) for f in TRIP_FIELDS[1:]]
    return classified.where(F.col("kind") == RECORD).select("ds", "trip_id", *typed, *[f.name for f in LINEAGE])


def rejected(classified: DataFrame) -> DataFrame:
    """Every refused line with its reason and its raw values as JSON (``_line`` too when it was malformed)."""
    record = F.to_json(F.struct(*[F.col(name) for name in COLUMNS], F.col("_line")))
    return classified.where(F.col("kind") == REJECT).select(
        "ds", "reason", record.alias("record"), *[f.name for f in LINEAGE]
    )


def gold_trips(bronze: DataFrame) -> DataFrame:
    """Bronze trips with their pickup day (UTC) and duration in minutes."""
    seconds = F.col("dropoff_at").cast("long") - F.col("pickup_at").cast("long")
    return bronze.select(
        "ds",
        "trip_id",
        "pickup_at",
        "dropoff_at",
        F.to_date("pickup_at").alias("pickup_date"),
        "passenger_count",
        "trip_distance",
        (seconds / 60.0).alias("duration_minutes"),
        *COORDINATES,
        "fare_amount",
        "total_amount",
    )


def trips_daily(trips: DataFrame, ds: str) -> DataFrame:
    """Slice ``ds`` of ``trips_daily``: per pickup day, over every ``gold.trips`` slice up to ``ds``.

    Averages are taken over exact decimals (distance to 6 decimals) and rounded half up to 4 decimals, so they do
    not depend on the order Spark adds the rows in.
    """
    day = F.lit(ds).cast("date")
    return (
        trips.where(F.col("ds") <= day)
        .groupBy("pickup_date")
        .agg(
            F.count("*").alias("trips"),
            F.round(F.avg(F.col("trip_distance").cast("decimal(18,6)")), 4).cast("double").alias("average_distance"),
            F.round(F.avg("fare_amount"), 4).cast("double").alias("average_fare"),
            F.sum("fare_amount").cast("decimal(18,2)").alias("total_fare"),
        )
        .select(day.alias("ds"), "*")
    )


# --- reconciliation ------------------------------------------------------------------------------


class LandingMismatch(RuntimeError):
    """Raw holds a different number of lines for a file than the file has."""


# --- jobs ------------------------------------------------------------------------------------------


def _source_paths(spark, paths: Sequence[str]) -> dict[str, str]:
    """Spark reports a scanned file as its URL-encoded URI (a space is ``%20``); map those back to the listed paths."""
    jvm = spark.sparkContext._jvm
    encoded = {str(jvm.org.apache.hadoop.fs.Path(p).toUri().toString()): p for p in paths}
    return {uri: p for uri, p in encoded.items() if uri != p}


def read_lines(spark, paths: Sequence[str]) -> DataFrame:
    """Every line of ``paths`` with ``_source_file`` (the path as listed) and ``_line_number`` (1-based)."""
    scanned = spark.read.text(list(paths)).select(
        F.col("value").alias("line"),
        F.input_file_name().alias("_source_file"),
        F.input_file_block_start().alias("_block_start"),
        F.monotonically_increasing_id().alias("_row_id"),
    )
    lines = number_lines(scanned)
    renamed = _source_paths(spark, paths)
    if not renamed:
        return lines
    lookup = F.create_map(*[F.lit(x) for pair in renamed.items() for x in pair])
    return lines.withColumn("_source_file", F.coalesce(lookup[F.col("_source_file")], F.col("_source_file")))


def count_lines(spark, path: str) -> int:
    """Lines in a file, counted on the driver as Hadoop's line reader splits them (LF, CR or CRLF)."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    stream = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).open(hadoop_path)
    reader = jvm.java.io.LineNumberReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
    try:
        # Since Java 16 a last line without a terminator counts too, as it does for Hadoop (the image runs 17).
        reader.skip((1 << 63) - 1)
        return int(reader.getLineNumber())
    finally:
        reader.close()


def _check_lines(spark, ds: str, expected: Mapping[str, int]) -> None:
    """Fail unless the slice holds exactly lines 1..n of each file, n being the file's own line count."""
    written = {
        r["_source_file"]: (r["n"], r["last"])
        for r in read_slice(spark, RAW, ds)
        .where(F.col("_source_file").isin(list(expected)))
        .groupBy("_source_file")
        .agg(F.count("*").alias("n"), F.max("_line_number").alias("last"))
        .collect()
    }
    wrong = {}
    for path, lines in expected.items():
        got = written.get(path, (0, None))
        if got != (lines, lines or None):
            wrong[path] = (got, lines)
    if wrong:
        path, ((count, last), lines) = next(iter(wrong.items()))
        raise LandingMismatch(
            f"raw lines != file lines for {len(wrong)} files, e.g. {path}: {count} lines (last {last}) of {lines}"
        )


def run_raw(spark, ds: str, *, prefix: str = LANDING_PREFIX, landing_bucket: str = "landing") -> dict:
    """Add the lines of new or changed ``*.csv`` files under ``landing/<prefix>`` to ``raw.trips`` slice ``ds``.

    A file whose ETag and size match its last processed version is skipped. The lines of a file processed again
    replace its earlier lines in the slice; the slice's other lines stay.
    """
    source = landing_uri(prefix, landing_bucket)
    landed = list_landed(spark, source, suffix=SUFFIX)
    todo: list[LandedFile] = plan_files(landed, read_processed(spark, DOMAIN))
    summary = {"landed_files": len(landed), "new_files": len(todo), "new_lines": 0}
    if not todo:
        log.info("raw.trips ds=%s: nothing new among %d files under %s", ds, len(landed), source)
        return summary
    paths = [f.path for f in todo]
    expected = {p: count_lines(spark, p) for p in paths}
    ensure_table(spark, RAW, RAW_SCHEMA)
    kept = read_slice(spark, RAW, ds).where(~F.col("_source_file").isin(paths))
    replace_slice(kept.unionByName(to_raw(read_lines(spark, paths), ds)), RAW, RAW_SCHEMA, ds)
    _check_lines(spark, ds, expected)
    record_processed(spark, DOMAIN, todo, expected, ds)
    summary["new_lines"] = sum(expected.values())
    log.info("raw.trips ds=%s: %s", ds, summary)
    return summary


def _exists(spark, table: str) -> bool:
    return spark.catalog.tableExists(qualified(table))


def run_bronze(spark, ds: str, *, max_reject_ratio: float = 0.1) -> Reconciliation:
    """Type, validate and de-duplicate the slice's trips; refuse to publish it when too many lines are rejected."""
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
            unit="lines",
        )
    finally:
        classified.unpersist()


def run_gold(spark, ds: str) -> dict[str, int]:
    """Replace slice ``ds`` of ``gold.trips`` with the bronze slice; rebuild the ``trips_daily`` snapshot for ``ds``."""
    bronze = read_slice(spark, BRONZE, ds) if _exists(spark, BRONZE) else spark.createDataFrame([], BRONZE_SCHEMA)
    replace_slice(gold_trips(bronze), GOLD_TRIPS, GOLD_TRIPS_SCHEMA, ds)
    trips = spark.table(qualified(GOLD_TRIPS))
    replace_slice(trips_daily(trips, ds), GOLD_DAILY, GOLD_DAILY_SCHEMA, ds)
    counts = {
        GOLD_TRIPS: read_slice(spark, GOLD_TRIPS, ds).count(),
        GOLD_DAILY: read_slice(spark, GOLD_DAILY, ds).count(),
    }
    log.info("gold trips ds=%s: %s", ds, counts)
    return counts


JOBS = {
    "raw": Job(
        run_raw,
        [("--prefix", {"help": "files to read: a key prefix in the landing bucket (trips/), or a full URI"})],
        needs_landing_bucket=True,
    ),
    "bronze": Job(
        run_bronze,
        [("--max-reject-ratio", {"type": float, "default": 0.1, "help": "fail above this share of rejected lines"})],
    ),
    "gold": Job(run_gold),
}
