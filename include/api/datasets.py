"""The REST API's dataset registry: each served gold table declared once (columns, filters, page key, lookup key).

A new gold table is served by the API once a ``Dataset`` for it is appended to ``REGISTRY``: the routes, their
query parameters and validation, the OpenAPI schemas and the catalogue entry are all generated from it. This
module imports nothing heavy so that the serve DAG can read ``key_columns`` from it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

ColumnType = Literal["date", "datetime", "int", "float", "str", "bool"]
Direction = Literal["asc", "desc"]

# Query parameters every list route has; filter parameters must not reuse them.
RESERVED_PARAMS = frozenset({"ds", "limit", "cursor"})
PYTHON_TYPES: dict[str, type] = {
    "date": dt.date,
    "datetime": dt.datetime,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
}


@dataclass(frozen=True)
class Column:
    """A column the API returns.

    Attributes:
        name: the column name in the served table and in the JSON rows.
        type: ``datetime`` columns hold naive UTC (the loader's ``DATETIME(6)``) and are returned with a ``Z``.
        description: shown in the catalogue and the OpenAPI schema.
        example: a value shown in the OpenAPI schema.
        nullable: whether the column may be null (sort and lookup columns may not).
    """

    name: str
    type: ColumnType
    description: str
    example: Any
    nullable: bool = False


@dataclass(frozen=True)
class Range:
    """Filter ``lower <= column < upper`` (``<= upper`` when ``upper_inclusive``); both bounds optional.

    The bounds must be in order (``lower < upper``, or ``<=`` when inclusive), else the request gets a 422.
    """

    column: str
    lower: str
    upper: str
    description: str
    examples: tuple[Any, Any]
    upper_inclusive: bool = False


@dataclass(frozen=True)
class Equals:
    """Filter ``column = value`` for a text column; values must match ``pattern``."""

    column: str
    param: str
    description: str
    example: str
    pattern: str
    max_length: int = 64


@dataclass(frozen=True)
class Contains:
    """Case-insensitive substring search on a text column (``%`` and ``_`` match themselves)."""

    column: str
    param: str
    description: str
    example: str
    max_length: int = 100


Filter = Range | Equals | Contains


@dataclass(frozen=True)
class Dataset:
    """A gold table as the API serves it.

    Attributes:
        name: the served table (``lakehouse.<name>``) and the dataset's id in the catalogue.
        path: the route under ``/v1/``, e.g. ``tweets/per-hour``.
        domain: the source domain; the OpenAPI tag.
        summary: one line for the route list.
        description: what a row is, for the docs and the catalogue.
        columns: the returned columns, ``ds`` first.
        sort: the stable order and page key: ``(column, direction)`` pairs, unique within a slice.
        filters: the filter parameters of the list route.
        key: a column looked up by ``GET /v1/<path>/{key}``, None for no lookup route: unique within a slice for a
            snapshot dataset, unique across slices otherwise (should a value be in two slices, the newest wins).
        key_pattern: what a lookup key must match (text keys), for the 422.
        snapshot: True when each ``ds`` slice is a complete snapshot (tweets: every run re-reads the whole
            source file): a request reads one slice, ``ds`` or else the latest loaded. False when slices hold
            different days' rows: a request reads across slices, filtered by a ``Range`` on ``ds``.
    """

    name: str
    path: str
    domain: str
    summary: str
    description: str
    columns: tuple[Column, ...]
    sort: tuple[tuple[str, Direction], ...]
    filters: tuple[Filter, ...] = ()
    key: str | None = None
    key_pattern: str | None = None
    snapshot: bool = True
    column_map: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_map", {c.name: c for c in self.columns})
        check(self)

    @property
    def page_key(self) -> tuple[tuple[str, Direction], ...]:
        """The sort, with ``ds`` first when a request may span slices (so the order is unique)."""
        if self.snapshot or any(name == "ds" for name, _ in self.sort):
            return self.sort
        return (("ds", "asc"), *self.sort)


def _filter_params(item: Filter) -> list[str]:
    return [item.lower, item.upper] if isinstance(item, Range) else [item.param]


def _column_problems(dataset: Dataset) -> list[str]:
    names = dataset.column_map
    problems = []
    if not dataset.columns or dataset.columns[0].name != "ds" or dataset.columns[0].type != "date":
        problems.append("the first column must be ds (date)")
    if not dataset.sort:
        problems.append("a sort key is required")
    for name, direction in dataset.sort:
        if name not in names or names[name].nullable or direction not in ("asc", "desc"):
            problems.append(f"sort column {name!r} must be a declared non-null column, asc or desc")
    if dataset.key is not None and (dataset.key not in names or names[dataset.key].nullable):
        problems.append(f"key {dataset.key!r} must be a declared non-null column")
    return problems


def _filter_problems(dataset: Dataset) -> list[str]:
    names = dataset.column_map
    problems = []
    params = [param for item in dataset.filters for param in _filter_params(item)]
    if len(set(params)) != len(params) or set(params) & RESERVED_PARAMS:
        problems.append(f"filter parameters {params} must be unique and not one of {sorted(RESERVED_PARAMS)}")
    for item in dataset.filters:
        if item.column not in names:
            problems.append(f"filter column {item.column!r} is not declared")
        elif isinstance(item, Equals | Contains) and names[item.column].type != "str":
            problems.append(f"text filter on non-text column {item.column!r}")
    return problems


def check(dataset: Dataset) -> None:
    """Refuse an inconsistent declaration at import time rather than at the first request.

    Raises:
        ValueError: naming the problems.
    """
    problems = _column_problems(dataset) + _filter_problems(dataset)
    if problems:
        raise ValueError(f"dataset {dataset.name}: " + "; ".join(problems))


# What a text lookup key may be: printable, at most a VARCHAR(255) key (the loader's key column type).
TEXT_KEY = r"^[^\x00-\x1f\x7f]{1,255}$"
DS_COLUMN = Column("ds", "date", "The slice (the pipeline run's data date) the row was loaded from.", "2026-11-20")
TWEETS = Column("tweets", "int", "Number of distinct tweets.", 1520)

REGISTRY: tuple[Dataset, ...] = (
    Dataset(
        name="tweets_per_hour",
        path="tweets/per-hour",
        domain="tweets",
        summary="Tweets per UTC hour",
        description="One row per UTC hour that has tweets: the count of distinct tweets created in that hour.",
        columns=(DS_COLUMN, Column("hour_start", "datetime", "Start of the UTC hour.", "2020-04-02T11:00:00Z"), TWEETS),
        sort=(("hour_start", "asc"),),
        filters=(
            Range(
                "hour_start",
                "start",
                "end",
                "Hours starting at or after `start` and before `end` (ISO 8601; without an offset, UTC).",
                ("2020-04-01T00:00:00Z", "2020-04-03T00:00:00Z"),
            ),
        ),
        key="hour_start",
    ),
    Dataset(
        name="tweets_per_day",
        path="tweets/per-day",
        domain="tweets",
        summary="Tweets per UTC day",
        description="One row per UTC calendar day that has tweets: the count of distinct tweets created that day.",
        columns=(DS_COLUMN, Column("day", "date", "The UTC calendar day.", "2020-04-02"), TWEETS),
        sort=(("day", "asc"),),
        filters=(
            Range(
                "day",
                "from",
                "to",
                "Days from `from` to `to`, both included (YYYY-MM-DD).",
                ("2020-04-01", "2020-04-30"),
                upper_inclusive=True,
            ),
        ),
        key="day",
    ),
    Dataset(
        name="tweets_by_language",
        path="tweets/by-language",
        domain="tweets",
        summary="Tweets per language",
        description="One row per language code (`und` when the source gave none), most tweeted first.",
        columns=(DS_COLUMN, Column("lang", "str", "Language code, lower case.", "en"), TWEETS),
        sort=(("tweets", "desc"), ("lang", "asc")),
        key="lang",
        key_pattern=r"^[a-z]{2,8}(-[a-z0-9]{1,8})*$",
    ),
)

REGISTRY += (
    Dataset(
        name="top_countries",
        path="rentals/top-countries",
        domain="rentals",
        summary="Top countries by customers",
        description="Per country with customers: customers, the day's rentals and revenue, and the rank (by "
        "customers, then revenue; ties share a rank). Use `ds` for the day and `limit` for the top N.",
        columns=(
            DS_COLUMN,
            Column("country", "str", "Country of the customers' addresses.", "India"),
            Column("customers", "int", "Customers living in the country.", 60),
            Column("rentals", "int", "Rentals of the day by those customers.", 42),
            Column("revenue", "float", "Payments of the day by those customers (DECIMAL(18,2)).", 183.58),
            Column("rank", "int", "1 = most customers; ties share a rank.", 1),
        ),
        sort=(("rank", "asc"), ("country", "asc")),
        key="country",
        key_pattern=TEXT_KEY,
    ),
    Dataset(
        name="films_per_category",
        path="rentals/films-per-category",
        domain="rentals",
        summary="Films per category",
        description="Distinct films per film category (categories without films count 0).",
        columns=(
            DS_COLUMN,
            Column("category", "str", "Film category.", "Action"),
            Column("films", "int", "Distinct films in the category.", 64),
        ),
        sort=(("category", "asc"),),
        key="category",
        key_pattern=TEXT_KEY,
    ),
    Dataset(
        name="product_master",
        path="products",
        domain="products",
        summary="Product readings",
        description="Every distinct sensor reading: a product seen by a sensor of a department in an hour "
        "(department, serial, product and hour identify it), with its expiry. Times are zone-less as the sensors "
        "write them (shown with a `Z`). A slice holds the readings of the files its run read, so readings are read "
        "across all slices.",
        columns=(
            DS_COLUMN,
            Column("department_name", "str", "Department.", "Dairy North"),
            Column("sensor_serial", "str", "Sensor serial (one sensor reads several products).", "SN-4F3A21B0"),
            Column("product_name", "str", "Product.", "Whole Milk 1L"),
            Column("create_at", "datetime", "The reading's hour.", "2024-01-01T00:00:00Z"),
            Column("product_expire", "datetime", "The product's expiry.", "2024-03-29T10:12:00Z"),
            Column("shelf_life_days", "float", "Expiry minus creation, in days.", 88.4),
        ),
        sort=(("department_name", "asc"), ("sensor_serial", "asc"), ("product_name", "asc"), ("create_at", "asc")),
        filters=(
            Equals(
                "department_name", "department", "Readings of this department (exact).", "Dairy North", pattern=TEXT_KEY
            ),
            Equals("sensor_serial", "serial", "Readings of this sensor (exact).", "SN-4F3A21B0", pattern=TEXT_KEY),
            Contains("product_name", "q", "Products whose name contains this text (case-insensitive).", "milk"),
            Range(
                "create_at",
                "from",
                "to",
                "Readings created at or after `from` and before `to` (ISO 8601).",
                ("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"),
            ),
        ),
        snapshot=False,
    ),
    Dataset(
        name="products_by_department",
        path="products/by-department",
        domain="products",
        summary="Products and sensors per department and day",
        description="Per department and reading day, over the whole product master as of the slice: distinct "
        "products, distinct sensors, readings.",
        columns=(
            DS_COLUMN,
            Column("department_name", "str", "Department.", "Dairy North"),
            Column("day", "date", "The readings' day.", "2024-01-01"),
            Column("products", "int", "Distinct products read.", 16),
            Column("sensors", "int", "Distinct sensors that read them.", 10),
            Column("readings", "int", "Readings.", 480),
        ),
        sort=(("department_name", "asc"), ("day", "asc")),
        filters=(
            Equals("department_name", "department", "One department (exact).", "Dairy North", pattern=TEXT_KEY),
            Range(
                "day",
                "from",
                "to",
                "Days from `from` to `to`, both included.",
                ("2024-01-01", "2024-01-31"),
                upper_inclusive=True,
            ),
        ),
    ),
    Dataset(
        name="product_shelf_life",
        path="products/shelf-life",
        domain="products",
        summary="Shelf life distribution",
        description="Readings per whole day of shelf life (expiry minus creation, rounded down), over the whole "
        "product master as of the slice.",
        columns=(
            DS_COLUMN,
            Column("shelf_life_days", "int", "Whole days of shelf life.", 88),
            Column("readings", "int", "Readings.", 120553),
            Column("products", "int", "Distinct (department, product) pairs.", 1600),
            Column("avg_shelf_life_days", "float", "Mean shelf life of these readings, in days.", 88.49),
        ),
        sort=(("shelf_life_days", "asc"),),
    ),
    Dataset(
        name="products_expiring",
        path="products/expiring",
        domain="products",
        summary="Products expiring within N days",
        description="Per department and horizon N (`within_days`), the products whose latest reading (per sensor) "
        "expires within N days of `as_of`, the latest reading in the master, as of the slice.",
        columns=(
            DS_COLUMN,
            Column("department_name", "str", "Department.", "Dairy North"),
            Column("within_days", "int", "The horizon N, in days.", 7),
            Column("as_of", "datetime", "The feed's latest reading, the horizon's start.", "2024-12-31T23:00:00Z"),
            Column("products", "int", "Distinct products expiring within N days.", 3),
            Column("readings", "int", "Their latest readings (one per sensor and product).", 4),
        ),
        sort=(("within_days", "asc"), ("department_name", "asc")),
        filters=(Equals("department_name", "department", "One department (exact).", "Dairy North", pattern=TEXT_KEY),),
    ),
)

# What a day range looks like in the trips routes (both bounds included; days are UTC days).
TRIP_DAYS = Range(
    "trip_date",
    "from",
    "to",
    "Trip days from `from` to `to`, both included (YYYY-MM-DD, UTC: the feed's zone-less datetimes are UTC).",
    ("2026-11-16", "2026-11-22"),
    upper_inclusive=True,
)
NAME_KEY = r"^[^\x00-\x1f]{1,100}$"  # a region or datasource as the feed names it

REGISTRY += (
    Dataset(
        name="users",
        path="users",
        domain="users",
        summary="Users",
        description="One row per user, as the users run that last saw them left it (no password or hash field is "
        "ever stored past raw). Its `ds` is that run, so the users are read across all slices.",
        columns=(
            DS_COLUMN,
            Column(
                "user_id", "str", "The user's id (the source's login UUID).", "0f5e6a9c-2b1d-4c83-9e57-3a0c1d2e4f60"
            ),
            Column("title", "str", "Title.", "Ms", nullable=True),
            Column("first_name", "str", "First name.", "Ana", nullable=True),
            Column("last_name", "str", "Last name.", "Silva", nullable=True),
            Column("gender", "str", "Gender as the source gave it, lower case.", "female", nullable=True),
            Column("email", "str", "E-mail address.", "ana.silva@example.com", nullable=True),
            Column("username", "str", "Login name.", "bluecat123", nullable=True),
            Column("date_of_birth", "date", "Date of birth.", "1990-04-02", nullable=True),
            Column("age", "int", "Age in years on the run's day.", 36, nullable=True),
            Column("nationality", "str", "Nationality (ISO 3166-1 alpha-2 code).", "BR", nullable=True),
            Column("street", "str", "Street address.", "8929 Rua Dois", nullable=True),
            Column("city", "str", "City.", "Manaus", nullable=True),
            Column("state", "str", "State or region.", "Amazonas", nullable=True),
            Column("country", "str", "Country.", "Brazil", nullable=True),
            Column("postcode", "str", "Postcode, as text.", "69000-000", nullable=True),
            Column("latitude", "float", "Latitude of the address (WGS 84).", -3.119, nullable=True),
            Column("longitude", "float", "Longitude of the address (WGS 84).", -60.0217, nullable=True),
            Column("timezone_offset", "str", "UTC offset of the address, e.g. `-4:00`.", "-4:00", nullable=True),
            Column(
                "registered_at", "datetime", "When the user registered (UTC).", "2015-06-01T10:00:00Z", nullable=True
            ),
            Column("phone", "str", "Phone number.", "(92) 3456-7890", nullable=True),
            Column("cell", "str", "Mobile number.", "(92) 98765-4321", nullable=True),
            Column("picture_url", "str", "URL of the user's picture.", "https://example.com/p/1.jpg", nullable=True),
            Column("first_ds", "date", "The run that first saw the user.", "2026-11-18", nullable=True),
        ),
        sort=(("user_id", "asc"),),
        filters=(
            Equals(
                "gender",
                "gender",
                "Users of this gender (lower case).",
                "female",
                pattern=r"^[a-z][a-z -]{0,31}$",
                max_length=32,
            ),
            Equals(
                "nationality",
                "nationality",
                "Users of this nationality (ISO 3166-1 alpha-2).",
                "BR",
                pattern=r"^[A-Z]{2}$",
                max_length=2,
            ),
            Equals("country", "country", "Users living in this country (exact).", "Brazil", pattern=TEXT_KEY),
        ),
        key="user_id",
        key_pattern=TEXT_KEY,
        snapshot=False,
    ),
    Dataset(
        name="user_statistics",
        path="users/statistics",
        domain="users",
        summary="User statistics per day and gender",
        description="Per users run (`ds`) and gender, over the users that run accepted: users and their average "
        "age; gender `all` covers every user of the run. Slices hold different days, so they are read across "
        "slices: `from`/`to` select the runs.",
        columns=(
            DS_COLUMN,
            Column("gender", "str", "Gender, or `all` for every user of the run.", "all"),
            Column("users", "int", "Users.", 1000),
            Column("average_age", "float", "Average age in years (2 decimals).", 47.31, nullable=True),
        ),
        sort=(("gender", "asc"),),
        filters=(
            Range(
                "ds",
                "from",
                "to",
                "Runs from `from` to `to`, both included (YYYY-MM-DD).",
                ("2026-11-01", "2026-11-30"),
                upper_inclusive=True,
            ),
            Equals("gender", "gender", "One gender, or `all`.", "all", pattern=r"^[a-z][a-z -]{0,31}$", max_length=32),
        ),
        snapshot=False,
    ),
    Dataset(
        name="trips",
        path="trips",
        domain="trips",
        summary="Trips",
        description="One row per trip of the feed (valid, duplicates removed), with its ISO week, hour, time bucket "
        "and ~1 km grid cells. A slice holds the trips of the files its run read (a changed file's trips move to "
        "the run that read it again), so trips are read across slices. Datetimes are UTC (the feed's have no "
        "zone). For the weekly average see `/v1/trips/weekly-average`.",
        columns=(
            DS_COLUMN,
            Column("trip_id", "str", "The trip's id: SHA-256 hex of its values.", "9f" + "0" * 62),
            Column("region", "str", "Region (city), as the feed names it.", "Prague"),
            Column("origin_longitude", "float", "Origin longitude (WGS 84).", 14.4973794438195),
            Column("origin_latitude", "float", "Origin latitude (WGS 84).", 50.00136875782316),
            Column("destination_longitude", "float", "Destination longitude (WGS 84).", 14.43109483523328),
            Column("destination_latitude", "float", "Destination latitude (WGS 84).", 50.04052930943246),
            Column("datetime", "datetime", "When the trip happened (UTC).", "2026-11-16T09:03:40Z"),
            Column("datasource", "str", "The app or provider that reported the trip.", "funny_car"),
            Column("trip_date", "date", "The trip's day (UTC).", "2026-11-16"),
            Column("week_start", "date", "The Monday of its ISO week.", "2026-11-16"),
            Column("hour_of_day", "int", "Its hour (UTC, 0-23).", 9),
            Column("time_bucket", "str", "Its 3-hour span of the day (UTC).", "09-12"),
            Column("origin_cell", "str", "Origin grid cell (0.01 degree): floor(lon*100):floor(lat*100).", "1449:5000"),
            Column("destination_cell", "str", "Destination grid cell.", "1443:5004"),
            Column("source_file", "str", "The landed file it was read from.", "s3a://landing/trips/a.csv"),
        ),
        sort=(("trip_id", "asc"),),
        filters=(
            TRIP_DAYS,
            Equals("region", "region", "One region (exact).", "Prague", pattern=NAME_KEY, max_length=100),
        ),
        key="trip_id",
        key_pattern=r"^[0-9a-f]{64}$",
        snapshot=False,
    ),
    Dataset(
        name="trip_groups",
        path="trips/groups",
        domain="trips",
        summary="Groups of similar trips",
        description="Trips with similar origin, destination and time of day: the same region, origin and "
        "destination cells of a 0.01-degree grid (about 1.1 km north-south, 0.7-0.8 km east-west in Europe) and "
        "3-hour span of the UTC day. Each slice is a snapshot over every trip as of its run, so one slice is read.",
        columns=(
            DS_COLUMN,
            Column("region", "str", "Region.", "Prague"),
            Column("origin_cell", "str", "Origin cell.", "1443:5008"),
            Column("destination_cell", "str", "Destination cell.", "1426:5010"),
            Column("time_bucket", "str", "3-hour span of the day (UTC).", "06-09"),
            Column("origin_cell_longitude", "float", "Longitude of the origin cell's centre.", 14.435),
            Column("origin_cell_latitude", "float", "Latitude of the origin cell's centre.", 50.085),
            Column("destination_cell_longitude", "float", "Longitude of the destination cell's centre.", 14.265),
            Column("destination_cell_latitude", "float", "Latitude of the destination cell's centre.", 50.105),
            Column("trips", "int", "Trips in the group.", 14),
            Column("datasources", "str", "Its datasources, sorted, comma-separated.", "cheap_mobile,funny_car"),
            Column("first_seen", "datetime", "Its first trip (UTC).", "2026-11-16T06:12:00Z"),
            Column("last_seen", "datetime", "Its latest trip (UTC).", "2026-11-22T08:47:00Z"),
        ),
        sort=(("region", "asc"), ("origin_cell", "asc"), ("destination_cell", "asc"), ("time_bucket", "asc")),
        filters=(Equals("region", "region", "One region (exact).", "Prague", pattern=NAME_KEY, max_length=100),),
    ),
    Dataset(
        name="trips_weekly",
        path="trips/weekly",
        domain="trips",
        summary="Trips per region and ISO week",
        description="Per region and ISO week of the range the feed covers (first to last trip day): the week's "
        "days inside that range, trips, days with trips, and trips per day; a week without trips is 0. Each slice "
        "is a snapshot over every trip as of its run, so one slice is read.",
        columns=(
            DS_COLUMN,
            Column("region", "str", "Region.", "Prague"),
            Column("week_start", "date", "The Monday starting the week.", "2026-11-16"),
            Column("days", "int", "Days of the week inside the covered range (1-7).", 7),
            Column("trips", "int", "Trips.", 740),
            Column("days_with_trips", "int", "Days of the week with at least one trip.", 7),
            Column("average_trips_per_day", "float", "trips / days, 4 decimals.", 105.7143),
        ),
        sort=(("region", "asc"), ("week_start", "asc")),
        filters=(Equals("region", "region", "One region (exact).", "Prague", pattern=NAME_KEY, max_length=100),),
    ),
)

BY_NAME: dict[str, Dataset] = {dataset.name: dataset for dataset in REGISTRY}


def key_columns(table: str) -> tuple[str, ...]:
    """Columns the TiDB loader should index for ``table`` (``load_slice_tidb(key_columns=...)``).

    The API's range pages and lookups read one slice ordered by the page key; with these indexed after
    ``(ds, _load_id)`` they are index range scans instead of a sort of the whole slice.
    """
    dataset = BY_NAME.get(table)
    if dataset is None:
        return ()
    # The loader builds one index (ds, _load_id, *key_columns): lead with the lookup key, else the page key.
    first = dataset.key or dataset.page_key[0][0]
    return () if first == "ds" else (first,)
