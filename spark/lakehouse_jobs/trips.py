"""Trips: CSV files in landing/trips/ -> raw.trips -> bronze.trips (+ rejects) -> gold trips, cells, groups, weekly."""

# The feed: CSV files with the header `region,origin_coord,destination_coord,datetime,datasource`; coordinates are
# WKT points `POINT (longitude latitude)` (WGS 84), datetimes `YYYY-MM-DD HH:MM:SS` without a zone, read as UTC.
#
# Files land at any time, under any name ending in `.csv`, anywhere below the prefix. `ops.processed_files`
# (lakehouse_jobs.landed_files) remembers the versions (path, ETag, size) already read, so raw reads only new or
# changed files, and a changed file's lines replace its earlier lines in the run's slice.
#
# Raw keeps every line of a file, the header included (line 1), split on commas into the five columns as received
# (no field of the feed holds a comma: a WKT point separates its numbers with a space). A line that does not split
# into exactly five fields is kept too: `_field_count` says how many it had and `_line` holds its text. Each file's
# raw lines are checked against a line count taken independently on the driver.
#
# Bronze trims each value and drops one pair of surrounding double quotes. Reasons, first match wins (every line of
# a file whose line 1 is not the header is refused):
#   bad_header                line 1 of the file is not the expected header
#   blank_line                an empty line
#   repeated_header           the header again after line 1 (files concatenated)
#   wrong_column_count        not exactly five comma-separated fields (a field missing, or one too many)
#   missing_region            empty region
#   bad_region                a region that is not a name (letters, then letters, spaces, `.`, `'`, `-`)
#   bad_origin_coord          origin_coord is not a WKT `POINT (lon lat)` of two finite numbers
#   bad_destination_coord     the same for destination_coord
#   origin_out_of_range       origin longitude outside -180..180 or latitude outside -90..90
#   destination_out_of_range  the same for the destination
#   bad_datetime              missing, or not a valid `YYYY-MM-DD HH:MM:SS` of the years 1900..2099
#   missing_datasource        empty datasource
#   bad_datasource            a datasource that is not a name (letters, digits, `_`, `.`, `-`, spaces)
#
# `trip_id` is the SHA-256 of the typed values (region, the four coordinates rounded half up to 9 decimals, the
# datetime to the second, datasource), so `POINT (14.5 50)` and `POINT(14.50 50.0)` are the same trip. Validation
# comes first: only a valid line can be a duplicate, of the first valid occurrence of its trip in the slice (by
# file, then line) or of a trip bronze accepted in an earlier slice from a file that has not been read again since
# (a changed file's trips are replaced, not kept as history).
#
# Gold. `gold.trips` is one row per trip with its `source_file`; slice ds holds the trips of the files run ds read.
# When run ds reads a file again (its content changed), the file's trips in older slices are deleted (those slices
# are recorded in `ops.slice_changes`, and the DAG announces them for serving), so a trip is counted once, from the
# file's latest version. `gold.trip_groups` and `gold.trips_weekly` slice ds are snapshots over every gold.trips
# slice up to ds, taken after that replacement, so they count a changed file once too.
#
# Similar trips (`gold.trip_groups`): the same region, origin cell, destination cell and time-of-day bucket. A cell
# is a square of a fixed grid of 0.01 degree of longitude by 0.01 degree of latitude (about 1.1 km north-south and
# 1.1 km x cos(latitude) east-west: 0.7-0.8 km in central Europe), named `<floor(lon*100)>:<floor(lat*100)>`, its
# centre at ((x + 0.5) / 100, (y + 0.5) / 100). A time bucket is one of eight 3-hour spans of the UTC day
# (`00-03`, `03-06`, ... `21-24`) holding the trip's hour.
#
# `gold.trip_origin_cells`: the trips of each gold.trips slice counted per region, origin cell and trip day, at three
# levels: 0 the whole region (cell 0:0), 2 the 0.01-degree cells above, 3 cells of 0.001 degree (`origin_fine_x`,
# `origin_fine_y` of gold.trips: floor(lon*1000), floor(lat*1000)); a level-2 cell is its fine cells' x and y
# floor-divided by 10, so the levels nest exactly. Its slice ds is rebuilt with gold.trips slice ds, and so is every
# older slice a changed file's trips left. The weekly-average question (include/api/queries.py) sums these counts for
# the cells wholly inside a box and counts trips one by one only in the cells the box's edges cut.
#
# `gold.trips_weekly`: per region and ISO week (Monday `week_start`) from the first trip day's week to the last
# one's (over all regions: the range the feed covers), `days` = the week's days inside that range (fewer at either
# end), `trips`, `days_with_trips`, and `average_trips_per_day` = trips / days rounded to 4 decimals; a region's
# week without trips is a row with 0.

from __future__ import annotations

import logging
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse_jobs import ops
from lakehouse_jobs.bronze import HEADER as HEADER_LINE
from lakehouse_jobs.bronze import RECORD, REJECT, Layer, Reconciliation, Target, run_layer
from lakehouse_jobs.iceberg import qualified, read_slice
from lakehouse_jobs.job import PREFIX_OPTION, Job, layers
from lakehouse_jobs.landed_files import (
    LandedFeed,
    LandedFile,
    glob_escaped,
    load_landed,
    slice_files,
    with_listed_paths,
)
from lakehouse_jobs.lines import number_lines
from lakehouse_jobs.schemas import DS, REASON, columns, lineage, schema
from lakehouse_jobs.wap import GoldRun

log = logging.getLogger(__name__)

DOMAIN = "trips"
LANDING_PREFIX = "trips/"
SUFFIX = ".csv"
COLUMNS = ("region", "origin_coord", "destination_coord", "datetime", "datasource")
HEADER = ",".join(COLUMNS)
CELLS_PER_DEGREE = 100  # grid cells of 0.01 degree
FINE_CELLS_PER_DEGREE = 1000  # and of 0.001 degree, for the weekly average's cell counts
# The levels of gold.trip_origin_cells.
REGION_LEVEL, COARSE_LEVEL, FINE_LEVEL = 0, 2, 3
BUCKET_HOURS = 3
# The coordinates' precision in `trip_id`: 9 decimals (0.1 mm), so a value written with more or fewer digits than
# another, or another float formatting, is the same point.
COORDINATE_KEY = "decimal(13,9)"

RAW = "raw.trips"
BRONZE = "bronze.trips"
REJECTS = "bronze.trips_rejects"
GOLD_TRIPS = "gold.trips"
GOLD_CELLS = "gold.trip_origin_cells"
GOLD_GROUPS = "gold.trip_groups"
GOLD_WEEKLY = "gold.trips_weekly"

LINEAGE = lineage("_line_number bigint")
# `_line`: the line as received, when it is not five fields.
RAW_SCHEMA = schema(
    DS, ", ".join(f"{name} string" for name in COLUMNS), "_field_count int NOT NULL, _line string", LINEAGE
)
POINT_FIELDS = ("origin_longitude", "origin_latitude", "destination_longitude", "destination_latitude")
TRIP_FIELDS = columns(
    f"trip_id string NOT NULL, region string NOT NULL, {', '.join(f'{n} double NOT NULL' for n in POINT_FIELDS)}, "
    "datetime timestamp NOT NULL, datasource string NOT NULL"
)
BRONZE_SCHEMA = schema(DS, TRIP_FIELDS, LINEAGE)
# `record`: the raw values as JSON (with `_line` for a malformed line).
REJECTS_SCHEMA = schema(DS, REASON, "record string", LINEAGE)
GOLD_TRIPS_SCHEMA = schema(
    DS,
    TRIP_FIELDS,
    "trip_date date NOT NULL, week_start date NOT NULL, hour_of_day int NOT NULL, "
    "time_bucket string NOT NULL, origin_cell string NOT NULL, destination_cell string NOT NULL, "
    "origin_fine_x bigint NOT NULL, origin_fine_y bigint NOT NULL, source_file string NOT NULL",
)
GOLD_CELLS_SCHEMA = schema(
    DS,
    "region string NOT NULL, level int NOT NULL, cell_x bigint NOT NULL, cell_y bigint NOT NULL, "
    "trip_date date NOT NULL, trips bigint NOT NULL",
)
# `datasources`: distinct, sorted, comma-separated.
GOLD_GROUPS_SCHEMA = schema(
    DS,
    "region string NOT NULL, origin_cell string NOT NULL, destination_cell string NOT NULL, "
    "time_bucket string NOT NULL, origin_cell_longitude double NOT NULL, "
    "origin_cell_latitude double NOT NULL, destination_cell_longitude double NOT NULL, "
    "destination_cell_latitude double NOT NULL, trips bigint NOT NULL, datasources string NOT NULL, "
    "first_seen timestamp NOT NULL, last_seen timestamp NOT NULL",
)
GOLD_WEEKLY_SCHEMA = schema(
    DS,
    "region string NOT NULL, week_start date NOT NULL, days int NOT NULL, trips bigint NOT NULL, "
    "days_with_trips int NOT NULL, average_trips_per_day double NOT NULL",
)

_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_POINT = rf"^(?i)POINT\s*\(\s*({_NUMBER})\s+({_NUMBER})\s*\)$"
_DATETIME = r"^(19|20)[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"  # years 1900..2099
_REGION = r"^\p{L}[\p{L}\p{M} .'’-]*$"
_DATASOURCE = r"^[\p{L}\p{N}_][\p{L}\p{N}_ .-]*$"


# --- pure transformations ----------------------------------------------------------------------


def to_raw(lines: DataFrame, ds: str) -> DataFrame:
    """Numbered lines (``line``, ``_source_file``, ``_line_number``) -> raw rows of slice ``ds``.

    The line is split on commas; the five columns take the first five fields as received (missing ones NULL), and
    a line of any other number of fields keeps its text in ``_line``.
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


def _value(name: str) -> Column:
    """The cleaned value of a raw column (see ``parse``)."""
    return F.col(f"_v_{name}")


def _header_line() -> Column:
    """The line is the header: five fields naming the columns (case and a UTF-8 byte order mark ignored)."""
    matches = F.col("_field_count") == len(COLUMNS)
    for name in COLUMNS:
        value = F.lower(F.regexp_replace(_value(name), "^\ufeff", ""))
        matches = matches & value.eqNullSafe(F.lit(name))
    return matches


def _coordinate(text: Column, group: int) -> Column:
    """Longitude (group 1) or latitude (group 2) of a WKT point as a finite double; NULL when not a point."""
    number = F.when(text.rlike(_POINT), F.regexp_extract(text, _POINT, group).cast("double"))
    return F.when(F.abs(number) < F.lit(float("inf")), number)


def _typed_values() -> dict[str, Column]:
    """The trip columns typed from the cleaned values; NULL where a value does not parse."""
    origin, destination, moment = _value("origin_coord"), _value("destination_coord"), _value("datetime")
    return {
        "origin_longitude": _coordinate(origin, 1),
        "origin_latitude": _coordinate(origin, 2),
        "destination_longitude": _coordinate(destination, 1),
        "destination_latitude": _coordinate(destination, 2),
        # A cast, not a pattern (to_timestamp): the same values for text the regex admits, impossible dates and
        # times NULL alike, at a tenth of the cost (bench/tweets_spark_vs_duckdb.py's profile).
        "datetime": F.when(moment.rlike(_DATETIME), F.expr("try_cast(_v_datetime AS TIMESTAMP)")),
    }


def _out_of_range(prefix: str) -> Column:
    lon, lat = F.col(f"_t_{prefix}_longitude"), F.col(f"_t_{prefix}_latitude")
    return (F.abs(lon) > 180) | (F.abs(lat) > 90)


def _reason() -> Column:
    """The first rule a line breaks (see the module comment), NULL for a valid trip or the file's header."""
    blank = (F.col("_field_count") == 1) & F.coalesce(F.trim(F.col(COLUMNS[0])) == "", F.lit(True))
    return (
        F.when(~F.col("_file_has_header"), "bad_header")
        .when(F.col("_header"), F.lit(None))
        .when(blank, "blank_line")
        .when(F.col("_header_like"), "repeated_header")
        .when(F.col("_field_count") != len(COLUMNS), "wrong_column_count")
        .when(_value("region").isNull(), "missing_region")
        .when(~_value("region").rlike(_REGION), "bad_region")
        .when(F.col("_t_origin_longitude").isNull() | F.col("_t_origin_latitude").isNull(), "bad_origin_coord")
        .when(
            F.col("_t_destination_longitude").isNull() | F.col("_t_destination_latitude").isNull(),
            "bad_destination_coord",
        )
        .when(_out_of_range("origin"), "origin_out_of_range")
        .when(_out_of_range("destination"), "destination_out_of_range")
        .when(F.col("_t_datetime").isNull(), "bad_datetime")
        .when(_value("datasource").isNull(), "missing_datasource")
        .when(~_value("datasource").rlike(_DATASOURCE), "bad_datasource")
    )


def parse(raw: DataFrame) -> DataFrame:
    """Raw rows + ``_header`` + typed trip columns (prefixed ``_t_``) + ``reason`` (NULL for a valid trip or header)."""
    cleaned = raw.select("*", *[_clean(name).alias(f"_v_{name}") for name in COLUMNS])
    header = _header_line()
    typed = cleaned.select(
        "*",
        ((F.col("_line_number") == 1) & header).alias("_header"),
        header.alias("_header_like"),
        _value("region").alias("_t_region"),
        _value("datasource").alias("_t_datasource"),
        *[value.alias(f"_t_{name}") for name, value in _typed_values().items()],
    )
    typed = typed.withColumn("_file_has_header", F.max("_header").over(Window.partitionBy("_source_file")))
    checked = typed.withColumn("reason", _reason())
    return checked.drop(*[f"_v_{name}" for name in COLUMNS], "_header_like", "_file_has_header")


def trip_id(prefix: str = "_t_") -> Column:
    """SHA-256 hex of the typed values: region, coordinates to 9 decimals, the datetime to the second, datasource.

    Args:
        prefix: the prefix of the typed columns (``_t_`` in ``parse``'s output, empty on bronze rows).
    """
    parts = [F.col(prefix + "region")]
    parts += [F.col(prefix + name).cast(COORDINATE_KEY).cast("string") for name in POINT_FIELDS]
    parts += [F.date_format(F.col(prefix + "datetime"), "yyyy-MM-dd HH:mm:ss"), F.col(prefix + "datasource")]
    return F.sha2(F.concat_ws("|", *parts), 256)


def current_history(bronze: DataFrame, ds: str, reread: Sequence[str]) -> DataFrame:
    """The ``trip_id`` of trips accepted before slice ``ds`` that still stand.

    A file's trips stand from the latest slice that read it, and not at all when slice ``ds`` reads it again
    (``reread``): its new version replaces them.
    """
    earlier = bronze.where(F.col("ds") < F.lit(ds).cast("date"))
    latest = F.max("ds").over(Window.partitionBy("_source_file"))
    earlier = earlier.withColumn("_latest", latest).where(F.col("ds") == F.col("_latest"))
    if reread:
        earlier = earlier.where(~F.col("_source_file").isin(list(reread)))
    return earlier.select("trip_id")


def _classified_lines(raw: DataFrame) -> DataFrame:
    """``parse`` + ``trip_id`` (valid trips only) + ``kind`` (header, record for a valid trip, reject)."""
    parsed = parse(raw)
    valid = ~F.col("_header") & F.col("reason").isNull()
    kind = F.when(F.col("_header"), HEADER_LINE).when(F.col("reason").isNotNull(), REJECT).otherwise(RECORD)
    return parsed.withColumn("trip_id", F.when(valid, trip_id())).withColumn("kind", kind)


def _to_bronze(trips: DataFrame) -> DataFrame:
    typed = [F.col(f"_t_{f.name}").alias(f.name) for f in TRIP_FIELDS[1:]]
    return trips.select("ds", "trip_id", *typed, *[f.name for f in LINEAGE])


def _to_rejects(lines: DataFrame) -> DataFrame:
    record = F.to_json(F.struct(*[F.col(name) for name in COLUMNS], F.col("_line")))
    return lines.select("ds", "reason", record.alias("record"), *[f.name for f in LINEAGE])


def _history(spark, ds: str, superseded: Sequence[str] = ()) -> DataFrame | None:
    """Bronze keeps a re-read file's older trips in their slices (gold moves them): none is ``superseded``."""
    if not _exists(spark, BRONZE):
        return None
    return current_history(spark.table(qualified(BRONZE)), ds, _slice_files(spark, ds))


LAYER = Layer(
    DOMAIN, Target(RAW, RAW_SCHEMA), Target(BRONZE, BRONZE_SCHEMA), Target(REJECTS, REJECTS_SCHEMA),
    parse=_classified_lines, key=("trip_id",), order=("_source_file", "_line_number"), unit="lines",
    to_bronze=_to_bronze, to_rejects=_to_rejects, history=_history,
)  # fmt: skip


def classify(raw: DataFrame, history: DataFrame | None = None) -> DataFrame:
    """Parse and validate raw lines; ``kind`` is header, record, duplicate or reject.

    The first valid occurrence of a ``trip_id`` in the slice (by file, then line) is the record; later ones are
    duplicates, as are trips whose id is in ``history`` (see ``current_history``). Invalid lines are never
    duplicates, and never make a valid line one.
    """
    return LAYER.classify(raw, history)


def accepted(classified: DataFrame) -> DataFrame:
    """The typed, de-duplicated trips a slice adds to bronze."""
    return LAYER.accepted(classified)


def rejected(classified: DataFrame) -> DataFrame:
    """Every refused line with its reason and its raw values as JSON (``_line`` too when it was malformed)."""
    return LAYER.rejected(classified)


def cell(longitude: Column, latitude: Column) -> Column:
    """The grid cell of a point: ``<floor(lon * 100)>:<floor(lat * 100)>`` (cells of 0.01 degree)."""
    x = F.floor(longitude * CELLS_PER_DEGREE).cast("long")
    y = F.floor(latitude * CELLS_PER_DEGREE).cast("long")
    return F.concat_ws(":", x.cast("string"), y.cast("string"))


def cell_centre(cell_id: Column, axis: int) -> Column:
    """Longitude (axis 0) or latitude (axis 1) of the centre of a cell named by ``cell``."""
    index = F.split(cell_id, ":").getItem(axis).cast("long")
    return (index.cast("double") + 0.5) / CELLS_PER_DEGREE


def time_bucket(hour: Column) -> Column:
    """The 3-hour span of the day holding ``hour``: ``00-03``, ``03-06``, ... ``21-24``."""
    start = F.floor(hour / BUCKET_HOURS) * BUCKET_HOURS
    return F.concat(F.lpad(start.cast("string"), 2, "0"), F.lit("-"), F.lpad((start + 3).cast("string"), 2, "0"))


def gold_trips(bronze: DataFrame) -> DataFrame:
    """Bronze trips with their day, ISO week (Monday), hour, time bucket and cells (all in UTC)."""
    hour = F.hour("datetime")
    return bronze.select(
        "ds",
        *[f.name for f in TRIP_FIELDS],
        F.to_date("datetime").alias("trip_date"),
        F.to_date(F.date_trunc("week", "datetime")).alias("week_start"),
        hour.alias("hour_of_day"),
        time_bucket(hour).alias("time_bucket"),
        cell(F.col("origin_longitude"), F.col("origin_latitude")).alias("origin_cell"),
        cell(F.col("destination_longitude"), F.col("destination_latitude")).alias("destination_cell"),
        F.floor(F.col("origin_longitude") * FINE_CELLS_PER_DEGREE).cast("long").alias("origin_fine_x"),
        F.floor(F.col("origin_latitude") * FINE_CELLS_PER_DEGREE).cast("long").alias("origin_fine_y"),
        F.col("_source_file").alias("source_file"),
    )


def origin_cells(trips: DataFrame) -> DataFrame:
    """Trips per ``ds``, region, origin cell and trip day at the fine, coarse and region levels."""
    keys = ["ds", "region"]
    fine = trips.groupBy(
        *keys, F.col("origin_fine_x").alias("cell_x"), F.col("origin_fine_y").alias("cell_y"), "trip_date"
    ).agg(F.count("*").alias("trips"))
    per_coarse = FINE_CELLS_PER_DEGREE // CELLS_PER_DEGREE
    coarse = fine.groupBy(
        *keys,
        F.floor(F.col("cell_x") / per_coarse).cast("long").alias("cell_x"),
        F.floor(F.col("cell_y") / per_coarse).cast("long").alias("cell_y"),
        "trip_date",
    ).agg(F.sum("trips").alias("trips"))
    region = fine.groupBy(
        *keys, F.lit(0).cast("long").alias("cell_x"), F.lit(0).cast("long").alias("cell_y"), "trip_date"
    )
    levels = [
        (FINE_LEVEL, fine),
        (COARSE_LEVEL, coarse),
        (REGION_LEVEL, region.agg(F.sum("trips").alias("trips"))),
    ]
    columns = [f.name for f in GOLD_CELLS_SCHEMA.fields]
    frames = [frame.withColumn("level", F.lit(level)).select(*columns) for level, frame in levels]
    return frames[0].unionByName(frames[1]).unionByName(frames[2]).withColumn("trips", F.col("trips").cast("long"))


def as_of(trips: DataFrame, ds: str) -> DataFrame:
    """The trips made by the end of day ``ds`` (UTC, as the feed's zone-less datetimes), whichever slice holds them.

    What the snapshots of run ``ds`` count: a function of the files landed and of the day, not of the order the days
    ran in (a backfill's first run reads every landed file, and an older day run after it finds nothing new).
    """
    return trips.where(F.col("trip_date") <= F.lit(ds).cast("date"))


def trip_groups(trips: DataFrame, ds: str) -> DataFrame:
    """Slice ``ds`` of ``trip_groups``: similar trips (region, both cells, time bucket) among ``trips`` made by the
    end of day ``ds`` (``trip_date <= ds``), whichever run read them (see ``as_of``)."""
    day = F.lit(ds).cast("date")
    keys = ["region", "origin_cell", "destination_cell", "time_bucket"]
    groups = (
        as_of(trips, ds)
        .groupBy(*keys)
        .agg(
            F.count("*").alias("trips"),
            F.array_join(F.array_sort(F.collect_set("datasource")), ",").alias("datasources"),
            F.min("datetime").alias("first_seen"),
            F.max("datetime").alias("last_seen"),
        )
    )
    return groups.select(
        day.alias("ds"),
        *keys,
        cell_centre(F.col("origin_cell"), 0).alias("origin_cell_longitude"),
        cell_centre(F.col("origin_cell"), 1).alias("origin_cell_latitude"),
        cell_centre(F.col("destination_cell"), 0).alias("destination_cell_longitude"),
        cell_centre(F.col("destination_cell"), 1).alias("destination_cell_latitude"),
        "trips",
        "datasources",
        "first_seen",
        "last_seen",
    )


def trips_weekly(trips: DataFrame, ds: str) -> DataFrame:
    """Slice ``ds`` of ``trips_weekly``: per region and ISO week of the covered range, over the ``trips`` made by the
    end of day ``ds`` (see ``as_of``)."""
    day = F.lit(ds).cast("date")
    current = as_of(trips, ds)
    bounds = current.agg(F.min("trip_date").alias("first_day"), F.max("trip_date").alias("last_day"))
    weeks = bounds.where(F.col("first_day").isNotNull()).select(
        "first_day",
        "last_day",
        F.explode(
            F.sequence(
                F.to_date(F.date_trunc("week", "first_day")),
                F.col("last_day"),
                F.expr("INTERVAL 7 DAYS"),
            )
        ).alias("week_start"),
    )
    days = F.datediff(F.least(F.date_add("week_start", 6), "last_day"), F.greatest("week_start", "first_day")) + 1
    counts = current.groupBy("region", "week_start").agg(
        F.count("*").alias("trips"), F.countDistinct("trip_date").alias("days_with_trips")
    )
    grid = weeks.crossJoin(current.select("region").distinct()).select("region", "week_start", days.alias("days"))
    weekly = grid.join(counts, ["region", "week_start"], "left").fillna(0, subset=["trips", "days_with_trips"])
    return weekly.select(
        day.alias("ds"),
        "region",
        "week_start",
        F.col("days").cast("int").alias("days"),
        F.col("trips").cast("long").alias("trips"),
        F.col("days_with_trips").cast("int").alias("days_with_trips"),
        F.round(F.col("trips") / F.col("days"), 4).alias("average_trips_per_day"),
    )


# --- jobs ------------------------------------------------------------------------------------------


def read_lines(spark, paths: Sequence[str]) -> DataFrame:
    """Every line of ``paths`` with ``_source_file`` (the path as listed) and ``_line_number`` (1-based)."""
    scanned = spark.read.text([glob_escaped(p) for p in paths]).select(
        F.col("value").alias("line"),
        F.input_file_name().alias("_source_file"),
        F.input_file_block_start().alias("_block_start"),
        F.monotonically_increasing_id().alias("_row_id"),
    )
    return with_listed_paths(number_lines(scanned), "_source_file", paths)


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


def _read_files(spark, files: Sequence[LandedFile], ds: str) -> tuple[DataFrame, dict[str, int]]:
    paths = [f.path for f in files]
    return to_raw(read_lines(spark, paths), ds), {p: count_lines(spark, p) for p in paths}


FEED = LandedFeed(
    domain=DOMAIN,
    raw=RAW,
    raw_schema=RAW_SCHEMA,
    suffix=SUFFIX,
    read=_read_files,
    position="_line_number",
    unit="lines",
)


def run_raw(spark, ds: str, *, prefix: str = LANDING_PREFIX, landing_bucket: str = "landing") -> dict:
    """Add the lines of new or changed ``*.csv`` files under ``landing/<prefix>`` to ``raw.trips`` slice ``ds``.

    A file whose ETag and size match its last processed version is skipped. The lines of a file processed again
    replace its earlier lines in the slice; the slice's other lines stay.
    """
    return load_landed(spark, FEED, ds, prefix=prefix, landing_bucket=landing_bucket)


def _exists(spark, table: str) -> bool:
    return spark.catalog.tableExists(qualified(table))


def _slice_files(spark, ds: str) -> list[str]:
    """The files whose lines raw slice ``ds`` holds (every file the slice's runs read, whatever its lines)."""
    return slice_files(spark, RAW, ds)


def run_bronze(spark, ds: str, *, max_reject_ratio: float = 0.1) -> Reconciliation:
    """Type, validate and de-duplicate the slice's trips; refuse to publish it when too many lines are rejected."""
    return run_layer(spark, LAYER, ds, max_reject_ratio=max_reject_ratio)


def _replace_reread_files(spark, run: GoldRun, files: Sequence[str]) -> dict[str, int]:
    """Delete, on the run's branch, the trips older gold slices hold from ``files`` (read again by the run).

    Returns the rows taken out per slice. The slices are recorded in ``ops.slice_changes`` first, so a retry after
    a crash still rebuilds (and announces for serving) them, even when ``main`` no longer holds those rows.
    """
    if not files:
        return {}
    ds = run.ds
    older = run.table(GOLD_TRIPS).where((F.col("ds") < F.lit(ds).cast("date")) & F.col("source_file").isin(list(files)))
    moved = {r["ds"]: r["n"] for r in older.groupBy("ds").agg(F.count("*").alias("n")).collect()}
    if not moved:
        return {}
    # The cells of those slices are rebuilt after the delete; their rows_out counts the trips that left, as for trips.
    for table in (GOLD_TRIPS, GOLD_CELLS):
        ops.record_slice_changes(spark, table, ds, moved)
    view = "_trips_reread_files"
    spark.createDataFrame([(f,) for f in files], "path string").createOrReplaceTempView(view)
    spark.sql(f"DELETE FROM {run.name(GOLD_TRIPS)} WHERE ds < DATE '{ds}' AND source_file IN (SELECT path FROM {view})")
    spark.catalog.dropTempView(view)
    run.touch(GOLD_TRIPS, moved)
    return {day.isoformat(): count for day, count in moved.items()}


def _rebuild_cells(spark, run: GoldRun) -> None:
    """Rebuild, on the run's branch, the cells of slice ``ds`` and of the older slices run ``ds`` took trips out of.

    Those slices are read back from ``ops.slice_changes`` (recorded before the trips left them), so the retry of a
    run that crashed while publishing still rebuilds them.
    """
    for day in [run.ds, *ops.changed_slices(spark, GOLD_CELLS, run.ds)]:
        run.replace_slice(origin_cells(run.read_slice(GOLD_TRIPS, day)), GOLD_CELLS, day)


GOLD_SCHEMAS = {
    GOLD_TRIPS: GOLD_TRIPS_SCHEMA,
    GOLD_CELLS: GOLD_CELLS_SCHEMA,
    GOLD_GROUPS: GOLD_GROUPS_SCHEMA,
    GOLD_WEEKLY: GOLD_WEEKLY_SCHEMA,
}


def run_gold(spark, ds: str) -> dict:
    """Replace slice ``ds`` of ``gold.trips`` (and the older trips of re-read files) and their cells; rebuild the
    groups and weeks. Everything is written to the run's branch and published after an audit (``wap.GoldRun``)."""
    bronze = read_slice(spark, BRONZE, ds) if _exists(spark, BRONZE) else spark.createDataFrame([], BRONZE_SCHEMA)
    run = GoldRun(spark, DOMAIN, ds, GOLD_SCHEMAS)
    replaced = _replace_reread_files(spark, run, _slice_files(spark, ds))
    run.replace_slice(gold_trips(bronze), GOLD_TRIPS, ds)
    _rebuild_cells(spark, run)
    trips = run.table(GOLD_TRIPS).persist()
    try:
        run.replace_slice(trip_groups(trips, ds), GOLD_GROUPS, ds)
        run.replace_slice(trips_weekly(trips, ds), GOLD_WEEKLY, ds)
    finally:
        trips.unpersist()
    counts = {"replaced_older_trips": replaced, **run.publish()}
    log.info("gold trips ds=%s: %s", ds, counts)
    return counts


JOBS = layers(Job(run_raw, [PREFIX_OPTION], needs_landing_bucket=True), run_bronze, run_gold, max_reject_ratio=0.1)
