"""gold.trip_origin_cells worked out in plain Python from gold.trips rows, for the tests that serve trips."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

import pyarrow as pa

SCHEMA = pa.schema(
    [
        ("ds", pa.date32()),
        ("region", pa.string()),
        ("level", pa.int32()),
        ("cell_x", pa.int64()),
        ("cell_y", pa.int64()),
        ("trip_date", pa.date32()),
        ("trips", pa.int64()),
    ]
)


def fine_cell(lon: float, lat: float) -> tuple[int, int]:
    """The 0.001-degree cell of a point: floor(lon * 1000), floor(lat * 1000)."""
    return math.floor(lon * 1000), math.floor(lat * 1000)


def cell_rows(trips: Iterable[dict]) -> list[dict]:
    """The cell counts of ``trips`` (gold.trips rows as dicts; a trip without an origin has no cell), by slice."""
    counts: Counter = Counter()
    for trip in trips:
        lon, lat = trip["origin_longitude"], trip["origin_latitude"]
        if lon is None or lat is None:
            continue
        x, y = fine_cell(lon, lat)
        key = (trip["ds"], trip["region"], trip["trip_date"])
        counts[(*key, 3, x, y)] += 1
        counts[(*key, 2, x // 10, y // 10)] += 1
        counts[(*key, 0, 0, 0)] += 1
    names = ("ds", "region", "trip_date", "level", "cell_x", "cell_y")
    return [{**dict(zip(names, key, strict=True)), "trips": n} for key, n in sorted(counts.items())]
