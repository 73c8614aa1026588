"""The trips questions (weekly average for a box or a region; the brief's two SQL questions) against the trips
loaded into MariaDB by the real TiDB loader, checked by plain Python."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal

import pytest
from api_data import API_KEY, EMPTY_WEEK, OTHER_GOLD, TRIP_BOX, access_log

pytestmark = pytest.mark.integration

PATH = "/v1/trips/weekly-average"
PROBLEM = "application/problem+json"
_, TRIP_SLICES = OTHER_GOLD["trips"]
# Every trip of every slice: (region, origin lon, origin lat, datetime, datasource, trip_date).
TRIPS = [(r[1], r[2], r[3], r[6], r[7], r[8]) for rows in TRIP_SLICES.values() for r in rows]
BOX = ",".join(str(TRIP_BOX[k]) for k in ("min_lon", "min_lat", "max_lon", "max_lat"))


def in_area(trip: tuple, box: dict | None, region: str | None) -> bool:
    if region is not None:
        return trip[0] == region
    return box["min_lon"] <= trip[1] <= box["max_lon"] and box["min_lat"] <= trip[2] <= box["max_lat"]


def expected_weeks(start: dt.date, end: dt.date, box: dict | None = None, region: str | None = None) -> list[dict]:
    """The weekly averages worked out day by day in plain Python."""
    weeks: dict[dt.date, dict] = {}
    day = start
    while day <= end:
        monday = day - dt.timedelta(days=day.weekday())
        week = weeks.setdefault(monday, {"week_start": monday.isoformat(), "days": 0, "trips": 0})
        week["days"] += 1
        week["trips"] += sum(1 for trip in TRIPS if trip[5] == day and in_area(trip, box, region))
        day += dt.timedelta(days=1)
    for week in weeks.values():
        average = (Decimal(week["trips"]) / week["days"]).quantize(Decimal("0.0001"), ROUND_HALF_UP)
        week["average_trips_per_day"] = float(average)
    return [weeks[monday] for monday in sorted(weeks)]


def box_text(box: dict) -> str:
    return ",".join(str(box[k]) for k in ("min_lon", "min_lat", "max_lon", "max_lat"))


def params(box: dict | None = TRIP_BOX, start: str = "2025-12-24", end: str = "2026-02-10", **extra) -> dict:
    area = {"bbox": box_text(box)} if box is not None else {}
    return {**area, "from": start, "to": end, **extra}


def test_weekly_average_over_partial_and_empty_weeks(client):
    # From a Wednesday to a Tuesday: partial first and last weeks; the week of EMPTY_WEEK has no origin in the box.
    response = client.get(PATH, params=params())
    assert response.status_code == 200, response.text
    body = response.json()
    want = expected_weeks(dt.date(2025, 12, 24), dt.date(2026, 2, 10), box=TRIP_BOX)
    assert body == {"bbox": [14.40, 50.05, 14.46, 50.10], "region": None, "from": "2025-12-24", "to": "2026-02-10",
                    "items": want}  # fmt: skip
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
        (TRIP_BOX, "2026-01-07", "2026-01-07"),  # one day, with origins exactly on the edges
        (TRIP_BOX, "2026-01-12", "2026-01-18"),  # the empty week alone
        ({**TRIP_BOX, "max_lon": 14.4599999, "min_lat": 50.0500001}, "2026-01-05", "2026-01-11"),  # edges left out
        ({"min_lon": -180, "min_lat": -90, "max_lon": 180, "max_lat": 90}, "2025-12-01", "2026-03-01"),  # everything
        ({"min_lon": 2.0, "min_lat": 48.0, "max_lon": 3.0, "max_lat": 49.0}, "2026-01-01", "2026-01-31"),  # Paris
        (TRIP_BOX, "2024-12-01", "2026-12-02"),  # exactly the longest range allowed: 731 days
    ],
)
def test_weekly_average_for_a_box_matches_python(client, box, start, end):
    response = client.get(PATH, params=params(box, start, end))
    assert response.status_code == 200, response.text
    want = expected_weeks(dt.date.fromisoformat(start), dt.date.fromisoformat(end), box=box)
    assert response.json()["items"] == want


@pytest.mark.parametrize("region", ["Prague", "Brno", "Turin", "Atlantis"])
def test_weekly_average_for_a_region_matches_python(client, region):
    response = client.get(PATH, params=params(None, "2025-12-20", "2026-02-20", region=region))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["bbox"], body["region"]) == (None, region)
    assert body["items"] == expected_weeks(dt.date(2025, 12, 20), dt.date(2026, 2, 20), region=region)
    assert (sum(row["trips"] for row in body["items"]) > 0) == (region != "Atlantis")


def test_everything_counts_every_trip_once(client):
    world = {"min_lon": -180, "min_lat": -90, "max_lon": 180, "max_lat": 90}
    body = client.get(PATH, params=params(world, "2025-12-22", "2026-02-15")).json()
    assert sum(row["trips"] for row in body["items"]) == len(TRIPS)
    assert len(body["items"]) == 8 and {row["days"] for row in body["items"]} == {7}


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"bbox": "14.5,50.0,14.4,50.1"}, "min_lon < max_lon"),
        ({"bbox": "14.4,50.1,14.5,50.1"}, "min_lat < max_lat"),
        ({"bbox": "14.4,-90.5,14.5,50.1"}, "latitudes in -90..90"),
        ({"bbox": "-181,50,14.5,50.1"}, "longitudes must lie in -180..180"),
        ({"bbox": "14.4,50,nan,50.1"}, "finite"),
        ({"bbox": "west,50,14.5,50.1"}, "four numbers"),
        ({"bbox": "14.4,50,14.5"}, "four numbers"),
        ({"bbox": "14.4,5e1,14.5,50.1"}, "plain decimals"),
        ({"bbox": "+14.4,50,14.5,50.1"}, "plain decimals"),
        ({"region": "Prague"}, "exactly one of `bbox` and `region`"),
        ({"bbox": None}, "exactly one of `bbox` and `region`"),
        ({"bbox": None, "region": ""}, "region"),
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


def utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_latest_datasource_of_the_two_most_common_regions(client):
    counts = Counter(trip[0] for trip in TRIPS)
    top = sorted(counts, key=lambda region: (-counts[region], region))[:2]
    want = []
    for region in top:
        latest = max((t for t in TRIPS if t[0] == region), key=lambda t: (t[3], [-ord(c) for c in t[4]]))
        want.append(
            {"region": region, "trips": counts[region], "latest_datasource": latest[4], "latest_at": utc(latest[3])}
        )
    response = client.get("/v1/trips/top-regions/latest-datasource")
    assert response.status_code == 200, response.text
    assert response.json() == {"items": want}
    assert [row["region"] for row in want] == ["Prague", "Brno"] or [row["region"] for row in want] == [
        "Prague",
        "Turin",
    ]


@pytest.mark.parametrize("datasource", ["cheap_mobile", "baba_car", "nobody"])
def test_regions_a_datasource_appeared_in(client, datasource):
    mine = [t for t in TRIPS if t[4] == datasource]
    want = [
        {
            "region": region,
            "trips": sum(1 for t in mine if t[0] == region),
            "first_seen": utc(min(t[3] for t in mine if t[0] == region)),
            "last_seen": utc(max(t[3] for t in mine if t[0] == region)),
        }
        for region in sorted({t[0] for t in mine})
    ]
    response = client.get(f"/v1/trips/datasources/{datasource}/regions")
    assert response.status_code == 200, response.text
    assert response.json() == {"datasource": datasource, "items": want}
    if datasource == "cheap_mobile":
        assert [row["region"] for row in want] == ["Brno", "Prague"]


def test_same_auth_and_access_log_as_the_other_routes(anonymous, client):
    assert anonymous.get(PATH, params=params()).status_code == 401
    with access_log() as records:
        response = client.get(PATH, params=params(), headers={"X-Request-ID": "weekly-1"})
    assert response.status_code == 200 and response.headers["x-request-id"] == "weekly-1"
    fields = records[-1].fields
    assert fields["path"] == PATH and fields["status"] == 200 and fields["api_key_id"]
    assert API_KEY not in str(fields)


def test_the_route_wins_over_the_trip_lookup_and_is_documented(client):
    spec = client.get("/openapi.json").json()
    operation = spec["paths"][PATH]["get"]
    assert operation["tags"] == ["trips"] and operation["operationId"] == "trips_weekly_average"
    required = {p["name"]: p["required"] for p in operation["parameters"]}
    assert required == {"bbox": False, "region": False, "from": True, "to": True}
    assert "read as UTC" in operation["description"]
    # What the schema can state of a parameter it states; what lies across parameters is in the documented 422.
    schemas = {p["name"]: [p["schema"], *p["schema"].get("anyOf", [])] for p in operation["parameters"]}
    assert {name: any("pattern" in s for s in options) for name, options in schemas.items()} == dict.fromkeys(
        required, True
    )
    invalid = operation["responses"]["422"]["description"]
    assert "both or neither of `bbox` and `region`" in invalid and "731 days" in invalid
    # Without parameters it is this route's 422, not a trip lookup's 404 or pattern error.
    response = client.get(PATH)
    assert response.status_code == 422 and "query parameter 'from'" in response.json()["detail"]


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
