"""What the trips pipeline's gold must hold, computed with plain Python from the generated files (their labels).

Shared by the trips DAG test and the backfill test; the rules are the issue's, written independently of the jobs.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter, defaultdict

POINT = re.compile(r"POINT ?\((\S+) (\S+)\)")


def trips_of(files) -> list[dict]:
    """The valid trips of the files (the generator labels each line), parsed with re and datetime."""
    trips = []
    for trip_file in files:
        for line in trip_file.lines:
            if line.kind != "trip":
                continue
            region, origin, destination, when, source = line.text.split(",")
            (olon, olat), (dlon, dlat) = (tuple(map(float, POINT.fullmatch(p).groups())) for p in (origin, destination))
            moment = dt.datetime.strptime(when, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)  # zone-less = UTC
            trips.append(
                {"region": region, "origin": (olon, olat), "destination": (dlon, dlat), "at": moment, "source": source}
            )
    return trips


def cell(lon: float, lat: float) -> str:
    return f"{math.floor(lon * 100)}:{math.floor(lat * 100)}"


def expected_groups(trips: list[dict]) -> dict[tuple, tuple]:
    """(region, origin cell, destination cell, 3-hour bucket) -> (trips, datasources, first seen, last seen)."""
    groups = defaultdict(list)
    for t in trips:
        bucket = t["at"].hour // 3 * 3
        groups[t["region"], cell(*t["origin"]), cell(*t["destination"]), f"{bucket:02d}-{bucket + 3:02d}"].append(t)
    return {
        key: (len(ts), ",".join(sorted({t["source"] for t in ts})), min(t["at"] for t in ts), max(t["at"] for t in ts))
        for key, ts in groups.items()
    }


def expected_weekly(trips: list[dict]) -> dict[tuple, tuple]:
    """(region, Monday) -> (days of the week in the covered range, trips, days with trips, average per day)."""
    days = [t["at"].date() for t in trips]
    first, last = min(days), max(days)
    monday = first - dt.timedelta(days=first.weekday())
    weeks = []
    while monday <= last:
        weeks.append(monday)
        monday += dt.timedelta(days=7)
    figures = {}
    for region in {t["region"] for t in trips}:
        for week in weeks:
            inside = [t["at"].date() for t in trips if t["region"] == region and 0 <= (t["at"].date() - week).days < 7]
            span = (min(week + dt.timedelta(days=6), last) - max(week, first)).days + 1
            figures[region, week] = (span, len(inside), len(set(inside)), round(len(inside) / span, 4))
    return figures


def expected_cells(trips: list[dict]) -> Counter:
    """(region, level, cell x, cell y, day) -> trips: 0.001-degree cells, 0.01-degree cells, and the whole region."""
    cells = Counter()
    for t in trips:
        x, y = (math.floor(v * 1000) for v in t["origin"])
        for level, cell_x, cell_y in ((3, x, y), (2, x // 10, y // 10), (0, 0, 0)):
            cells[t["region"], level, cell_x, cell_y, t["at"].date()] += 1
    return cells


def made_by(trips: list[dict], ds: str) -> list[dict]:
    """The trips made by the end of day ``ds`` (UTC)."""
    return [t for t in trips if t["at"].date() <= dt.date.fromisoformat(ds)]
