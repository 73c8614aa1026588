"""Parameterised questions the API answers beyond the dataset routes, as MySQL/TiDB SQL with bound parameters only.

The weekly average for an area (shared with the Metabase questions "Weekly average trips in a bounding box" and
"Weekly average trips in a region", the same query in PostgreSQL/PostGIS): the trips whose ORIGIN point lies in
the box (edges included), or whose region is the one asked for, and whose day (UTC: the feed's zone-less datetimes
are UTC) lies in ``[from, to]``; one row per ISO week (Monday ``week_start``) overlapping ``[from, to]``, with
``days`` = the days of that week inside the range (fewer in a partial first or last week), ``trips``, and
``average_trips_per_day`` = ``trips / days`` rounded to 4 decimals. Every overlapping week is a row, with 0 trips
when none (the weeks come from a recursive CTE, not from the trips).

It reads the loader's view ``trips``, i.e. every served slice of the table (a trip is in one slice only: bronze
drops a trip already seen, and a changed file's trips leave their older slice). The TiDB loader indexes
``trips__rows`` on ``(trip_date, origin_longitude, origin_latitude)`` and ``(origin_longitude, origin_latitude,
trip_date)`` for it (``include.serving.table_specs``); the region form reads the rows of the date range.

The brief's two questions, over the same view: from the two regions with the most trips, the datasource of each
one's latest trip (``TOP_REGIONS_LATEST_DATASOURCE_SQL``); and the regions a datasource appeared in
(``DATASOURCE_REGIONS_SQL``). The same queries for the PostgreSQL copy are in ``include/sql/trips_questions.sql``
and the dbt marts ``trips_top_regions_latest_datasource`` and ``trips_datasource_regions``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# The range a request may span (``to - from``): about two years of weeks, ~105 rows.
MAX_RANGE_DAYS = 731
# Dates the query accepts: week arithmetic near year 1 or 9999 leaves the DATE range of MySQL and TiDB.
MIN_DATE, MAX_DATE = dt.date(1900, 1, 1), dt.date(2999, 12, 31)

# `{area}` is one of AREA_FILTERS, chosen by the code (never from a request): the values are bound parameters.
WEEKLY_AVERAGE_SQL = """
WITH RECURSIVE weeks (week_start) AS (
    SELECT DATE_SUB(CAST(%(from)s AS DATE), INTERVAL WEEKDAY(CAST(%(from)s AS DATE)) DAY)
    UNION ALL
    SELECT DATE_ADD(week_start, INTERVAL 7 DAY) FROM weeks
    WHERE DATE_ADD(week_start, INTERVAL 7 DAY) <= CAST(%(to)s AS DATE)
),
trips_per_week AS (
    SELECT DATE_SUB(trip_date, INTERVAL WEEKDAY(trip_date) DAY) AS week_start, COUNT(*) AS trips
    FROM `trips`
    WHERE trip_date BETWEEN CAST(%(from)s AS DATE) AND CAST(%(to)s AS DATE)
      AND {area}
    GROUP BY DATE_SUB(trip_date, INTERVAL WEEKDAY(trip_date) DAY)
),
spans AS (
    SELECT
        week_start,
        DATEDIFF(
            LEAST(DATE_ADD(week_start, INTERVAL 6 DAY), CAST(%(to)s AS DATE)),
            GREATEST(week_start, CAST(%(from)s AS DATE))
        ) + 1 AS days
    FROM weeks
)
SELECT
    s.week_start,
    s.days,
    COALESCE(t.trips, 0) AS trips,
    ROUND(COALESCE(t.trips, 0) / s.days, 4) AS average_trips_per_day
FROM spans AS s
LEFT JOIN trips_per_week AS t ON t.week_start = s.week_start
ORDER BY s.week_start
"""
AREA_FILTERS = {
    "box": "origin_longitude BETWEEN %(min_lon)s AND %(max_lon)s"
    " AND origin_latitude BETWEEN %(min_lat)s AND %(max_lat)s",
    "region": "region = %(region)s",
}

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


def weekly_average_query(area: BoundingBox | Region, start: dt.date, end: dt.date) -> tuple[str, dict[str, object]]:
    """The weekly-average SQL and its bound parameters (PyMySQL ``%(name)s`` style).

    Args:
        area: the trips to count: those whose origin lies in a box, or those of a region.
        start: the first day, included.
        end: the last day, included (at most ``MAX_RANGE_DAYS`` after ``start``).

    Returns:
        ``(sql, params)``; the rows are ``(week_start, days, trips, average_trips_per_day)`` by week.
    """
    params: dict[str, object] = {"from": start, "to": end}
    if isinstance(area, Region):
        params["region"] = area.name
        return WEEKLY_AVERAGE_SQL.format(area=AREA_FILTERS["region"]), params
    params |= {
        "min_lon": float(area.min_lon),
        "max_lon": float(area.max_lon),
        "min_lat": float(area.min_lat),
        "max_lat": float(area.max_lat),
    }
    return WEEKLY_AVERAGE_SQL.format(area=AREA_FILTERS["box"]), params
