"""Parameterised questions the API answers beyond the dataset routes, as MySQL/TiDB SQL with bound parameters only.

The weekly average for an area (shared with the Metabase questions "Weekly average trips in a bounding box" and
"Weekly average trips in a region"): the trips whose ORIGIN point lies in the box (edges included), or whose region
is the one asked for, and whose day (UTC: the feed's zone-less datetimes are UTC) lies in ``[from, to]``; one row per
ISO week (Monday ``week_start``) overlapping ``[from, to]``, with ``days`` = the days of that week inside the range
(fewer in a partial first or last week), ``trips``, and ``average_trips_per_day`` = ``trips / days`` rounded half up
to 4 decimals. Every overlapping week is a row, with 0 trips when none.

How it stays fast and exact at 100 million trips. The SQL counts trips per day; ``weekly_rows`` folds the days into
weeks. Counting every trip of a large box row by row costs seconds, so it reads ``gold.trip_origin_cells``, the
trips per origin cell and day that the gold job writes beside ``gold.trips`` (level 0: a whole region; level 2:
cells of 0.01 degree, ``floor(lon * 100)``; level 3: cells of 0.001 degree, ``floor(lon * 1000)``, ``gold.trips``'
``origin_fine_x``/``origin_fine_y``). ``box_cells`` splits the box into

1. the level-2 cells wholly inside it (summed from the aggregate),
2. the level-3 cells wholly inside it but outside those (summed from the aggregate, at most four strips),
3. the level-3 cells the box edges cut through, whose trips are counted one by one with the exact box test.

A cell counts as wholly inside only with a margin of ``MARGIN_DEG`` (so a float rounding of a point near a cell edge
cannot put a point outside the box into a counted cell); the cells it leaves out are counted trip by trip, so the
answer is exact whatever the box. Each part names its cells as ``IN`` lists with the day range after them, which a
B-tree on ``(level, cell_x, cell_y, trip_date)`` (or ``(origin_fine_x, origin_fine_y, trip_date, ...)``) reads as a
set of short ranges; a part with more cells than ``MAX_CELL_LIST``/``MAX_CELL_PAIRS`` allow names its longer axis
as a ``BETWEEN`` instead (a box far larger than a region: it reads more, still exactly). A region is level 0: at
most one row per day.

It reads the loader's views ``trips`` and ``trip_origin_cells``, i.e. every served slice of both (a trip is in one
slice only: bronze drops a trip already seen, and a changed file's trips leave their older slice, whose cells the
gold job rewrites).

The brief's two questions, over the ``trips`` view: from the two regions with the most trips, the datasource of
each one's latest trip (``TOP_REGIONS_LATEST_DATASOURCE_SQL``); and the regions a datasource appeared in
(``DATASOURCE_REGIONS_SQL``). The same queries for the PostgreSQL copy are in ``include/sql/trips_questions.sql``
and the dbt marts ``trips_top_regions_latest_datasource`` and ``trips_datasource_regions``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

# The range a request may span (``to - from``): about two years of weeks, ~105 rows.
MAX_RANGE_DAYS = 731
# Dates the query accepts: week arithmetic near year 1 or 9999 leaves the DATE range of MySQL and TiDB.
MIN_DATE, MAX_DATE = dt.date(1900, 1, 1), dt.date(2999, 12, 31)

# The levels of gold.trip_origin_cells (spark/lakehouse_jobs/trips.py writes them): cells per degree of each grid.
REGION_LEVEL = 0
COARSE_LEVEL, FINE_LEVEL = 2, 3
CELLS_PER_DEGREE = {COARSE_LEVEL: 100, FINE_LEVEL: 1000}
# A coarse cell holds 10 x 10 fine cells.
FINE_PER_COARSE = CELLS_PER_DEGREE[FINE_LEVEL] // CELLS_PER_DEGREE[COARSE_LEVEL]
# How far inside the box a cell's edges must be to count it whole: far above a double's rounding of a coordinate
# times 1000 (about 1e-13 degree), far below the feed's precision that matters (1e-9 degree is 0.1 mm).
MARGIN_DEG = 1e-9
# A part names at most this many cells of an axis as a list, and this many (x, y) pairs; beyond, the longer axis is
# a BETWEEN (a box far larger than a region: it reads more index entries, still exactly).
MAX_CELL_LIST = 2048
MAX_CELL_PAIRS = 4096

# Ties: the region first by name, the latest trip's datasource first by name.
TOP_REGIONS_LATEST_DATASOURCE_SQL = """
WITH region_trips AS (
    SELECT region, COUNT(*) AS trips FROM `trips` GROUP BY region
),
top_regions AS (
    SELECT region, trips FROM region_trips ORDER BY trips DESC, region LIMIT 2
),
latest AS (
    SELECT
        t.region,
        t.datasource,
        t.`datetime`,
        ROW_NUMBER() OVER (PARTITION BY t.region ORDER BY t.`datetime` DESC, t.datasource) AS position
    FROM `trips` AS t
    JOIN top_regions AS r ON r.region = t.region
)
SELECT r.region, r.trips, l.datasource, l.`datetime`
FROM top_regions AS r
JOIN latest AS l ON l.region = r.region AND l.position = 1
ORDER BY r.trips DESC, r.region
"""

DATASOURCE_REGIONS_SQL = """
SELECT region, COUNT(*) AS trips, MIN(`datetime`) AS first_seen, MAX(`datetime`) AS last_seen
FROM `trips`
WHERE datasource = %(datasource)s
GROUP BY region
ORDER BY region
"""


@dataclass(frozen=True)
class BoundingBox:
    """A WGS 84 box, edges included: longitudes ``min_lon..max_lon``, latitudes ``min_lat..max_lat``."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float


@dataclass(frozen=True)
class Region:
    """A region by its name, as the feed spells it (compared exactly)."""

    name: str


@dataclass(frozen=True)
class CellRect:
    """The cells ``x_first..x_last`` by ``y_first..y_last`` (both included) of one grid level."""

    level: int
    x_first: int
    x_last: int
    y_first: int
    y_last: int

    @property
    def empty(self) -> bool:
        return self.x_first > self.x_last or self.y_first > self.y_last

    def minus(self, inner: CellRect) -> list[CellRect]:
        """This rectangle without ``inner`` (a rectangle inside it, or empty), as at most four disjoint strips."""
        if inner.empty:
            return [] if self.empty else [self]
        strips = [
            CellRect(self.level, self.x_first, inner.x_first - 1, self.y_first, self.y_last),  # left, full height
            CellRect(self.level, inner.x_last + 1, self.x_last, self.y_first, self.y_last),  # right, full height
            CellRect(self.level, inner.x_first, inner.x_last, self.y_first, inner.y_first - 1),  # below
            CellRect(self.level, inner.x_first, inner.x_last, inner.y_last + 1, self.y_last),  # above
        ]
        return [strip for strip in strips if not strip.empty]


def _inside(low: float, high: float, per_degree: int) -> tuple[int, int]:
    """The cells ``c`` of a grid whose every point (``floor(v * per_degree) == c``) lies in ``[low, high]``."""
    return math.ceil((low + MARGIN_DEG) * per_degree), math.floor((high - MARGIN_DEG) * per_degree) - 1


def _touched(low: float, high: float, per_degree: int) -> tuple[int, int]:
    """The cells that can hold a point of ``[low, high]``: a double product is monotonic, so are their cells."""
    return math.floor(low * per_degree), math.floor(high * per_degree)


def box_cells(box: BoundingBox) -> tuple[list[CellRect], list[CellRect]]:
    """How the weekly average counts a box: ``(summed, counted)``, disjoint, covering every trip in the box.

    ``summed`` are cells wholly inside the box, read from the cell aggregate (coarse cells first, then the fine
    cells around them); ``counted`` are the fine cells the box's edges cut, whose trips are tested one by one.
    """
    per = CELLS_PER_DEGREE[FINE_LEVEL]
    fine = CellRect(FINE_LEVEL, *_inside(box.min_lon, box.max_lon, per), *_inside(box.min_lat, box.max_lat, per))
    edges = CellRect(FINE_LEVEL, *_touched(box.min_lon, box.max_lon, per), *_touched(box.min_lat, box.max_lat, per))
    if fine.empty:
        return [], [edges]
    k = FINE_PER_COARSE
    coarse = CellRect(
        COARSE_LEVEL,
        -(-fine.x_first // k),
        (fine.x_last + 1) // k - 1,
        -(-fine.y_first // k),
        (fine.y_last + 1) // k - 1,
    )
    coarse_in_fine = CellRect(  # the coarse cells' own fine cells
        FINE_LEVEL, coarse.x_first * k, coarse.x_last * k + k - 1, coarse.y_first * k, coarse.y_last * k + k - 1
    )
    if coarse.empty:
        return [fine], edges.minus(fine)
    return [coarse, *fine.minus(coarse_in_fine)], edges.minus(fine)


def _cells_filter(rect: CellRect, x: str, y: str) -> str:
    """SQL naming ``rect``'s cells: each axis as a list (short index ranges), or as a range where that is too many."""

    def axis(column: str, first: int, last: int, as_list: bool) -> str:
        if as_list:
            return f"{column} IN ({', '.join(str(v) for v in range(int(first), int(last) + 1))})"
        return f"{column} BETWEEN {int(first)} AND {int(last)}"

    width, height = rect.x_last - rect.x_first + 1, rect.y_last - rect.y_first + 1
    x_list, y_list = width <= MAX_CELL_LIST, height <= MAX_CELL_LIST
    if x_list and y_list and width * height > MAX_CELL_PAIRS:
        x_list, y_list = width < height, height <= width
    return f"{axis(x, rect.x_first, rect.x_last, x_list)} AND {axis(y, rect.y_first, rect.y_last, y_list)}"


_DAYS = "trip_date BETWEEN CAST(%(from)s AS DATE) AND CAST(%(to)s AS DATE)"
_IN_BOX = "origin_longitude BETWEEN %(min_lon)s AND %(max_lon)s AND origin_latitude BETWEEN %(min_lat)s AND %(max_lat)s"


def weekly_average_query(
    area: BoundingBox | Region,
    start: dt.date,
    end: dt.date,
    *,
    trips: str = "`trips`",
    cells: str = "`trip_origin_cells`",
) -> tuple[str, dict[str, object]]:
    """The SQL of the trips per day in ``area`` from ``start`` to ``end``, and its bound parameters.

    The SQL is plain enough for TiDB, MySQL and PostgreSQL alike (``%(name)s`` parameters, as PyMySQL and psycopg2
    bind them); ``weekly_rows`` turns its rows into the weekly averages.

    Args:
        area: the trips to count: those whose origin lies in a box, or those of a region.
        start: the first day, included.
        end: the last day, included (at most ``MAX_RANGE_DAYS`` after ``start``).
        trips: the trips relation, quoted for the database (the TiDB view by default).
        cells: the origin-cell aggregate, quoted likewise.

    Returns:
        ``(sql, params)``; the rows are ``(trip_date, trips)`` for the days with trips.
    """
    params: dict[str, object] = {"from": start, "to": end}
    if isinstance(area, Region):
        params["region"] = area.name
        parts = [
            f"SELECT trip_date, SUM(trips) AS trips FROM {cells} WHERE level = {REGION_LEVEL} AND region = %(region)s"
            f" AND {_DAYS} GROUP BY trip_date"
        ]
    else:
        params |= {k: float(getattr(area, k)) for k in ("min_lon", "max_lon", "min_lat", "max_lat")}
        summed, counted = box_cells(area)
        parts = [
            f"SELECT trip_date, SUM(trips) AS trips FROM {cells} WHERE level = {int(rect.level)}"
            f" AND {_cells_filter(rect, 'cell_x', 'cell_y')} AND {_DAYS} GROUP BY trip_date"
            for rect in summed
        ] + [
            f"SELECT trip_date, COUNT(*) AS trips FROM {trips}"
            f" WHERE {_cells_filter(rect, 'origin_fine_x', 'origin_fine_y')} AND {_DAYS} AND {_IN_BOX}"
            " GROUP BY trip_date"
            for rect in counted
        ]
    union = "\n    UNION ALL\n    ".join(parts)
    return f"SELECT trip_date, SUM(trips) AS trips FROM (\n    {union}\n) AS parts GROUP BY trip_date", params


def weekly_rows(
    day_trips: Iterable[tuple[dt.date, int]] | Mapping[dt.date, int], start: dt.date, end: dt.date
) -> list[tuple[dt.date, int, int, Decimal]]:
    """``(week_start, days, trips, average_trips_per_day)`` for every ISO week overlapping ``[start, end]``.

    ``day_trips`` are the query's rows (days as dates or ISO text, as the driver returns them); ``days`` are the
    week's days inside the range; the average is ``trips / days`` rounded half up to 4 decimals.
    """
    pairs = day_trips.items() if isinstance(day_trips, Mapping) else day_trips
    per_week: dict[dt.date, int] = {}
    for value, count in pairs:
        day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))  # drivers may give text
        monday = day - dt.timedelta(days=day.weekday())
        per_week[monday] = per_week.get(monday, 0) + int(count)
    rows = []
    monday = start - dt.timedelta(days=start.weekday())
    while monday <= end:
        days = (min(monday + dt.timedelta(days=6), end) - max(monday, start)).days + 1
        count = per_week.get(monday, 0)
        rows.append((monday, days, count, (Decimal(count) / days).quantize(Decimal("0.0001"), ROUND_HALF_UP)))
        monday += dt.timedelta(days=7)
    return rows
