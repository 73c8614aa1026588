"""Parameterised questions the API answers beyond the dataset routes, as MySQL/TiDB SQL with bound parameters only.

The weekly average in a bounding box (issue #6, shared with the Metabase question "Weekly average trips in a
bounding box", which is the same query in PostgreSQL/PostGIS): the trips whose PICKUP point lies in the box (edges
included) and whose pickup day lies in ``[from, to]``; one row per ISO week (Monday ``week_start``) overlapping
``[from, to]``, with ``days`` = the days of that week inside the range (fewer in a partial first or last week),
``trips``, and ``average_trips_per_day`` = ``trips / days`` rounded to 4 decimals. Every overlapping week is a row,
with 0 trips when none (the weeks come from a recursive CTE, not from the trips).

It reads the loader's view ``trips``, i.e. every served slice of the table (a trip is in one slice only: bronze
drops a trip already seen in an earlier slice). The TiDB loader indexes ``trips__rows`` on
``(pickup_date, pickup_longitude, pickup_latitude)`` and ``(pickup_longitude, pickup_latitude, pickup_date)`` for it
(``include.serving.table_specs``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# The range a request may span (``to - from``): about two years of weeks, ~105 rows.
MAX_RANGE_DAYS = 731
# Dates the query accepts: week arithmetic near year 1 or 9999 leaves the DATE range of MySQL and TiDB.
MIN_DATE, MAX_DATE = dt.date(1900, 1, 1), dt.date(2999, 12, 31)

WEEKLY_AVERAGE_SQL = """
WITH RECURSIVE weeks (week_start) AS (
    SELECT DATE_SUB(CAST(%(from)s AS DATE), INTERVAL WEEKDAY(CAST(%(from)s AS DATE)) DAY)
    UNION ALL
    SELECT DATE_ADD(week_start, INTERVAL 7 DAY) FROM weeks
    WHERE DATE_ADD(week_start, INTERVAL 7 DAY) <= CAST(%(to)s AS DATE)
),
trips_per_week AS (
    SELECT DATE_SUB(pickup_date, INTERVAL WEEKDAY(pickup_date) DAY) AS week_start, COUNT(*) AS trips
    FROM `trips`
    WHERE pickup_date BETWEEN CAST(%(from)s AS DATE) AND CAST(%(to)s AS DATE)
      AND pickup_longitude BETWEEN %(min_lon)s AND %(max_lon)s
      AND pickup_latitude BETWEEN %(min_lat)s AND %(max_lat)s
    GROUP BY DATE_SUB(pickup_date, INTERVAL WEEKDAY(pickup_date) DAY)
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


@dataclass(frozen=True)
class BoundingBox:
    """A WGS 84 box, edges included: longitudes ``min_lon..max_lon``, latitudes ``min_lat..max_lat``."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float


def weekly_average_query(box: BoundingBox, start: dt.date, end: dt.date) -> tuple[str, dict[str, object]]:
    """The weekly-average SQL and its bound parameters (PyMySQL ``%(name)s`` style).

    Args:
        box: the pickup points to count.
        start: the first pickup day, included.
        end: the last pickup day, included (at most ``MAX_RANGE_DAYS`` after ``start``).

    Returns:
        ``(sql, params)``; the rows are ``(week_start, days, trips, average_trips_per_day)`` by week.
    """
    params = {
        "from": start,
        "to": end,
        "min_lon": float(box.min_lon),
        "max_lon": float(box.max_lon),
        "min_lat": float(box.min_lat),
        "max_lat": float(box.max_lat),
    }
    return WEEKLY_AVERAGE_SQL, params
