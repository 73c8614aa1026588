"""Tweets: landed TSV lines -> raw.tweets -> bronze.tweets (+ rejects) -> gold tweet counts."""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse_jobs import ops
from lakehouse_jobs.bronze import HEADER as HEADER_LINE
from lakehouse_jobs.bronze import RECORD, REJECT, Layer, Reconciliation, Target, run_layer
from lakehouse_jobs.iceberg import read_slice, replace_slice
from lakehouse_jobs.job import SOURCE_OPTION, Job, layers
from lakehouse_jobs.lines import read_numbered_lines
from lakehouse_jobs.schemas import DS, REASON, lineage, schema
from lakehouse_jobs.wap import publish_gold

log = logging.getLogger(__name__)

DOMAIN = "tweets"
HEADER = "tweet_id\tdate\ttime\tlang\tcountry_code"
COLUMNS = HEADER.split("\t")

RAW = "raw.tweets"
BRONZE = "bronze.tweets"
REJECTS = "bronze.tweets_rejects"
GOLD_PER_HOUR = "gold.tweets_per_hour"
GOLD_PER_DAY = "gold.tweets_per_day"
GOLD_BY_LANGUAGE = "gold.tweets_by_language"
GOLD_BY_COUNTRY = "gold.tweets_by_country"

LINEAGE = lineage("_line_number bigint")
RAW_SCHEMA = schema(DS, "line string", LINEAGE)
BRONZE_SCHEMA = schema(
    DS, "tweet_id bigint NOT NULL, created_at timestamp NOT NULL, lang string, country_code string", LINEAGE
)
REJECTS_SCHEMA = schema(DS, REASON, "line string", LINEAGE)
PER_HOUR_SCHEMA = schema(DS, "hour_start timestamp NOT NULL, tweets bigint NOT NULL")
PER_DAY_SCHEMA = schema(DS, "day date NOT NULL, tweets bigint NOT NULL")
BY_LANGUAGE_SCHEMA = schema(DS, "lang string NOT NULL, tweets bigint NOT NULL")
BY_COUNTRY_SCHEMA = schema(DS, "country_code string NOT NULL, tweets bigint NOT NULL")

UNKNOWN_LANGUAGE = "und"  # Twitter's own code for "undetermined"
UNKNOWN_COUNTRY = "ZZ"  # CLDR's "unknown region": most tweets are not geotagged


# --- pure transformations ----------------------------------------------------------------------


def to_raw(lines: DataFrame, ds: str) -> DataFrame:
    """Numbered lines (``line``, ``_source_file``, ``_line_number``) -> raw rows of slice ``ds``."""
    return lines.select(
        F.lit(ds).cast("date").alias("ds"),
        "line",
        "_source_file",
        "_line_number",
        F.current_timestamp().alias("_loaded_at"),
    )


def parse(raw: DataFrame) -> DataFrame:
    """Parse and validate raw lines: the typed columns, ``kind`` (header, record, reject) and ``reason``.

    The header is expected once, as line 1 of a file; anywhere else it is a rejected ``repeated_header``.

    Staged projections, each over the columns of the one before (the fields, then the typed values, then the reason,
    then the kind): in one projection every branch of the reason's ``CASE`` and the kind would evaluate the regexes
    and casts again (see ``lakehouse_jobs.products.parse``).
    """
    parts = F.split(F.col("line"), "\t", -1)
    fields = raw.select(
        "*", F.size(parts).alias("_n"), *[F.trim(parts[i]).alias(f"_{c}") for i, c in enumerate(COLUMNS)]
    )
    # try_cast: ids beyond BIGINT become NULL (a reject) instead of failing the job under ANSI mode.
    tweet_id = F.when(F.col("_tweet_id").rlike(r"^[0-9]{1,19}$"), F.expr("try_cast(_tweet_id AS BIGINT)"))
    # A cast, not to_timestamp with a pattern: for the text the two regexes admit it gives the same values (impossible
    # dates and times NULL alike) at a tenth of the cost; the pattern was 9 of bronze's 10 s of parsing per 3 M lines.
    created_at = F.when(
        F.col("_date").rlike(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$") & F.col("_time").rlike(r"^[0-9]{2}:[0-9]{2}:[0-9]{2}$"),
        F.expr("try_cast(concat(_date, ' ', _time) AS TIMESTAMP)"),
    )
    typed = fields.select(
        "*",
        tweet_id.alias("tweet_id"),
        created_at.alias("created_at"),
        ((F.col("_line_number") == 1) & (F.col("line") == HEADER)).alias("_header"),
    )
    reason = (
        F.when(F.col("_header"), F.lit(None))
        .when(F.col("line").isNull() | (F.trim(F.col("line")) == ""), "blank_line")
        .when(F.col("line") == HEADER, "repeated_header")
        .when(F.col("_n") != len(COLUMNS), "wrong_column_count")
        .when(F.col("tweet_id").isNull(), "bad_tweet_id")
        .when(F.col("created_at").isNull(), "bad_timestamp")
    )
    reasoned = typed.select(
        *raw.columns,
        "tweet_id",
        "created_at",
        F.when(F.col("_lang") != "", F.lower("_lang")).alias("lang"),
        F.when(F.col("_country_code") != "", F.upper("_country_code")).alias("country_code"),
        reason.alias("reason"),
        "_header",
    )
    kind = F.when(F.col("_header"), HEADER_LINE).when(F.col("reason").isNotNull(), REJECT).otherwise(RECORD)
    return reasoned.select(*[c for c in reasoned.columns if c != "_header"], kind.alias("kind"))


LAYER = Layer(
    DOMAIN, Target(RAW, RAW_SCHEMA), Target(BRONZE, BRONZE_SCHEMA), Target(REJECTS, REJECTS_SCHEMA),
    parse=parse, key=("tweet_id",), order=("_source_file", "_line_number"), unit="lines",
)  # fmt: skip


def classify(raw: DataFrame) -> DataFrame:
    """Parse and validate raw lines; ``kind`` is header, record, duplicate or reject.

    Among valid lines, the first occurrence of a ``tweet_id`` (by file, then line) is the record; the others
    are duplicates. Rejected lines never count as an occurrence, wherever they stand.
    """
    return LAYER.classify(raw)


def accepted(classified: DataFrame) -> DataFrame:
    """The de-duplicated, typed records of a classified slice."""
    return LAYER.accepted(classified)


def rejected(classified: DataFrame) -> DataFrame:
    """Every refused line with its reason."""
    return LAYER.rejected(classified)


def per_hour(bronze: DataFrame) -> DataFrame:
    """Tweets per UTC hour (the session time zone is UTC)."""
    return (
        bronze.groupBy("ds", F.date_trunc("hour", "created_at").alias("hour_start"))
        .agg(F.count("*").alias("tweets"))
        .orderBy("hour_start")
    )


def per_day(bronze: DataFrame) -> DataFrame:
    """Tweets per UTC calendar day."""
    return bronze.groupBy("ds", F.to_date("created_at").alias("day")).agg(F.count("*").alias("tweets")).orderBy("day")


def by_language(bronze: DataFrame) -> DataFrame:
    """Tweets per language code; a missing code counts as ``und``."""
    return (
        bronze.groupBy("ds", F.coalesce("lang", F.lit(UNKNOWN_LANGUAGE)).alias("lang"))
        .agg(F.count("*").alias("tweets"))
        .orderBy(F.desc("tweets"), "lang")
    )


def by_country(bronze: DataFrame) -> DataFrame:
    """Tweets per country code (ISO 3166-1 alpha-2, upper case); a tweet without one counts as ``ZZ``."""
    return (
        bronze.groupBy("ds", F.coalesce("country_code", F.lit(UNKNOWN_COUNTRY)).alias("country_code"))
        .agg(F.count("*").alias("tweets"))
        .orderBy(F.desc("tweets"), "country_code")
    )


# --- jobs ------------------------------------------------------------------------------------------


def run_raw(spark, ds: str, *, source: str | None = None, landing_bucket: str = "landing") -> int:
    """Land every line of the slice's files in ``raw.tweets``; record the extraction. Returns the row count.

    By default the slice's landing folder is read and its manifest checked and recorded in ``ops.extractions``;
    an explicit ``source`` (files landed by other means) has no manifest.
    """
    manifest_uri = None if source else ops.manifest_uri(landing_bucket, DOMAIN, ds)
    source = source or f"s3a://{landing_bucket}/{DOMAIN}/ds={ds}/"
    raw = to_raw(read_numbered_lines(spark, source), ds)
    replace_slice(raw, RAW, RAW_SCHEMA, ds)
    rows = read_slice(spark, RAW, ds).count()
    manifest = ops.load_manifest(spark, manifest_uri) if manifest_uri else None
    if manifest is not None:
        if manifest["ds"] != ds:
            raise ops.ManifestError(f"manifest is for ds={manifest['ds']}, not {ds}")
        if int(manifest["lines"]) != rows:
            raise ops.ManifestError(f"landed file has {manifest['lines']} lines but raw.tweets got {rows}")
        ops.record_extraction(spark, manifest, rows)
    log.info("raw.tweets ds=%s: %d lines from %s", ds, rows, source)
    return rows


def run_bronze(spark, ds: str, *, max_reject_ratio: float = 0.05) -> Reconciliation:
    """Type, validate and de-duplicate the slice; refuse to publish it when too many lines are rejected."""
    return run_layer(spark, LAYER, ds, max_reject_ratio=max_reject_ratio)


def run_gold(spark, ds: str) -> dict[str, int]:
    """Rebuild the slice of each gold table from the bronze slice. Returns row counts per table."""
    bronze = read_slice(spark, BRONZE, ds).persist()
    try:
        outputs = {
            GOLD_PER_HOUR: (per_hour(bronze), PER_HOUR_SCHEMA),
            GOLD_PER_DAY: (per_day(bronze), PER_DAY_SCHEMA),
            GOLD_BY_LANGUAGE: (by_language(bronze), BY_LANGUAGE_SCHEMA),
            GOLD_BY_COUNTRY: (by_country(bronze), BY_COUNTRY_SCHEMA),
        }
        counts = publish_gold(spark, outputs, ds, domain=DOMAIN)
    finally:
        bronze.unpersist()
    log.info("gold tweets ds=%s: %s", ds, counts)
    return counts


JOBS = layers(Job(run_raw, [SOURCE_OPTION], needs_landing_bucket=True), run_bronze, run_gold, max_reject_ratio=0.05)
