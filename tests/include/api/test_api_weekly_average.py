"""GET /v1/trips/weekly-average against the trips loaded into MariaDB by the real TiDB loader, checked by Python."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import ROUND_HALF_UP, Decimal

import pytest
from api_data import API_KEY, EMPTY_WEEK, OTHER_GOLD, TRIP_BOX

pytestmark = pytest.mark.integration

PATH = "/v1/trips/weekly-average"
PROBLEM = "application/problem+json"
_, TRIP_SLICES = OTHER_GOLD["trips"]
# (pickup_date, pickup_longitude, pickup_latitude) of every trip of every slice.
PICKUPS = [(row[3], row[7], row[8]) for rows in TRIP_SLICES.values() for row in rows]


def expected_weeks(box: dict, start: dt.date, end: dt.date) -> list[dict]:
    """The weekly averages worked out day by day in plain Python."""
    weeks: dict[dt.date, dict] = {}
    day = start
    while day <= end:
        monday = day - dt.timedelta(days=day.weekday())
        week = weeks.setdefault(monday, {"week_start": monday.isoformat(), "days": 0, "trips": 0})
        week["days"] += 1
        week["trips"] += sum(
            1
            for pickup_date, lon, lat in PICKUPS
            if pickup_date == day
            and box["min_lon"] <= lon <= box["max_lon"]
            and box["min_lat"] <= lat <= box["max_lat"]
        )
        day += dt.timedelta(days=1)
    for week in weeks.values():
        average = (Decimal(week["trips"]) / week["days"]).quantize(Decimal("0.0001"), ROUND_HALF_UP)
        week["average_trips_per_day"] = float(average)
    return [weeks[monday] for monday in sorted(weeks)]


def params(box: dict = TRIP_BOX, start: str = "2025-12-24", end: str = "2026-02-10") -> dict:
    return {**box, "from": start, "to": end}


def test_weekly_average_over_partial_and_empty_weeks(client):
    # From a Wednesday to a Tuesday: partial first and last weeks; the week of EMPTY_WEEK has no pickup in the box.
    response = client.get(PATH, params=params())
    assert response.status_code == 200, response.text
    body = response.json()
    want = expected_weeks(TRIP_BOX, dt.date(2025, 12, 24), dt.date(2026, 2, 10))
    assert body == {**TRIP_BOX, "from": "2025-12-24", "to": "2026-02-10", "items": want}
    weeks = {row["week_start"]: row for row in body["items"]}
    assert [row["days"] for row in body["items"]] == [5, 7, 7, 7, 7, 7, 7, 2]
    assert weeks[EMPTY_WEEK.isoformat()]["trips"] == 0
    assert all(row["trips"] > 0 for row in body["items"] if row["week_start"] != EMPTY_WEEK.isoformat())
    # An average, not a count: the first week's trips spread over its 5 days.
    first = body["items"][0]
    assert first["average_trips_per_day"] == round(first["trips"] / 5, 4)


@pytest.mark.parametrize(
    ("box", "start", "end"),
    [
        (TRIP_BOX, "2026-01-07", "2026-01-07"),  # one day, with pickups exactly on the edges
        (TRIP_BOX, "2026-01-12", "2026-01-18"),  # the empty week alone
        ({**TRIP_BOX, "max_lon": -73.9499999, "min_lat": 40.7000001}, "2026-01-05", "2026-01-11"),  # edges left out
        ({"min_lon": -180, "min_lat": -90, "max_lon": 180, "max_lat": 90}, "2025-12-01", "2026-03-01"),  # everything
        ({"min_lon": 2.0, "min_lat": 48.0, "max_lon": 3.0, "max_lat": 49.0}, "2026-01-01", "2026-01-31"),  # Paris
        (TRIP_BOX, "2024-12-01", "2026-12-02"),  # exactly the longest range allowed: 731 days
    ],
)
def test_weekly_average_matches_python(client, box, start, end):
    response = client.get(PATH, params=params(box, start, end))
    assert response.status_code == 200, response.text
    assert response.json()["items"] == expected_weeks(box, dt.date.fromisoformat(start), dt.date.fromisoformat(end))


def test_everything_counts_every_trip_once(client):
    body = client.get(PATH, params=params({"min_lon": -180, "min_lat": -90, "max_lon": 180, "max_lat": 90},
                                          "2025-12-22", "2026-02-15")).json()  # fmt: skip
    assert sum(row["trips"] for row in body["items"]) == len(PICKUPS)
    assert len(body["items"]) == 8 and {row["days"] for row in body["items"]} == {7}


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"min_lon": -73.9, "max_lon": -74.0}, "`min_lon` must be less than `max_lon`"),
        ({"min_lat": 40.75, "max_lat": 40.75}, "`min_lat` must be less than `max_lat`"),
        ({"min_lat": -90.5}, "min_lat"),
        ({"max_lat": 91}, "max_lat"),
        ({"min_lon": -181}, "min_lon"),
        ({"max_lon": 180.01}, "max_lon"),
        ({"max_lon": "nan"}, "max_lon"),
        ({"min_lon": "west"}, "min_lon"),
        ({"from": "2026-02-01", "to": "2026-01-31"}, "`from` must be at or before `to`"),
        ({"from": "2024-12-01", "to": "2026-12-03"}, "at most 731 days after `from`"),
        ({"from": "0001-01-01", "to": "0001-01-07"}, "between 1900-01-01 and 2999-12-31"),
        ({"from": "2026-02-30"}, "from"),
        ({"to": "20260210"}, "to"),
        ({"ds": "2026-11-20"}, "'ds': Extra inputs are not permitted"),
        ({"from": None}, "from"),
    ],
)
def test_invalid_parameters_are_a_422_problem(client, change, fragment):
    query = {key: value for key, value in {**params(), **change}.items() if value is not None}
    response = client.get(PATH, params=query)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 422 and body["instance"] == PATH and body["type"] == "urn:lakehouse:problem:validation"
    assert fragment in body["detail"], body["detail"]


def test_same_auth_and_access_log_as_the_other_routes(anonymous, client):
    assert anonymous.get(PATH, params=params()).status_code == 401
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("lakehouse.api.access")
    logger.addHandler(handler)
    try:
        response = client.get(PATH, params=params(), headers={"X-Request-ID": "weekly-1"})
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 200 and response.headers["x-request-id"] == "weekly-1"
    fields = records[-1].fields
    assert fields["path"] == PATH and fields["status"] == 200 and fields["api_key_id"]
    assert API_KEY not in str(fields)


def test_the_route_wins_over_the_trip_lookup_and_is_documented(client):
    spec = client.get("/openapi.json").json()
    operation = spec["paths"][PATH]["get"]
    assert operation["tags"] == ["trips"] and operation["operationId"] == "trips_weekly_average"
    assert {p["name"] for p in operation["parameters"]} == {"min_lon", "min_lat", "max_lon", "max_lat", "from", "to"}
    assert all(p["required"] for p in operation["parameters"])
    # Without parameters it is this route's 422, not a trip lookup's 404 or pattern error.
    response = client.get(PATH)
    assert response.status_code == 422 and "min_lon" in response.json()["detail"]


def test_before_the_first_trips_load_it_is_a_404(settings, served):
    """A database without the trips table answers 404 not-loaded, like the dataset routes."""
    import dataclasses

    from api_data import admin
    from fastapi.testclient import TestClient

    from include.api.app import create_app

    empty = f"{served.database}_empty"
    conn = admin()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{empty}`")
        cur.execute(f"GRANT SELECT ON `{empty}`.* TO '{served.user}'@'%'")
    try:
        with TestClient(create_app(dataclasses.replace(settings, db_name=empty))) as fresh:
            response = fresh.get(PATH, params=params(), headers={"X-API-Key": API_KEY})
        assert response.status_code == 404 and response.json()["type"] == "urn:lakehouse:problem:not-loaded"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{empty}`")
        conn.close()
