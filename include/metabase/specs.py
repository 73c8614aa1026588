"""Load and validate the dashboard specs: one YAML file per dashboard, cards with native SQL, display and layout."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"

# Metabase's dashboard grid has been 24 columns wide since v0.46.
GRID_COLUMNS = 24
DISPLAYS = frozenset({"line", "bar", "pie", "table", "scalar", "row", "map"})
# Charts whose axes Metabase reads from graph.dimensions / graph.metrics (pie uses pie.dimension / pie.metric).
AXIS_DISPLAYS = frozenset({"line", "bar", "row"})
# A pin map plots one marker per row at the row's latitude/longitude columns (region maps are not supported).
MAP_COLUMN_KEYS = ("map.latitude_column", "map.longitude_column")
MAP_KEYS = frozenset({"map.type", *MAP_COLUMN_KEYS, "map.pin_type", "map.zoom", "map.center_latitude",
                      "map.center_longitude"})  # fmt: skip
PIN_TYPES = frozenset({"markers", "tiles", "heat", "grid"})

DASHBOARD_KEYS = {"name", "description", "cards"}
CARD_KEYS = {"name", "description", "display", "sql", "layout"}
OPTIONAL_CARD_KEYS = {"visualization_settings", "parameters"}
LAYOUT_KEYS = ("row", "col", "size_x", "size_y")
PARAMETER_KEYS = {"name", "display_name", "type", "default"}
# Native-query variables (Metabase template tags) a card may declare: tag type -> Metabase parameter widget type.
PARAMETER_TYPES = {"number": "number/=", "date": "date/single", "text": "string/="}
_TAG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# A reference to a variable in the SQL, as Metabase parses it: {{name}}, spaces allowed inside the braces.
_TAG = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")

# Words that make a statement write, lock or run something, even inside a WITH (PostgreSQL allows data-modifying
# CTEs) or a SELECT (SELECT ... INTO creates a table, FOR UPDATE locks rows).
_FORBIDDEN_WORDS = (
    *("insert", "update", "delete", "merge", "upsert", "drop", "alter", "create", "truncate", "grant", "revoke"),
    *("copy", "call", "do", "execute", "vacuum", "analyze", "refresh", "lock", "into", "comment", "reindex"),
    *("cluster", "set", "reset", "listen", "notify", "prepare"),
)
_FORBIDDEN = re.compile(r"\b(" + "|".join(_FORBIDDEN_WORDS) + r")\b", re.IGNORECASE)
_LITERALS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


class SpecError(ValueError):
    """A dashboard spec is malformed; the message names the file and the card."""


@dataclass(frozen=True)
class Layout:
    """A card's place on the dashboard grid, in grid units."""

    row: int
    col: int
    size_x: int
    size_y: int

    def overlaps(self, other: Layout) -> bool:
        """Whether the two rectangles share at least one grid cell."""
        return (
            self.col < other.col + other.size_x
            and other.col < self.col + self.size_x
            and self.row < other.row + other.size_y
            and other.row < self.row + self.size_y
        )


@dataclass(frozen=True)
class Parameter:
    """A variable of a card's native query (a Metabase template tag), always given a default.

    Attributes:
        name: the tag's name, referenced as ``{{name}}`` in the SQL.
        display_name: the label of its input widget.
        type: ``number``, ``date`` or ``text``.
        default: the value the card runs with (also on its dashboard): a number, an ISO date, or text.
    """

    name: str
    display_name: str
    type: str
    default: int | float | str

    def literal(self, value: Any = None) -> str:
        """``value`` (default: the default) as the SQL literal Metabase substitutes for the tag in PostgreSQL."""
        value = self.default if value is None else value
        if self.type == "number":
            return repr(value)
        if self.type == "date":
            return f"DATE '{dt.date.fromisoformat(str(value)).isoformat()}'"
        return "'" + str(value).replace("'", "''") + "'"


@dataclass(frozen=True)
class CardSpec:
    """One question (a native SQL query and how to draw it) and its place on its dashboard."""

    name: str
    description: str
    display: str
    sql: str
    layout: Layout
    visualization_settings: dict[str, Any] = field(default_factory=dict)
    parameters: tuple[Parameter, ...] = ()

    def rendered_sql(self, values: Mapping[str, Any] | None = None) -> str:
        """The SQL with each ``{{tag}}`` replaced by ``values[tag]``, else its default, as Metabase would run it.

        Raises:
            KeyError: for a value of a tag the card does not have.
        """
        values = dict(values or {})
        by_name = {parameter.name: parameter for parameter in self.parameters}
        unknown = set(values) - set(by_name)
        if unknown:
            raise KeyError(f"card {self.name!r} has no parameter {', '.join(sorted(unknown))}")
        return _TAG.sub(lambda match: by_name[match.group(1)].literal(values.get(match.group(1))), self.sql)


@dataclass(frozen=True)
class DashboardSpec:
    """One dashboard file."""

    name: str
    description: str
    cards: tuple[CardSpec, ...]
    path: Path


def validate_sql(sql: str) -> None:
    """Accept one read-only statement (SELECT or WITH), raise ``ValueError`` otherwise.

    Args:
        sql: The query text; comments and a trailing semicolon are allowed.
    """
    # Literals go first so that a quote in a comment, or "--" in a string, cannot hide anything.
    code = _COMMENTS.sub(" ", _LITERALS.sub("''", sql)).strip().rstrip(";").strip()
    if not code:
        raise ValueError("SQL is empty")
    if ";" in code:
        raise ValueError("SQL must be a single statement")
    first = code.split(None, 1)[0].lower()
    if first not in ("select", "with"):
        raise ValueError(f"SQL must start with SELECT or WITH, not {first.upper()!r}")
    forbidden = _FORBIDDEN.search(code)
    if forbidden:
        raise ValueError(f"SQL must be read-only, found {forbidden.group(1).upper()!r}")


def _require(where: str, data: Any, required: set[str], optional: set[str] = frozenset()) -> None:
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a mapping, got {type(data).__name__}")
    missing = sorted(required - data.keys())
    if missing:
        raise SpecError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(data.keys() - required - optional)
    if unknown:
        raise SpecError(f"{where}: unknown keys {', '.join(unknown)}")


def _text(where: str, data: dict, key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"{where}: {key} must be a non-empty string")
    return value.strip()


def _layout(where: str, data: Any) -> Layout:
    _require(f"{where}: layout", data, set(LAYOUT_KEYS))
    # bool is an int subclass: `size_x: yes` must not pass for 1.
    if not all(type(data[key]) is int for key in LAYOUT_KEYS):
        raise SpecError(f"{where}: layout values must be integers")
    layout = Layout(**{key: data[key] for key in LAYOUT_KEYS})
    if layout.row < 0 or layout.col < 0 or layout.size_x < 1 or layout.size_y < 1:
        raise SpecError(f"{where}: layout needs row, col >= 0 and size_x, size_y >= 1")
    if layout.col + layout.size_x > GRID_COLUMNS:
        raise SpecError(f"{where}: col + size_x = {layout.col + layout.size_x} passes the {GRID_COLUMNS}-column grid")
    return layout


def _check_columns(where: str, sql: str, columns: Any, key: str) -> None:
    names = [columns] if isinstance(columns, str) else columns
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise SpecError(f"{where}: visualization_settings.{key} must be a column name or a non-empty list of them")
    for name in names:
        # A cheap guard against typos: the column must at least be named in the query.
        if not re.search(rf"\b{re.escape(name)}\b", sql, re.IGNORECASE):
            raise SpecError(f"{where}: visualization_settings.{key} names {name!r}, which the SQL never mentions")


def _map_settings(where: str, sql: str, settings: dict) -> None:
    unknown = sorted(key for key in settings if key.startswith("map.") and key not in MAP_KEYS)
    if unknown:
        raise SpecError(f"{where}: unknown map settings {', '.join(unknown)}")
    if settings.get("map.type") != "pin":
        raise SpecError(f"{where}: a map needs visualization_settings.map.type: pin (region maps are not supported)")
    for key in MAP_COLUMN_KEYS:
        if not isinstance(settings.get(key), str):
            raise SpecError(f"{where}: a pin map needs visualization_settings.{key} (a column name)")
        _check_columns(where, sql, settings[key], key)
    if settings.get("map.pin_type", "markers") not in PIN_TYPES:
        raise SpecError(f"{where}: map.pin_type must be one of {', '.join(sorted(PIN_TYPES))}")
    limits = {"map.zoom": (0, 22), "map.center_latitude": (-90, 90), "map.center_longitude": (-180, 180)}
    for key, (low, high) in limits.items():
        value = settings.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or
                                  not low <= value <= high):  # fmt: skip
            raise SpecError(f"{where}: {key} must be a number from {low} to {high}")


def _visualization(where: str, display: str, sql: str, settings: Any) -> dict[str, Any]:
    if not isinstance(settings, dict):
        raise SpecError(f"{where}: visualization_settings must be a mapping")
    if display == "map":
        _map_settings(where, sql, settings)
    elif any(key.startswith("map.") for key in settings):
        raise SpecError(f"{where}: map settings on a {display} card")
    if display in AXIS_DISPLAYS:
        for key in ("graph.dimensions", "graph.metrics"):
            if key not in settings:
                raise SpecError(f"{where}: a {display} chart needs visualization_settings.{key}")
            _check_columns(where, sql, settings[key], key)
    elif display == "pie":
        for key in ("pie.dimension", "pie.metric"):
            if key not in settings:
                raise SpecError(f"{where}: a pie chart needs visualization_settings.{key}")
            _check_columns(where, sql, settings[key], key)
    return settings


def _default(where: str, kind: str, value: Any) -> int | float | str:
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise SpecError(f"{where}: a number parameter needs a finite number as default, got {value!r}")
        return value
    if kind == "date":
        # YAML reads an unquoted 2026-01-05 as a date already.
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value.isoformat()
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            try:
                return dt.date.fromisoformat(value).isoformat()
            except ValueError:
                pass
        raise SpecError(f"{where}: a date parameter needs a YYYY-MM-DD default, got {value!r}")
    if not isinstance(value, str):
        raise SpecError(f"{where}: a text parameter needs a text default, got {value!r}")
    return value


def _parameter(where: str, data: Any) -> Parameter:
    _require(where, data, PARAMETER_KEYS)
    name = _text(where, data, "name")
    if not _TAG_NAME.match(name):
        raise SpecError(f"{where}: parameter name {name!r} must be letters, digits and _ (not first a digit)")
    where = f"{where} {name!r}"
    kind = data["type"]
    if kind not in PARAMETER_TYPES:
        raise SpecError(f"{where}: type must be one of {', '.join(PARAMETER_TYPES)}, not {kind!r}")
    return Parameter(name, _text(where, data, "display_name"), kind, _default(where, kind, data["default"]))


def _parameters(where: str, sql: str, data: Any) -> tuple[Parameter, ...]:
    """The card's parameters, which must be exactly the ``{{tags}}`` of its SQL."""
    if not isinstance(data, list):
        raise SpecError(f"{where}: parameters must be a list")
    parameters = tuple(_parameter(f"{where}: parameter", item) for item in data)
    names = [parameter.name for parameter in parameters]
    if len(set(names)) != len(names):
        raise SpecError(f"{where}: parameter names must be unique, got {names}")
    # Optional clauses would need the SQL rendered without them; every variable here is required, with a default.
    if "[[" in sql:
        raise SpecError(f"{where}: optional clauses ([[ ... ]]) are not supported; give the parameter a default")
    used = set(_TAG.findall(sql))
    if used - set(names):
        raise SpecError(
            f"{where}: the SQL uses {{{{tags}}}} without a parameter: {', '.join(sorted(used - set(names)))}"
        )
    if set(names) - used:
        raise SpecError(f"{where}: parameters the SQL never uses: {', '.join(sorted(set(names) - used))}")
    return parameters


def _card(source: str, data: Any, index: int) -> CardSpec:
    where = f"{source}: card #{index + 1}"
    if isinstance(data, dict) and isinstance(data.get("name"), str):
        where = f"{source}: card {data['name']!r}"
    _require(where, data, CARD_KEYS, OPTIONAL_CARD_KEYS)
    display = _text(where, data, "display")
    if display not in DISPLAYS:
        raise SpecError(f"{where}: unknown display {display!r}, expected one of {', '.join(sorted(DISPLAYS))}")
    sql = _text(where, data, "sql")
    try:
        validate_sql(sql)
    except ValueError as exc:
        raise SpecError(f"{where}: {exc}") from None
    return CardSpec(
        name=_text(where, data, "name"),
        description=_text(where, data, "description"),
        display=display,
        sql=sql,
        layout=_layout(where, data["layout"]),
        visualization_settings=_visualization(where, display, sql, data.get("visualization_settings", {})),
        parameters=_parameters(where, sql, data.get("parameters", [])),
    )


def parse_dashboard(data: Any, source: str = "<spec>", path: Path | None = None) -> DashboardSpec:
    """Validate one parsed dashboard document.

    Args:
        data: The YAML document (a mapping with ``name``, ``description`` and ``cards``).
        source: How errors name the document (the file name).
        path: The file the document came from, if any.

    Returns:
        The validated dashboard.

    Raises:
        SpecError: On the first problem found, naming ``source`` and the card.
    """
    _require(source, data, DASHBOARD_KEYS)
    name = _text(source, data, "name")
    if not isinstance(data["cards"], list) or not data["cards"]:
        raise SpecError(f"{source}: cards must be a non-empty list")
    cards = tuple(_card(source, card, i) for i, card in enumerate(data["cards"]))
    seen: dict[str, CardSpec] = {}
    for card in cards:
        if card.name in seen:
            raise SpecError(f"{source}: card {card.name!r} appears twice")
        for other in seen.values():
            if card.layout.overlaps(other.layout):
                raise SpecError(f"{source}: card {card.name!r} overlaps card {other.name!r} on the grid")
        seen[card.name] = card
    return DashboardSpec(name, _text(source, data, "description"), cards, path or Path(source))


def load_dashboard(path: Path | str) -> DashboardSpec:
    """Read and validate one dashboard file.

    Args:
        path: A ``.yml`` file.

    Returns:
        The validated dashboard.

    Raises:
        SpecError: If the file is not valid YAML or not a valid spec.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError(f"{path.name}: not valid YAML: {exc}") from None
    return parse_dashboard(data, path.name, path)


def load_dashboards(directory: Path | str = DASHBOARDS_DIR) -> list[DashboardSpec]:
    """Read and validate every ``*.yml`` / ``*.yaml`` file of a directory, sorted by file name.

    Questions are matched by name inside one collection, so card names must be unique across all the files,
    and so must dashboard names.

    Args:
        directory: The folder holding the dashboard files.

    Returns:
        The validated dashboards.

    Raises:
        SpecError: On the first invalid file, or on a name used twice.
    """
    directory = Path(directory)
    paths = sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])
    if not paths:
        raise SpecError(f"{directory}: no dashboard files (*.yml)")
    dashboards = [load_dashboard(path) for path in paths]
    dashboard_files: dict[str, str] = {}
    card_files: dict[str, str] = {}
    for dashboard in dashboards:
        source = dashboard.path.name
        if dashboard.name in dashboard_files:
            raise SpecError(
                f"{source}: dashboard {dashboard.name!r} is also defined in {dashboard_files[dashboard.name]}"
            )
        dashboard_files[dashboard.name] = source
        for card in dashboard.cards:
            if card.name in card_files:
                raise SpecError(f"{source}: card {card.name!r} is also defined in {card_files[card.name]}")
            card_files[card.name] = source
    return dashboards
