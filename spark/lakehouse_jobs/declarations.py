"""The lakehouse's tables, declared once in ``tables.toml`` next to this module, read with the standard library only.

The Spark image (this package) and the Airflow side (``include/tables.py`` puts ``spark/`` on the path) read the same
file: Assets and DAG outlets, the serve plan and both loaders, the REST API's routes, OpenAPI and catalogue, and the
generated dbt sources (``devtools/gen_dbt_sources.py``). Nothing here imports pyspark or Airflow. What is one
consumer's own (the API's filters, sort and lookup key) is kept as read, for that consumer to interpret and check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DECLARATIONS = Path(__file__).with_name("tables.toml")
WGS84 = 4326
LAYERS = ("raw", "bronze", "gold")


@dataclass(frozen=True)
class Column:
    """A column of a gold table.

    Attributes:
        name: the column name, the same in Iceberg, PostgreSQL and TiDB.
        type: date, datetime (naive UTC), int, float, str or bool.
        description: shown in the API's catalogue and OpenAPI schema and in the dbt docs.
        example: a value for the OpenAPI schema (None when not declared).
        nullable: whether the column may be null (declared as the type with a ``?``).
    """

    name: str
    type: str
    description: str
    example: Any = None
    nullable: bool = False


@dataclass(frozen=True)
class Point:
    """A PostGIS point the PostgreSQL loader generates from two columns of the table (see include/serving)."""

    name: str
    longitude: str
    latitude: str
    srid: int = WGS84


@dataclass(frozen=True)
class Index:
    """A secondary index of the table's TiDB rows table (see include/serving)."""

    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Freshness:
    """dbt source freshness: ``(count, period)`` pairs, period one of minute, hour, day."""

    warn_after: tuple[int, str]
    error_after: tuple[int, str]


@dataclass(frozen=True)
class Domain:
    """A source system and what its layer jobs write besides its gold tables.

    Attributes:
        name: the domain, as in ``<image> <domain> <layer>``.
        raw: the tables (``<namespace>.<table>``) its raw job writes.
        bronze: the tables its bronze job writes.
        gold_also: what its gold job writes besides the domain's gold tables (e.g. ``ops.slice_changes``).
        freshness: how stale its served gold may get, by its cadence.
    """

    name: str
    raw: tuple[str, ...]
    bronze: tuple[str, ...]
    gold_also: tuple[str, ...]
    freshness: Freshness


@dataclass(frozen=True)
class Table:
    """A gold table, the same name in Iceberg (``gold.<name>``), PostgreSQL (``gold.<name>``) and TiDB.

    Attributes:
        name: the table name without namespace.
        domain: the domain whose jobs write it.
        description: what a row is.
        key: the columns that, with ``ds``, identify a row within a slice.
        snapshot: True when each ``ds`` slice is complete in itself (a reader takes one slice); False when slices
            hold different rows (a reader reads across slices).
        columns: the Iceberg columns, ``ds`` first.
        points: the PostGIS points PostgreSQL adds.
        indexes: the B-tree indexes both serving databases add.
        api: the REST API's declaration of the table as read (path, summary, sort, key, key_pattern, filters,
            omit), None when the API does not serve it; include/api/datasets.py interprets and checks it.
    """

    name: str
    domain: str
    description: str
    key: tuple[str, ...]
    snapshot: bool
    columns: tuple[Column, ...]
    points: tuple[Point, ...] = ()
    indexes: tuple[Index, ...] = ()
    api: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def qualified(self) -> str:
        """``gold.<name>``, as Spark and the Assets name it."""
        return f"gold.{self.name}"


@dataclass(frozen=True)
class Declarations:
    """Everything ``tables.toml`` declares.

    Attributes:
        domains: by name, in declaration order.
        gold: the gold tables, in declaration order.
        shared: the columns every gold table has (``ds``) or gets when served (``_loaded_at``), by name.
        patterns: named regular expressions the API's text parameters must match.
    """

    domains: dict[str, Domain]
    gold: tuple[Table, ...]
    shared: dict[str, Column]
    patterns: dict[str, str]

    def table(self, name: str) -> Table | None:
        """The gold table ``name`` (without namespace), None when none is declared."""
        return next((table for table in self.gold if table.name == name), None)

    def gold_tables(self, domain: str) -> tuple[Table, ...]:
        """The gold tables of ``domain``, in declaration order."""
        return tuple(table for table in self.gold if table.domain == domain)


def column(entry: list[Any]) -> Column:
    """``[name, type, description]`` or ``[name, type, description, example]``; a ``?`` on the type: nullable."""
    name, type_, description, *example = entry
    return Column(name, type_.removesuffix("?"), description, *example, nullable=type_.endswith("?"))


def _freshness(entry: dict[str, Any]) -> Freshness:
    return Freshness(tuple(entry["warn_after"]), tuple(entry["error_after"]))


def _table(entry: dict[str, Any], ds: Column) -> Table:
    entry = dict(entry)
    serving = entry.pop("serving", {})
    return Table(
        columns=(ds, *(column(item) for item in entry.pop("columns"))),
        key=tuple(entry.pop("key")),
        points=tuple(Point(**item) for item in serving.pop("points", ())),
        indexes=tuple(Index(item["name"], tuple(item["columns"])) for item in serving.pop("indexes", ())),
        **entry,
    )


def _problems(table: Table, domains: dict[str, Domain]) -> list[str]:
    names = [c.name for c in table.columns]
    problems = [] if table.domain in domains else [f"domain {table.domain!r} is not declared"]
    if len(set(names)) != len(names):
        problems.append("column names repeat")
    problems += [f"key column {name!r} is not declared" for name in table.key if name not in names]
    for point in table.points:
        if point.name in names or {point.longitude, point.latitude} - set(names):
            problems.append(f"point {point.name!r} must be a new name over declared columns")
    for index in table.indexes:
        problems += [
            f"index {index.name!r}: column {name!r} is not declared" for name in index.columns if name not in names
        ]
    return problems


def parse(declared: dict[str, Any]) -> Declarations:
    """The declarations of a parsed ``tables.toml``, each gold table checked against its domain and columns.

    Raises:
        ValueError: naming the inconsistent tables and their problems.
        TypeError: an entry with a field its class does not have.
    """
    shared = {name: column([name, *entry]) for name, entry in declared["shared"].items()}
    domains = {
        name: Domain(
            name,
            raw=tuple(entry.get("raw", ())),
            bronze=tuple(entry.get("bronze", ())),
            gold_also=tuple(entry.get("gold_also", ())),
            freshness=_freshness(entry["freshness"]),
        )
        for name, entry in declared["domains"].items()
    }
    gold = tuple(_table(entry, shared["ds"]) for entry in declared["gold"])
    problems = [f"gold.{t.name}: {problem}" for t in gold for problem in _problems(t, domains)]
    if len({t.name for t in gold}) != len(gold):
        problems.append("gold table names repeat")
    if problems:
        raise ValueError("; ".join(problems))
    return Declarations(domains, gold, shared, dict(declared.get("patterns", {})))


def load(path: Path = DECLARATIONS) -> Declarations:
    """The declarations in ``path`` (``tables.toml``).

    Python 3.11's ``tomllib`` reads it; on 3.10 (the official Spark image's Ubuntu 22.04) ``tomli``, the package
    ``tomllib`` was made from, must be installed.

    Raises:
        ValueError: an inconsistent declaration (see ``parse``).
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    with path.open("rb") as file:
        return parse(tomllib.load(file))
