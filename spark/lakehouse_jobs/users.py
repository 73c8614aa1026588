"""Users: RandomUser API pages -> raw.users -> bronze.users (+ rejects) -> gold.users and gold.user_statistics."""

# Raw keeps each entry of a page's `results` as the JSON text landed. The land task has already cut `login.password`,
# `salt`, `md5`, `sha1` and `sha256` out of every page (include/landing/users.py), so they are stored nowhere. For
# pages landed by other means (`--source`) the same guards as before stay: bronze parses the documents with a schema
# that has none of those fields, so their values are never read into a column, and a refused entry that could not
# be parsed that way has them cut out of its text before it is stored. Nothing logs a document.
#
# Gold `users` holds one row per user: the version of the latest bronze slice that holds the user (`ds`, "the run
# that last saw the user") and the earliest (`first_ds`). A user seen again moves from its old slice to the new
# one; the job records such slices in `ops.slice_changes` (the table of the products domain) so the DAG announces
# them and the serving copies reload them.

from __future__ import annotations

import json
import logging

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse_jobs import ops
from lakehouse_jobs.bronze import RECORD, REJECT, Layer, Reconciliation, Target, run_layer
from lakehouse_jobs.iceberg import apply_changes, qualified, read_slice, replace_slice
from lakehouse_jobs.job import SOURCE_OPTION, Job, layers
from lakehouse_jobs.schemas import DS, REASON, columns, lineage, schema
from lakehouse_jobs.wap import GoldRun

log = logging.getLogger(__name__)

DOMAIN = "users"
RAW = "raw.users"
BRONZE = "bronze.users"
REJECTS = "bronze.users_rejects"
USERS = "gold.users"
STATISTICS = "gold.user_statistics"

SECRET_FIELDS = ("password", "salt", "md5", "sha1", "sha256")  # of `login`; never past raw
ALL_GENDERS = "all"
UNKNOWN_GENDER = "unknown"
MAX_AGE = 150
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

# `_record_number`: the 1-based position of the entry in its page's `results`.
LINEAGE = lineage("_page int", "_record_number int")
RAW_SCHEMA = schema(DS, "document string", LINEAGE)
USER_FIELDS = columns(
    "user_id string NOT NULL, title string, first_name string, last_name string, gender string, email string, "
    "username string, date_of_birth date, age int, nationality string, street string, city string, state string, "
    "country string, postcode string, latitude double, longitude double, timezone_offset string, "
    "registered_at timestamp, phone string, cell string, picture_url string"
)
VALUES = tuple(f.name for f in USER_FIELDS[1:])
BRONZE_SCHEMA = schema(DS, USER_FIELDS, LINEAGE)
REJECTS_SCHEMA = schema(DS, REASON, "user_id string, record string", LINEAGE)
USERS_SCHEMA = schema(DS, USER_FIELDS, "first_ds date NOT NULL")
STATISTICS_SCHEMA = schema(DS, "gender string NOT NULL, users bigint NOT NULL, average_age double")


def _strings(*names: str) -> T.StructType:
    return T.StructType([T.StructField(name, T.StringType()) for name in names])


# What bronze reads of a document: every leaf as a string (a postcode is a number or a string, an age may be
# anything), and no login secret at all. `_corrupt` is set when the text is not an object of this shape.
DOCUMENT_SCHEMA = T.StructType(
    [
        T.StructField("gender", T.StringType()),
        T.StructField("name", _strings("title", "first", "last")),
        T.StructField(
            "location",
            T.StructType(
                [
                    T.StructField("street", _strings("number", "name")),
                    *_strings("city", "state", "country", "postcode").fields,
                    T.StructField("coordinates", _strings("latitude", "longitude")),
                    T.StructField("timezone", _strings("offset", "description")),
                ]
            ),
        ),
        T.StructField("email", T.StringType()),
        T.StructField("login", _strings("uuid", "username")),
        T.StructField("dob", _strings("date", "age")),
        T.StructField("registered", _strings("date", "age")),
        T.StructField("phone", T.StringType()),
        T.StructField("cell", T.StringType()),
        T.StructField("id", _strings("name", "value")),
        T.StructField("picture", _strings("large", "medium", "thumbnail")),
        T.StructField("nat", T.StringType()),
        T.StructField("_corrupt", T.StringType()),
    ]
)
_PARSE = {"columnNameOfCorruptRecord": "_corrupt", "mode": "PERMISSIVE"}
# A secret key with its value (a string, a scalar, or a flat object/array), for texts that could not be parsed.
_SECRET_VALUE = r'"(?:' + "|".join(SECRET_FIELDS) + r')"\s*:\s*(?:"(?:[^"\\]|\\.)*"|\{[^{}]*\}|\[[^\[\]]*\]|[^,}\]\s]*)'

UPSERT, DELETE = "upsert", "delete"


# --- raw: pages -> one row per entry ------------------------------------------------------------------


def split_results(text: str | None) -> list[str] | None:
    """The entries of a RandomUser response's ``results``, each as its exact JSON text in the page.

    Returns ``None`` when ``text`` is not a JSON object with a ``results`` list (not a RandomUser response).
    """
    try:
        document = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("results"), list):
        return None
    return _result_spans(text, json.JSONDecoder())


_WHITESPACE = " \t\n\r"


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WHITESPACE:
        i += 1
    return i


def _result_spans(text: str, decoder: json.JSONDecoder) -> list[str]:
    """Walk the top-level object of valid JSON ``text``; slice each element of its (last) ``results`` array."""
    found: list[str] = []
    i = _skip(text, _skip(text, 0) + 1)
    while text[i] != "}":
        key, i = decoder.raw_decode(text, i)
        i = _skip(text, _skip(text, i) + 1)  # past the colon
        if key == "results":
            found, i = _array_elements(text, i, decoder)
        else:
            i = decoder.raw_decode(text, i)[1]
        i = _skip(text, i)
        if text[i] == ",":
            i = _skip(text, i + 1)
    return found


def _array_elements(text: str, i: int, decoder: json.JSONDecoder) -> tuple[list[str], int]:
    elements = []
    i = _skip(text, i + 1)
    while text[i] != "]":
        end = decoder.raw_decode(text, i)[1]
        elements.append(text[i:end])
        i = _skip(text, end)
        if text[i] == ",":
            i = _skip(text, i + 1)
    return elements, i + 1


def read_pages(spark, source: str) -> DataFrame:
    """The landed page files under ``source`` (a folder: its ``page-*.json``; or a file or glob), whole."""
    path = source if source.endswith(".json") or "*" in source else f"{source.rstrip('/')}/page-*.json"
    return spark.read.option("wholetext", True).text(path).select("value", F.input_file_name().alias("_source_file"))


def with_entries(pages: DataFrame) -> DataFrame:
    """Pages (``value``, ``_source_file``) + ``entries``: the texts of their results, NULL for a non-response."""
    split = F.udf(split_results, T.ArrayType(T.StringType()))
    return pages.withColumn("entries", split("value"))


def to_raw(pages: DataFrame, ds: str) -> DataFrame:
    """Pages with ``entries`` -> one raw row per entry of slice ``ds``.

    The page number comes from the file name (``page-0007.json``), else from the response's ``info.page``.
    """
    from_name = F.regexp_extract("_source_file", r"page-(\d+)\.json$", 1)
    page = F.coalesce(
        F.when(from_name != "", from_name.cast("int")), F.get_json_object("value", "$.info.page").cast("int")
    )
    exploded = pages.select("_source_file", page.alias("_page"), F.posexplode("entries").alias("_pos", "document"))
    return exploded.select(
        F.lit(ds).cast("date").alias("ds"),
        "document",
        "_source_file",
        "_page",
        (F.col("_pos") + 1).cast("int").alias("_record_number"),
        F.current_timestamp().alias("_loaded_at"),
    )


# --- bronze: parse, validate, de-duplicate ----------------------------------------------------------


def _text(column):
    """Trimmed, NULL when blank."""
    trimmed = F.trim(column)
    return F.when(trimmed != "", trimmed)


def _typed(doc) -> dict:
    """The bronze columns from the parsed document ``doc`` (a struct column of ``DOCUMENT_SCHEMA``)."""
    location = doc["location"]
    street = F.concat_ws(" ", _text(location["street"]["number"]), _text(location["street"]["name"]))
    return {
        "user_id": F.lower(_text(doc["login"]["uuid"])),
        "title": _text(doc["name"]["title"]),
        "first_name": _text(doc["name"]["first"]),
        "last_name": _text(doc["name"]["last"]),
        "gender": F.lower(_text(doc["gender"])),
        "email": F.lower(_text(doc["email"])),
        "username": _text(doc["login"]["username"]),
        "date_of_birth": F.to_date(F.expr("try_cast(trim(_doc.dob.date) AS TIMESTAMP)")),
        "age": F.when(_text(doc["dob"]["age"]).rlike(r"^-?[0-9]{1,9}$"), F.trim(doc["dob"]["age"]).cast("int")),
        "nationality": F.upper(_text(doc["nat"])),
        "street": F.when(street != "", street),
        "city": _text(location["city"]),
        "state": _text(location["state"]),
        "country": _text(location["country"]),
        "postcode": _text(location["postcode"]),
        "latitude": F.expr("try_cast(trim(_doc.location.coordinates.latitude) AS DOUBLE)"),
        "longitude": F.expr("try_cast(trim(_doc.location.coordinates.longitude) AS DOUBLE)"),
        "timezone_offset": _text(location["timezone"]["offset"]),
        "registered_at": F.expr("try_cast(trim(_doc.registered.date) AS TIMESTAMP)"),
        "phone": _text(doc["phone"]),
        "cell": _text(doc["cell"]),
        "picture_url": _text(doc["picture"]["large"]),
    }


def _bad_coordinate(text, value, limit: float):
    """A coordinate given but unreadable or out of range (NaN compares above any number in Spark)."""
    return _text(text).isNotNull() & (value.isNull() | (F.abs(value) > limit))


def _reason(doc):
    """Why a parsed document is refused (NULL when it is valid), the first rule that fails."""
    coordinates = doc["location"]["coordinates"]
    typed = {name: F.col(f"_t_{name}") for name in ("date_of_birth", "age", "latitude", "longitude")}
    is_json = F.from_json(F.concat(F.lit('{"v":'), F.col("document"), F.lit("}")), _strings("v", "_corrupt"), _PARSE)
    return (
        F.when(F.col("document").isNull() | is_json["_corrupt"].isNotNull(), "malformed_json")
        .when(~F.trim(F.col("document")).startswith("{"), "not_an_object")
        .when(doc.isNull() | doc["_corrupt"].isNotNull(), "unexpected_structure")
        .when(F.col("_t_user_id").isNull(), "missing_user_id")
        .when(F.col("_t_email").isNull() | ~F.col("_t_email").rlike(EMAIL), "bad_email")
        .when(typed["date_of_birth"].isNull() | (typed["date_of_birth"] > F.col("ds")), "bad_date_of_birth")
        .when(typed["age"].isNull() | (typed["age"] < 0) | (typed["age"] > MAX_AGE), "bad_age")
        .when(_bad_coordinate(coordinates["latitude"], typed["latitude"], 90), "bad_coordinates")
        .when(_bad_coordinate(coordinates["longitude"], typed["longitude"], 180), "bad_coordinates")
        .when(_text(doc["registered"]["date"]).isNotNull() & F.col("_t_registered_at").isNull(), "bad_registered_date")
    )


def parse(raw: DataFrame) -> DataFrame:
    """Raw rows + ``_doc`` (the parsed document, without secrets) + typed columns ``_t_*`` + ``reason`` + ``kind``."""
    parsed = raw.withColumn("_doc", F.from_json("document", DOCUMENT_SCHEMA, _PARSE))
    typed = parsed.select("*", *[value.alias(f"_t_{name}") for name, value in _typed(F.col("_doc")).items()])
    typed = typed.withColumn("reason", _reason(F.col("_doc")))
    return typed.withColumn("kind", F.when(F.col("reason").isNull(), RECORD).otherwise(REJECT))


def classify(raw: DataFrame) -> DataFrame:
    """Parse and validate raw rows; ``kind`` is record, duplicate or reject.

    Among valid documents, the first of a ``user_id`` (by page, then record number) is the record, the others
    duplicates; a refused document never takes a valid one's place.
    """
    return LAYER.classify(raw)


def _to_bronze(records: DataFrame) -> DataFrame:
    typed = [F.col(f"_t_{f.name}").alias(f.name) for f in USER_FIELDS]
    return records.select("ds", *typed, *[f.name for f in LINEAGE])


def accepted(classified: DataFrame) -> DataFrame:
    """The typed, de-duplicated users a slice adds to bronze."""
    return LAYER.accepted(classified)


def scrub(text):
    """``text`` with every login secret key and its value cut out (for documents that could not be parsed)."""
    followed = F.regexp_replace(text, _SECRET_VALUE + r"\s*,\s*", "")
    preceded = F.regexp_replace(followed, r"\s*,\s*" + _SECRET_VALUE, "")
    return F.regexp_replace(preceded, _SECRET_VALUE, "")


def _to_rejects(rows: DataFrame) -> DataFrame:
    """Refused documents with their reason; ``record`` never holds a login secret.

    A parsed document is written back from the parse (which never read the secrets); any other text is scrubbed.
    ``user_id`` is set for parsed documents only.
    """
    parsed = F.col("_doc").isNotNull() & F.col("_doc._corrupt").isNull()
    record = F.when(parsed, F.to_json(F.col("_doc").dropFields("_corrupt"))).otherwise(scrub(F.col("document")))
    user_id = F.when(parsed, F.col("_t_user_id"))
    return rows.select("ds", "reason", user_id.alias("user_id"), record.alias("record"), *[f.name for f in LINEAGE])


LAYER = Layer(
    DOMAIN, Target(RAW, RAW_SCHEMA), Target(BRONZE, BRONZE_SCHEMA), Target(REJECTS, REJECTS_SCHEMA),
    parse=parse, key=("_t_user_id",), order=("_page", "_record_number", "_source_file"), unit="users",
    to_bronze=_to_bronze, to_rejects=_to_rejects,
)  # fmt: skip


def rejected(classified: DataFrame) -> DataFrame:
    """Every refused document with its reason; ``record`` never holds a login secret."""
    return LAYER.rejected(classified)


# --- gold ------------------------------------------------------------------------------------------


def latest_users(bronze: DataFrame) -> DataFrame:
    """One row per user: its version in the latest bronze slice that holds it, with ``first_ds`` its earliest."""
    latest = Window.partitionBy("user_id").orderBy(F.desc("ds"), "_page", "_record_number", "_source_file")
    return (
        bronze.withColumn("_rank", F.row_number().over(latest))
        .withColumn("first_ds", F.min("ds").over(Window.partitionBy("user_id")))
        .where(F.col("_rank") == 1)
        .select("ds", *[f.name for f in USER_FIELDS], "first_ds")
    )


def user_changes(bronze: DataFrame, users: DataFrame, ds: str) -> DataFrame:
    """What run ``ds`` changes in ``gold.users``: rows of ``USERS_SCHEMA`` plus ``_op`` and ``_previous_ds``.

    The users considered are those of bronze slice ``ds`` and those gold says slice ``ds`` last saw (a re-run after
    the slice changed). Each gets its row from all of bronze (``latest_users``): an upsert when it is new or differs
    from gold's row, a delete when no bronze slice holds it any more. Other users are left alone.

    Args:
        bronze: every slice of ``bronze.users``.
        users: ``gold.users`` as it is.
        ds: the run's slice.
    """
    day = F.lit(ds).cast("date")
    touched = (
        bronze.where(F.col("ds") == day)
        .select("user_id")
        .union(users.where(F.col("ds") == day).select("user_id"))
        .distinct()
    )
    compared = ("ds", *VALUES, "first_ds")
    new = latest_users(bronze.join(touched, "user_id", "left_semi"))
    new = new.select("user_id", *[F.col(c).alias(f"_n_{c}") for c in compared])
    old = users.join(touched, "user_id", "left_semi").select("user_id", *[F.col(c).alias(f"_o_{c}") for c in compared])
    both = new.join(old, "user_id", "full_outer")
    differs = F.lit(False)
    for c in compared:
        differs = differs | ~F.col(f"_n_{c}").eqNullSafe(F.col(f"_o_{c}"))
    op = F.when(F.col("_n_ds").isNull(), DELETE).when(F.col("_o_ds").isNull() | differs, UPSERT)
    return both.select(
        F.col("_n_ds").alias("ds"),
        "user_id",
        *[F.col(f"_n_{c}").alias(c) for c in (*VALUES, "first_ds")],
        op.alias("_op"),
        F.col("_o_ds").alias("_previous_ds"),
    ).where(F.col("_op").isNotNull())


def changed_slices(changes: DataFrame, ds: str) -> DataFrame:
    """The slices other than ``ds`` that the changes touch: (changed_ds, rows_out).

    A seen-again user leaves its previous slice (counted in ``rows_out``); a re-run can also give a user back to
    an older slice, which changes that slice too (counted with the rows it changed).
    """
    day = F.lit(ds).cast("date")
    slices = changes.select(F.explode(F.array_distinct(F.array("_previous_ds", "ds"))).alias("changed_ds"))
    return (
        slices.where(F.col("changed_ds").isNotNull() & (F.col("changed_ds") != day))
        .groupBy("changed_ds")
        .agg(F.count("*").alias("rows_out"))
    )


def statistics(bronze_slice: DataFrame, ds: str) -> DataFrame:
    """Slice ``ds`` of ``user_statistics``: users and average age per gender, and over all (``all``).

    The average is rounded half up to 2 decimals exactly, in integers (``floor(100 * sum / n + 1/2)``), so it does
    not depend on how a double sum happens to round.
    """
    gender = F.coalesce(F.col("gender"), F.lit(UNKNOWN_GENDER)).alias("gender")
    measures = [F.count("*").alias("users"), F.sum("age").alias("_sum"), F.count("age").alias("_n")]
    per_gender = bronze_slice.groupBy(gender).agg(*measures)
    overall = bronze_slice.agg(*measures).select(F.lit(ALL_GENDERS).alias("gender"), "users", "_sum", "_n")
    average = F.expr("(CAST(_sum AS BIGINT) * 200 + _n) div (2 * _n)") / 100.0
    return per_gender.unionByName(overall).select(
        F.lit(ds).cast("date").alias("ds"),
        "gender",
        "users",
        F.when(F.col("_n") > 0, average).alias("average_age"),
    )


# --- jobs ------------------------------------------------------------------------------------------


def run_raw(spark, ds: str, *, source: str | None = None, landing_bucket: str = "landing") -> int:
    """Land every entry of the slice's pages in ``raw.users``; check and record the extraction. Returns the rows.

    By default the pages of ``landing/users/ds=<ds>/`` are read and must add up to the manifest's ``records``
    (no manifest: the landing did not finish, and the job fails); an explicit ``source`` has no manifest.
    """
    manifest = None
    if source is None:
        uri = ops.manifest_uri(landing_bucket, DOMAIN, ds)
        manifest = ops.load_manifest(spark, uri)
        if manifest is None:
            raise ops.ManifestError(f"no manifest at {uri}: the landing of ds={ds} did not finish")
        if manifest["ds"] != ds:
            raise ops.ManifestError(f"manifest is for ds={manifest['ds']}, not {ds}")
    source = source or f"s3a://{landing_bucket}/{DOMAIN}/ds={ds}/"
    pages = with_entries(read_pages(spark, source)).persist()
    try:
        bad = [r["_source_file"] for r in pages.where(F.col("entries").isNull()).select("_source_file").collect()]
        if bad:
            raise ops.ManifestError(f"{len(bad)} landed files are not RandomUser responses, e.g. {bad[0]}")
        raw = to_raw(pages, ds)
        expected = raw.count()
        if manifest is not None and int(manifest["records"]) != expected:
            raise ops.ManifestError(f"manifest says {manifest['records']} records, the pages hold {expected}")
        replace_slice(raw, RAW, RAW_SCHEMA, ds)
    finally:
        pages.unpersist()
    rows = read_slice(spark, RAW, ds).count()
    if rows != expected:
        raise AssertionError(f"raw.users ds={ds} holds {rows} rows, {expected} were written")
    if manifest is not None:
        ops.record_extraction(spark, manifest, rows)
    log.info("raw.users ds=%s: %d documents from %s", ds, rows, source)
    return rows


def run_bronze(spark, ds: str, *, max_reject_ratio: float = 0.1) -> Reconciliation:
    """Parse, validate and de-duplicate the slice's users; refuse to publish it when too many are rejected."""
    return run_layer(spark, LAYER, ds, max_reject_ratio=max_reject_ratio)


def merge_users(changes: DataFrame, *, branch: str | None = None) -> None:
    """Apply ``user_changes`` with one ``MERGE INTO`` (of ``branch``): update or insert upserts, delete deletes."""
    apply_changes(changes, USERS, USERS_SCHEMA, keys=("user_id",), delete=DELETE, branch=branch)


GOLD_SCHEMAS = {USERS: USERS_SCHEMA, STATISTICS: STATISTICS_SCHEMA}


def run_gold(spark, ds: str) -> dict:
    """Merge the slice's users into ``gold.users``; rebuild slice ``ds`` of ``gold.user_statistics``.

    Both are written to the run's branch and published after an audit (``wap.GoldRun``); the merge's writes to the
    slices users left are audited and published with slice ``ds``.
    """
    exists = spark.catalog.tableExists(qualified(BRONZE))
    bronze = spark.table(qualified(BRONZE)) if exists else spark.createDataFrame([], BRONZE_SCHEMA)
    run = GoldRun(spark, DOMAIN, ds, GOLD_SCHEMAS)
    changes = user_changes(bronze, run.table(USERS), ds).persist()
    try:
        ops_count = {r["_op"]: r["n"] for r in changes.groupBy("_op").agg(F.count("*").alias("n")).collect()}
        slices = changed_slices(changes, ds).collect()
        if slices:
            ops.record_slice_changes(spark, USERS, ds, {r["changed_ds"]: r["rows_out"] for r in slices})
        if ops_count:
            merge_users(changes, branch=run.branch)
            run.touch(USERS, [r["changed_ds"] for r in slices])
    finally:
        changes.unpersist()
    bronze_slice = read_slice(spark, BRONZE, ds) if exists else bronze
    run.replace_slice(statistics(bronze_slice, ds), STATISTICS, ds)
    published = run.publish()
    counts = {
        "upserts": ops_count.get(UPSERT, 0),
        "deletes": ops_count.get(DELETE, 0),
        "changed_slices": sorted(str(r["changed_ds"]) for r in slices),
        "users": spark.table(qualified(USERS)).count(),
        "users_slice_rows": published[USERS],
        "statistics_rows": published[STATISTICS],
    }
    log.info("gold users ds=%s: %s", ds, counts)
    return counts


JOBS = layers(Job(run_raw, [SOURCE_OPTION], needs_landing_bucket=True), run_bronze, run_gold, max_reject_ratio=0.1)
