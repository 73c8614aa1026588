"""The REST API's dataset registry: the served gold tables (columns, filters, page key, lookup key) as checked data.

A gold table is declared once, in spark/lakehouse_jobs/tables.toml (read through include/tables.py): its name,
domain, description, slicing and columns with descriptions, and in its ``[gold.api]`` part how the API serves it.
``REGISTRY`` holds the tables that have one as checked ``Dataset`` objects; the routes, their query parameters and
validation, the OpenAPI schemas and the catalogue entries are all generated from it. This module imports nothing
heavy so that the serve DAG can read ``key_columns`` from it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from include.tables import DECLARED, declarations

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


def _column(declared: declarations.Column) -> Column:
    if declared.example is None:
        raise ValueError(f"column {declared.name!r} needs an example to be served by the API")
    return Column(declared.name, declared.type, declared.description, declared.example, declared.nullable)


DS_COLUMN = _column(DECLARED.shared["ds"])


def _filter(entry: dict[str, Any], patterns: dict[str, str]) -> Filter:
    entry = dict(entry)
    if "range" in entry:
        return Range(entry.pop("range"), examples=tuple(entry.pop("examples")), **entry)
    if "equals" in entry:
        return Equals(entry.pop("equals"), pattern=patterns[entry.pop("pattern")], **entry)
    if "contains" in entry:
        return Contains(entry.pop("contains"), **entry)
    raise ValueError(f"a filter needs `range`, `equals` or `contains`: {entry}")


def api_dataset(table: declarations.Table, patterns: dict[str, str]) -> Dataset:
    """The API dataset of a gold table whose declaration has an ``api`` part (``[gold.api]``), checked.

    Raises:
        ValueError: an inconsistent declaration (``check``), a filter of no known kind, or a column without example.
        TypeError: an ``api`` field ``Dataset`` or its filter does not have.
    """
    api = dict(table.api or {})
    omit = set(api.pop("omit", ()))
    if omit - {c.name for c in table.columns}:
        raise ValueError(f"dataset {table.name}: omitted columns {sorted(omit)} must be declared columns")
    if "key_pattern" in api:
        api["key_pattern"] = patterns[api["key_pattern"]]
    # Pages and lookups must be unique: the sort covers the table's key, a lookup is by the whole key.
    if not set(table.key) <= {name for name, _ in api.get("sort", ())}:
        raise ValueError(f"dataset {table.name}: the sort must include the table's key {list(table.key)}")
    if api.get("key") is not None and (api["key"],) != table.key:
        raise ValueError(f"dataset {table.name}: the lookup key must be the table's key {list(table.key)}")
    return Dataset(
        name=table.name,
        domain=table.domain,
        description=table.description,
        snapshot=table.snapshot,
        columns=tuple(_column(c) for c in table.columns if c.name not in omit),
        sort=tuple((name, direction) for name, direction in api.pop("sort", ())),
        filters=tuple(_filter(item, patterns) for item in api.pop("filters", ())),
        **api,
    )


def load(path: Path = declarations.DECLARATIONS) -> tuple[Dataset, ...]:
    """The datasets of the gold tables ``path`` (``tables.toml``) declares with an ``[gold.api]`` part, each checked.

    Raises:
        ValueError: an inconsistent declaration (``check``), or a filter of no known kind.
        TypeError: a declaration with a field ``Dataset`` or its filter does not have.
    """
    declared = DECLARED if path == declarations.DECLARATIONS else declarations.load(path)
    return tuple(api_dataset(table, declared.patterns) for table in declared.gold if table.api is not None)


REGISTRY: tuple[Dataset, ...] = load()

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
