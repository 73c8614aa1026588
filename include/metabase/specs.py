"""Load and validate the dashboard specs: one YAML file per dashboard, cards with native SQL, display and layout."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"

# Metabase's dashboard grid has been 24 columns wide since v0.46.
GRID_COLUMNS = 24
DISPLAYS = frozenset({"line", "bar", "pie", "table", "scalar", "row"})
# Charts whose axes Metabase reads from graph.dimensions / graph.metrics (pie uses pie.dimension / pie.metric).
AXIS_DISPLAYS = frozenset({"line", "bar", "row"})

DASHBOARD_KEYS = {"name", "description", "cards"}
CARD_KEYS = {"name", "description", "display", "sql", "layout"}
OPTIONAL_CARD_KEYS = {"visualization_settings"}
LAYOUT_KEYS = ("row", "col", "size_x", "size_y")

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
class CardSpec:
    """One question (a native SQL query and how to draw it) and its place on its dashboard."""

    name: str
    description: str
    display: str
    sql: str
    layout: Layout
    visualization_settings: dict[str, Any] = field(default_factory=dict)


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


def _visualization(where: str, display: str, sql: str, settings: Any) -> dict[str, Any]:
    if not isinstance(settings, dict):
        raise SpecError(f"{where}: visualization_settings must be a mapping")
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
