"""Rentals: a Pagila-shaped PostgreSQL database over JDBC -> raw.rentals_* -> bronze.rentals_* (+ rejects) -> gold."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse_jobs.bronze import RECORD, REJECT, Layer, Part, Reconciliation, Target, publish_parts
from lakehouse_jobs.iceberg import read_slice, replace_slice
from lakehouse_jobs.job import Job, layers
from lakehouse_jobs.schemas import DS, schema
from lakehouse_jobs.session import ConfigError
from lakehouse_jobs.wap import publish_gold

log = logging.getLogger(__name__)

DOMAIN = "rentals"
REJECTS = "bronze.rentals_rejects"
GOLD_TOP_COUNTRIES = "gold.top_countries"
GOLD_FILMS_PER_CATEGORY = "gold.films_per_category"
JDBC_DRIVERS = {"postgresql": "org.postgresql.Driver", "mysql": "com.mysql.cj.jdbc.Driver"}

# Source columns as typed in bronze (Pagila's, without staff passwords and pictures or the film full-text column).
COUNTRY = schema("country_id int NOT NULL, country string NOT NULL, last_update timestamp NOT NULL")
CITY = schema("city_id int NOT NULL, city string NOT NULL, country_id int NOT NULL, last_update timestamp NOT NULL")
ADDRESS = schema(
    "address_id int NOT NULL, address string NOT NULL, address2 string, district string NOT NULL, "
    "city_id int NOT NULL, postal_code string, phone string NOT NULL, last_update timestamp NOT NULL",
)
CATEGORY = schema("category_id int NOT NULL, name string NOT NULL, last_update timestamp NOT NULL")
FILM = schema(
    "film_id int NOT NULL, title string NOT NULL, description string, release_year int, "
    "language_id int NOT NULL, rental_duration int NOT NULL, rental_rate decimal(4,2) NOT NULL, "
    "length int, replacement_cost decimal(5,2) NOT NULL, rating string, last_update timestamp NOT NULL",
)
FILM_CATEGORY = schema("film_id int NOT NULL, category_id int NOT NULL, last_update timestamp NOT NULL")
STORE = schema(
    "store_id int NOT NULL, manager_staff_id int NOT NULL, address_id int NOT NULL, last_update timestamp NOT NULL",
)
STAFF = schema(
    "staff_id int NOT NULL, first_name string NOT NULL, last_name string NOT NULL, "
    "address_id int NOT NULL, email string, store_id int NOT NULL, active boolean NOT NULL, "
    "username string NOT NULL, last_update timestamp NOT NULL",
)
INVENTORY = schema(
    "inventory_id int NOT NULL, film_id int NOT NULL, store_id int NOT NULL, last_update timestamp NOT NULL",
)
CUSTOMER = schema(
    "customer_id int NOT NULL, store_id int NOT NULL, first_name string NOT NULL, "
    "last_name string NOT NULL, email string, address_id int NOT NULL, activebool boolean NOT NULL, "
    "create_date date NOT NULL, last_update timestamp, active int",
)
RENTAL = schema(
    "rental_id bigint NOT NULL, rental_date timestamp NOT NULL, inventory_id int NOT NULL, "
    "customer_id int NOT NULL, return_date timestamp, staff_id int NOT NULL, "
    "last_update timestamp NOT NULL",
)
PAYMENT = schema(
    "payment_id bigint NOT NULL, customer_id int NOT NULL, staff_id int NOT NULL, "
    "rental_id bigint NOT NULL, amount decimal(5,2) NOT NULL, payment_date timestamp NOT NULL",
)

REJECTS_SCHEMA = schema(
    DS,
    "table_name string NOT NULL, record_key string, reason string NOT NULL, record string NOT NULL, "
    "_loaded_at timestamp NOT NULL",
)
TOP_COUNTRIES_SCHEMA = schema(
    DS,
    "country string NOT NULL, customers bigint NOT NULL, rentals bigint NOT NULL, "
    "revenue decimal(18,2) NOT NULL, rank int NOT NULL",
)
FILMS_PER_CATEGORY_SCHEMA = schema(DS, "category string NOT NULL, films bigint NOT NULL")


@dataclass(frozen=True)
class SourceTable:
    """One source table and the rules its rows must pass in bronze.

    Attributes:
        name: the table in the source database.
        schema: its columns as typed in bronze.
        key: the source key (rows sharing it are duplicates; the first is kept).
        parents: ``(column, parent table)``: the column must hold the key of an accepted row of the parent.
        checks: ``(reason, SQL condition)``: a row for which the condition holds is impossible and refused.
        interval_column: for the large tables, the timestamp that bounds a run's rows to ``[ds, ds + 1 day)``;
            the others are read whole (a snapshot per run).
        referenced_by: ``(column, child table)``: the slice also holds the rows, of any day, that the interval's
            rows of the child refer to by ``column`` (read by key from the source), so a child row is an orphan
            only when its parent does not exist in the source, whatever days were loaded before.
    """

    name: str
    schema: T.StructType
    key: tuple[str, ...]
    parents: tuple[tuple[str, str], ...] = ()
    checks: tuple[tuple[str, str], ...] = ()
    interval_column: str | None = None
    referenced_by: tuple[str, str] | None = None

    @property
    def raw_table(self) -> str:
        return f"raw.rentals_{self.name}"

    @property
    def bronze_table(self) -> str:
        return f"bronze.rentals_{self.name}"

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.schema.fields]

    @property
    def raw_schema(self) -> T.StructType:
        """Every source column as a string, with the lineage columns."""
        strings = ", ".join(f"{c} string" for c in self.columns)
        return schema(DS, strings, "_source_table string NOT NULL, _loaded_at timestamp NOT NULL")

    @property
    def bronze_schema(self) -> T.StructType:
        return schema(DS, self.schema.fields, "_loaded_at timestamp NOT NULL")


# In dependency order: every parent comes before its children.
SOURCE_TABLES: tuple[SourceTable, ...] = (
    SourceTable("country", COUNTRY, ("country_id",)),
    SourceTable("city", CITY, ("city_id",), parents=(("country_id", "country"),)),
    SourceTable("address", ADDRESS, ("address_id",), parents=(("city_id", "city"),)),
    SourceTable("category", CATEGORY, ("category_id",)),
    SourceTable("film", FILM, ("film_id",)),
    SourceTable(
        "film_category",
        FILM_CATEGORY,
        ("film_id", "category_id"),
        parents=(("film_id", "film"), ("category_id", "category")),
    ),
    SourceTable("store", STORE, ("store_id",), parents=(("address_id", "address"),)),
    SourceTable("staff", STAFF, ("staff_id",), parents=(("address_id", "address"), ("store_id", "store"))),
    SourceTable("inventory", INVENTORY, ("inventory_id",), parents=(("film_id", "film"), ("store_id", "store"))),
    SourceTable("customer", CUSTOMER, ("customer_id",), parents=(("address_id", "address"), ("store_id", "store"))),
    SourceTable(
        "rental",
        RENTAL,
        ("rental_id",),
        interval_column="rental_date",
        referenced_by=("rental_id", "payment"),
        parents=(("inventory_id", "inventory"), ("customer_id", "customer"), ("staff_id", "staff")),
        checks=(("return_before_rental", "return_date < rental_date"),),
    ),
    SourceTable(
        "payment",
        PAYMENT,
        ("payment_id",),
        interval_column="payment_date",
        parents=(("rental_id", "rental"), ("customer_id", "customer"), ("staff_id", "staff")),
        checks=(("negative_amount", "amount < 0"),),
    ),
)
TABLES = {t.name: t for t in SOURCE_TABLES}


# --- pure transformations ----------------------------------------------------------------------


def interval_predicate(column: str, ds: str) -> str:
    """SQL bounding ``column`` (a timestamptz) to the run's interval ``[ds, ds + 1 day)`` in UTC."""
    start = dt.date.fromisoformat(ds)
    end = start + dt.timedelta(days=1)
    return f"{column} >= TIMESTAMPTZ '{start} 00:00:00+00' AND {column} < TIMESTAMPTZ '{end} 00:00:00+00'"


def source_predicate(table: SourceTable, ds: str) -> str | None:
    """SQL choosing the source rows of ``table`` that slice ``ds`` holds (``None``: the whole table).

    The interval's rows, and for a parent of an interval table (rental for payment) the rows the child's interval
    rows refer to, of whatever day: a keyed read, so a payment made today for a rental of last month finds it.
    """
    if table.interval_column is None:
        return None
    where = interval_predicate(table.interval_column, ds)
    if table.referenced_by is None:
        return where
    column, child_name = table.referenced_by
    child = TABLES[child_name]
    keys = f"SELECT {column} FROM {child.name} WHERE {interval_predicate(child.interval_column, ds)}"
    return f"({where}) OR {table.key[0]} IN ({keys})"


def in_interval(column: str, ds: str) -> Column:
    """``column`` (a timestamp) within the run's interval ``[ds, ds + 1 day)`` in UTC."""
    start = dt.datetime.combine(dt.date.fromisoformat(ds), dt.time(), dt.UTC)
    end = start + dt.timedelta(days=1)
    return (F.col(column) >= F.lit(start)) & (F.col(column) < F.lit(end))


def to_raw(source: DataFrame, table: SourceTable, ds: str) -> DataFrame:
    """Rows read from the source -> raw rows of slice ``ds``: every column as a string, plus lineage."""
    return source.select(
        F.lit(ds).cast("date").alias("ds"),
        *[F.col(c).cast("string").alias(c) for c in table.columns],
        F.lit(table.name).alias("_source_table"),
        F.current_timestamp().alias("_loaded_at"),
    )


def _first_of(conditions: Sequence[tuple[object, str]]) -> Column:
    """The reason of the first condition that holds, else NULL."""
    reason = F.lit(None).cast("string")
    for condition, name in reversed(conditions):
        reason = F.when(condition, F.lit(name)).otherwise(reason)
    return reason


def _parse(raw: DataFrame, table: SourceTable) -> DataFrame:
    """Typed columns, the row and its key as received (JSON), and the first parsing problem as ``reason``."""
    problems = []
    typed = []
    for field in table.schema.fields:
        received = F.col(f"`{field.name}`")
        value = F.expr(f"try_cast(`{field.name}` AS {field.dataType.simpleString()})")
        typed.append(value.alias(field.name))
        if not field.nullable:
            problems.append((received.isNull(), f"missing_{field.name}"))
        problems.append((received.isNotNull() & value.isNull(), f"bad_{field.name}"))
    return raw.select(
        "ds",
        *typed,
        F.to_json(F.struct(*[F.col(k) for k in table.key])).alias("_key"),
        F.to_json(F.struct(*[F.col(c) for c in table.columns])).alias("_record"),
        _first_of(problems).alias("reason"),
    )


def _checked(raw: DataFrame, table: SourceTable, parents: Mapping[str, DataFrame]) -> DataFrame:
    """``_parse`` + the value checks and the foreign keys: ``reason`` is the first problem found, ``kind`` follows."""
    rows = _parse(raw, table)
    reason = F.coalesce(F.col("reason"), _first_of([(F.expr(sql), name) for name, sql in table.checks]))
    rows = rows.withColumn("reason", reason)
    for i, (column, parent) in enumerate(table.parents):
        parent_key = TABLES[parent].key[0]
        keys = parents[parent].select(F.col(parent_key).alias(f"_parent{i}")).distinct()
        rows = rows.join(keys, rows[column] == keys[f"_parent{i}"], "left")
        orphan = F.col(column).isNotNull() & F.col(f"_parent{i}").isNull()
        rows = rows.withColumn("reason", F.coalesce("reason", F.when(orphan, F.lit(f"orphan_{column}")))).drop(
            f"_parent{i}"
        )
    return rows.withColumn("kind", F.when(F.col("reason").isNull(), RECORD).otherwise(REJECT))


# The latest `last_update` first (a missing one last), then by content, so the choice among versions is stable.
_LATEST_FIRST = "coalesce(-unix_micros(last_update), 9223372036854775807)"


def layer(table: SourceTable, parents: Mapping[str, DataFrame]) -> Layer:
    """The bronze layer of one source table, its foreign keys checked against ``parents``' accepted rows."""
    return Layer(
        domain=DOMAIN,
        raw=Target(table.raw_table, table.raw_schema),
        bronze=Target(table.bronze_table, table.bronze_schema),
        rejects=Target(REJECTS, REJECTS_SCHEMA),
        parse=lambda raw: _checked(raw, table, parents),
        key=table.key,
        order=(_LATEST_FIRST, "_record") if "last_update" in table.columns else ("_record",),
        to_bronze=lambda rows: rows.select("ds", *table.columns, F.current_timestamp().alias("_loaded_at")),
        to_rejects=lambda rows: rows.select(
            "ds",
            F.lit(table.name).alias("table_name"),
            F.col("_key").alias("record_key"),
            "reason",
            F.col("_record").alias("record"),
            F.current_timestamp().alias("_loaded_at"),
        ),
        unit="rows",
    )


def classify(raw: DataFrame, table: SourceTable, parents: Mapping[str, DataFrame]) -> DataFrame:
    """Type and validate the raw rows of one table.

    Adds the typed columns, ``kind`` (record, duplicate, reject) and ``reason`` (for rejects). A row is refused for
    the first problem found: a required column missing or not of its type, an impossible value (``checks``), then
    a foreign key that matches no accepted row of its parent (``orphan_<column>``). Among the rows left, the first
    of each source key (latest ``last_update``, then by content, so the choice is stable) is the record.

    Args:
        raw: the raw slice of ``table``.
        table: the table's rules.
        parents: accepted rows of the parent tables, by name (only their key column is used).
    """
    return layer(table, parents).classify(raw)


def accepted(classified: DataFrame, table: SourceTable) -> DataFrame:
    """The de-duplicated, typed rows of a classified slice, in the bronze schema."""
    return layer(table, {}).accepted(classified)


def rejected(classified: DataFrame, table: SourceTable) -> DataFrame:
    """Every refused row: its table, key, reason and the record as received."""
    return layer(table, {}).rejected(classified)


def customer_countries(customer: DataFrame, address: DataFrame, city: DataFrame, country: DataFrame) -> DataFrame:
    """``(customer_id, country, create_date)``: each customer's country through its address and the address's city."""
    return (
        customer.select("customer_id", "address_id", "create_date")
        .join(address.select("address_id", "city_id"), "address_id")
        .join(city.select("city_id", "country_id"), "city_id")
        .join(country.select("country_id", "country"), "country_id")
        .select("customer_id", "country", "create_date")
    )


def top_countries(places: DataFrame, rental: DataFrame, payment: DataFrame, ds: str) -> DataFrame:
    """Per country: its customers as of the slice, the rentals and revenue of the slice, and its rank.

    Customers are those created on or before ``ds`` (``create_date``), counted by their address's country (not by
    city), so a re-run of an old day does not count customers who joined since; it does see their current address,
    as the source keeps no history of it. Rentals are those rented in the run's interval (the slice also holds the
    earlier rentals its payments are for), payments those of the slice; both are attributed to their customer's
    country. Countries rank by customers, then revenue; ties share a rank.

    Args:
        places: ``customer_countries()`` of the slice.
        rental: the slice's accepted rentals.
        payment: the slice's accepted payments.
        ds: the slice.
    """
    counted = places.where(F.col("create_date") <= F.lit(ds).cast("date"))
    customers = counted.groupBy("country").agg(F.count("*").alias("customers"))
    rented = rental.where(in_interval("rental_date", ds))
    rentals = rented.join(places, "customer_id").groupBy("country").agg(F.count("*").alias("rentals"))
    revenue = payment.join(places, "customer_id").groupBy("country").agg(F.sum("amount").alias("revenue"))
    by_country = customers.join(rentals, "country", "outer").join(revenue, "country", "outer")
    by_country = by_country.select(
        F.lit(ds).cast("date").alias("ds"),
        "country",
        F.coalesce("customers", F.lit(0)).cast("long").alias("customers"),
        F.coalesce("rentals", F.lit(0)).cast("long").alias("rentals"),
        F.coalesce("revenue", F.lit(0)).cast(T.DecimalType(18, 2)).alias("revenue"),
    )
    ranking = Window.orderBy(F.desc("customers"), F.desc("revenue"))  # a few hundred countries: one partition is fine
    return by_country.withColumn("rank", F.rank().over(ranking)).orderBy("rank", "country")


def films_per_category(category: DataFrame, film_category: DataFrame, ds: str) -> DataFrame:
    """Distinct films per category (categories without films count 0)."""
    return (
        category.select("category_id", F.col("name").alias("category"))
        .join(film_category.select("category_id", "film_id"), "category_id", "left")
        .groupBy("category")
        .agg(F.countDistinct("film_id").alias("films"))
        .select(F.lit(ds).cast("date").alias("ds"), "category", "films")
        .orderBy("category")
    )


# --- source --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceDb:
    """The source database, from the environment the operator prepared from the Airflow connection."""

    url: str
    user: str
    password: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SourceDb:
        env = os.environ if env is None else env
        url = env.get("SOURCE_JDBC_URL", "").strip()
        if not url.startswith("jdbc:"):
            raise ConfigError("environment variable SOURCE_JDBC_URL is not set to a JDBC URL")
        return cls(url, env.get("SOURCE_USER", ""), env.get("SOURCE_PASSWORD", ""))

    def reader(self, spark, relation: str):
        """A JDBC reader of ``relation`` (a table or a parenthesised, aliased query)."""
        reader = (
            spark.read.format("jdbc")
            .option("url", self.url)
            .option("user", self.user)
            .option("password", self.password)
            .option("dbtable", relation)
            .option("fetchsize", "10000")
        )
        driver = JDBC_DRIVERS.get(self.url.split(":")[1])
        return reader.option("driver", driver) if driver else reader


def read_source(spark, source: SourceDb, table: SourceTable, ds: str, partitions: int) -> DataFrame:
    """The table's rows for slice ``ds``: the whole table, or for the large ones ``source_predicate``'s rows.

    Interval reads are split into ``partitions`` parallel queries on ranges of the first key column, bounded by
    the smallest and largest key found in the interval.
    """
    query = f"SELECT {', '.join(table.columns)} FROM {table.name}"
    where = source_predicate(table, ds)
    if where is None:
        return source.reader(spark, f"({query}) AS src").load()
    key = table.key[0]
    bounds = source.reader(spark, f"(SELECT min({key}) AS lo, max({key}) AS hi FROM {table.name} WHERE {where}) AS b")
    low, high = bounds.load().first()
    reader = source.reader(spark, f"({query} WHERE {where}) AS src")
    if low is None:
        return reader.load()
    return (
        reader.option("partitionColumn", key)
        .option("lowerBound", str(low))
        .option("upperBound", str(high))
        .option("numPartitions", str(partitions))
        .load()
    )


# --- jobs ------------------------------------------------------------------------------------------


def run_raw(spark, ds: str, *, partitions: int = 4) -> dict[str, int]:
    """Read the source tables over JDBC into ``raw.rentals_<table>``. Returns rows per table.

    Children are read before their parents, so rows added to the live source during the run cannot make a
    child point at a parent row that was read before it existed.
    """
    source = SourceDb.from_env()
    counts = {}
    for table in reversed(SOURCE_TABLES):
        rows = to_raw(read_source(spark, source, table, ds, partitions), table, ds)
        replace_slice(rows, table.raw_table, table.raw_schema, ds)
        counts[table.name] = read_slice(spark, table.raw_table, ds).count()
    log.info("raw rentals ds=%s: %s", ds, counts)
    return counts


def parse_slice(
    raws: Mapping[str, DataFrame], keep: Callable[[DataFrame], DataFrame] = lambda rows: rows
) -> dict[str, DataFrame]:
    """Every table of a raw slice parsed and checked, parents first, each against its parents' valid rows.

    Args:
        raws: the raw slice of every source table, by name.
        keep: applied to each parsed table before its children read it (``run_bronze`` persists them).

    Returns:
        Each table's rows with ``kind`` (record for every valid row, reject) and ``reason``; ``layer(table,
        {}).records()`` de-duplicates them.
    """
    parsed: dict[str, DataFrame] = {}
    for table in SOURCE_TABLES:
        valid = {name: rows.where(F.col("kind") == RECORD) for name, rows in parsed.items()}
        parsed[table.name] = keep(layer(table, valid).parse(raws[table.name]))
    return parsed


def run_bronze(spark, ds: str, *, max_reject_ratio: float = 0.05) -> list[Reconciliation]:
    """Type, validate and de-duplicate every table of the slice; refuse to publish when too many rows are rejected.

    Tables are classified parents first, each child's foreign keys against its parents' valid rows of the slice
    (the keys bronze accepts; the rental slice holds the rentals the slice's payments are for, whatever their day).
    Rejects of every table go to ``bronze.rentals_rejects`` (written even when the gate fails, for inspection);
    the gate applies to each table's share of rejects, and one run summary counts them all.
    """
    raws = {table.name: read_slice(spark, table.raw_table, ds) for table in SOURCE_TABLES}
    # Small tables, each read by its children's checks and by three writes: kept rather than re-derived.
    parsed = parse_slice(raws, keep=lambda rows: rows.persist())
    parts = []
    for table in SOURCE_TABLES:
        bronze, rows = layer(table, {}), parsed[table.name]
        raw_count = raws[table.name].count()
        parts.append(Part(rows, raw_count, bronze.records, bronze.rejected, bronze.bronze, table.name))
    try:
        return publish_parts(
            parts, domain=DOMAIN, ds=ds, rejects=Target(REJECTS, REJECTS_SCHEMA), max_reject_ratio=max_reject_ratio
        )
    finally:
        for frame in parsed.values():
            frame.unpersist()


def run_gold(spark, ds: str) -> dict[str, int]:
    """Rebuild the slice of ``gold.top_countries`` and ``gold.films_per_category`` from bronze."""
    bronze = {t.name: read_slice(spark, t.bronze_table, ds) for t in SOURCE_TABLES}
    places = customer_countries(bronze["customer"], bronze["address"], bronze["city"], bronze["country"]).persist()
    try:
        outputs = {
            GOLD_TOP_COUNTRIES: (top_countries(places, bronze["rental"], bronze["payment"], ds), TOP_COUNTRIES_SCHEMA),
            GOLD_FILMS_PER_CATEGORY: (
                films_per_category(bronze["category"], bronze["film_category"], ds),
                FILMS_PER_CATEGORY_SCHEMA,
            ),
        }
        counts = publish_gold(spark, outputs, ds, domain=DOMAIN)
    finally:
        places.unpersist()
    log.info("gold rentals ds=%s: %s", ds, counts)
    return counts


JOBS = layers(
    Job(run_raw, [("--partitions", {"type": int, "default": 4, "help": "parallel JDBC reads of rental and payment"})]),
    run_bronze,
    run_gold,
    max_reject_ratio=0.05,
)
