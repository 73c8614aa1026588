"""The weekly average's split of a box into summed cells and trips counted one by one, checked point by point."""

from __future__ import annotations

import datetime as dt
import math
import random
from decimal import ROUND_HALF_UP, Decimal

import pytest

from include.api.queries import (
    COARSE_LEVEL,
    FINE_LEVEL,
    BoundingBox,
    CellRect,
    box_cells,
    weekly_rows,
)


def cells_of(lon: float, lat: float) -> dict[int, tuple[int, int]]:
    """A point's cell at each level, computed as the gold job does: floor(v * 1000), and that floor-divided by 10."""
    fine = (math.floor(lon * 1000), math.floor(lat * 1000))
    return {FINE_LEVEL: fine, COARSE_LEVEL: (fine[0] // 10, fine[1] // 10)}


def holds(rect: CellRect, cell: tuple[int, int]) -> bool:
    return rect.x_first <= cell[0] <= rect.x_last and rect.y_first <= cell[1] <= rect.y_last


def times_counted(box: BoundingBox, lon: float, lat: float) -> int:
    summed, counted = box_cells(box)
    cells = cells_of(lon, lat)
    in_box = box.min_lon <= lon <= box.max_lon and box.min_lat <= lat <= box.max_lat
    return sum(holds(r, cells[r.level]) for r in summed) + sum(holds(r, cells[FINE_LEVEL]) and in_box for r in counted)


def points_near(box: BoundingBox, rng: random.Random, count: int) -> list[tuple[float, float]]:
    """Points in and around the box: uniform, on its edges and corners, and on cell edges of both grids."""
    width, height = box.max_lon - box.min_lon, box.max_lat - box.min_lat
    points = [
        (rng.uniform(box.min_lon - width, box.max_lon + width), rng.uniform(box.min_lat - height, box.max_lat + height))
        for _ in range(count)
    ]
    points += [(lon, lat) for lon in (box.min_lon, box.max_lon) for lat in (box.min_lat, box.max_lat)]
    points += [(box.min_lon, rng.uniform(box.min_lat, box.max_lat)) for _ in range(20)]
    points += [(rng.uniform(box.min_lon, box.max_lon), box.max_lat) for _ in range(20)]
    for per in (100, 1000):
        for _ in range(40):
            lon = math.floor(rng.uniform(box.min_lon, box.max_lon) * per) / per
            lat = math.floor(rng.uniform(box.min_lat, box.max_lat) * per) / per
            points += [(lon, lat), (math.nextafter(lon, -math.inf), lat), (lon, math.nextafter(lat, math.inf))]
    return points


BOXES = {
    "central Prague": BoundingBox(14.40, 50.05, 14.46, 50.10),
    "a city block": BoundingBox(14.42137, 50.08701, 14.42291, 50.08795),
    "inside one fine cell": BoundingBox(14.4001, 50.0501, 14.4009, 50.0509),
    "on fine cell edges": BoundingBox(14.401, 50.051, 14.419, 50.069),
    "on coarse cell edges": BoundingBox(14.30, 50.00, 14.60, 50.20),
    "Lisbon, west of Greenwich": BoundingBox(-9.2347, 38.6912, -9.0871, 38.7944),
    "across the meridian and the equator": BoundingBox(-0.0153, -0.0121, 0.0277, 0.0083),
    "a whole region": BoundingBox(14.2, 49.9, 14.7, 50.25),
    "a line": BoundingBox(14.43, 50.07, 14.43, 50.09),
}


@pytest.mark.parametrize("name", list(BOXES))
def test_every_point_in_the_box_is_counted_once_and_no_other(name):
    box = BOXES[name]
    rng = random.Random(name)
    for lon, lat in points_near(box, rng, 3_000):
        inside = box.min_lon <= lon <= box.max_lon and box.min_lat <= lat <= box.max_lat
        assert times_counted(box, lon, lat) == int(inside), (lon, lat)


def test_random_boxes_from_a_block_to_a_region():
    rng = random.Random(20261201)
    for _ in range(150):
        half = 10 ** rng.uniform(-3.5, -0.5)
        lon, lat = rng.uniform(-179, 179), rng.uniform(-85, 85)
        box = BoundingBox(lon - half, lat - half / 2, lon + half * rng.uniform(0.3, 2), lat + half)
        for p_lon, p_lat in points_near(box, rng, 200):
            inside = box.min_lon <= p_lon <= box.max_lon and box.min_lat <= p_lat <= box.max_lat
            assert times_counted(box, p_lon, p_lat) == int(inside), (box, p_lon, p_lat)


def test_a_large_box_is_summed_from_coarse_cells_and_counts_only_its_edge_cells():
    box = BOXES["a whole region"]
    summed, counted = box_cells(box)
    coarse = [r for r in summed if r.level == COARSE_LEVEL]
    assert len(coarse) == 1
    coarse_cells = (coarse[0].x_last - coarse[0].x_first + 1) * (coarse[0].y_last - coarse[0].y_first + 1)
    # 14.21..14.68 by 49.91..50.23: the cells at 14.20, 14.69, 49.90 and 50.24 reach the box's edges, which a
    # summed cell must stay inside of by the margin, so their trips are summed from fine cells or counted one by one.
    assert coarse_cells == 48 * 33
    edge_cells = sum((r.x_last - r.x_first + 1) * (r.y_last - r.y_first + 1) for r in counted)
    # The edge cells are a ring one or two fine cells wide around the box: 501 x 351 fine cells in all.
    assert edge_cells < 4 * 2 * 501


def test_weekly_rows_fold_days_into_every_overlapping_week():
    start, end = dt.date(2026, 11, 4), dt.date(2026, 11, 24)  # a Wednesday to a Tuesday
    days = {dt.date(2026, 11, 4): 3, dt.date(2026, 11, 8): 4, dt.date(2026, 11, 23): 1}
    want = [
        (dt.date(2026, 11, 2), 5, 7, Decimal("1.4000")),  # Wednesday to Sunday
        (dt.date(2026, 11, 9), 7, 0, Decimal("0.0000")),  # a week without trips is a row
        (dt.date(2026, 11, 16), 7, 0, Decimal("0.0000")),
        (dt.date(2026, 11, 23), 2, 1, Decimal("0.5000")),  # Monday and Tuesday
    ]
    assert weekly_rows(days, start, end) == want
    assert weekly_rows(list(days.items()), start, end) == want


def test_weekly_rows_round_half_up():
    day = dt.date(2026, 11, 2)
    (row,) = weekly_rows({day: 1}, day, day + dt.timedelta(days=5))  # 1 / 6 = 0.16666...
    assert row[3] == (Decimal(1) / 6).quantize(Decimal("0.0001"), ROUND_HALF_UP) == Decimal("0.1667")
