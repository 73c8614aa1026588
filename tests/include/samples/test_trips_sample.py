"""Tests for the taxi-trip CSV generator and its drop command, checked with csv and plain Python."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections import Counter
from decimal import Decimal

import pytest

from include.samples.trips import TripOptions, generate_trip_file, main

UTC = dt.UTC
HEADER = [
    "pickup_datetime", "dropoff_datetime", "passenger_count", "trip_distance", "pickup_longitude", "pickup_latitude",
    "dropoff_longitude", "dropoff_latitude", "fare_amount", "total_amount",
]  # fmt: skip
ROWS = 2_000


@pytest.fixture(scope="module")
def sample():
    return generate_trip_file(ROWS, seed=3)


def read_rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))


def printed_json(out: str) -> dict:
    """The JSON document the command prints (log lines of Airflow and moto may surround it on stdout)."""
    start = out.rindex("\n{\n") + 1 if not out.startswith("{\n") else 0
    return json.JSONDecoder().raw_decode(out[start:])[0]


def when(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None


def number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def inside(lon: float, lat: float) -> bool:
    return -74.30 <= lon <= -73.65 and 40.45 <= lat <= 40.95


def values(fields: list[str]) -> tuple:
    """A trip's values, whatever the formatting of its numbers."""
    return (*fields[:3], *(Decimal(f).normalize() for f in fields[3:]))


def test_same_arguments_same_bytes():
    first = generate_trip_file(500, seed=9)
    assert generate_trip_file(500, seed=9).content == first.content
    assert generate_trip_file(500, seed=10).content != first.content
    assert first.name == "trips_20261101_9.csv"


def test_header_and_one_line_per_row(sample):
    rows = read_rows(sample.content)
    assert rows[0] == HEADER
    assert len(rows) == ROWS + 1
    assert sample.content.endswith(b"\n") and not sample.content.endswith(b"\n\n")
    assert [line.number for line in sample.lines] == list(range(1, ROWS + 2))
    assert [line.text for line in sample.lines] == sample.content.decode().splitlines()


def test_trips_are_possible_and_realistic(sample):
    start = dt.datetime(2026, 11, 1)
    trips = [read_rows(line.text.encode())[0] for line in sample.lines if line.kind == "trip"]
    assert len(trips) > 0.9 * ROWS
    for fields in trips:
        pickup, dropoff = when(fields[0]), when(fields[1])
        distance, fare, total = number(fields[3]), number(fields[8]), number(fields[9])
        lon1, lat1, lon2, lat2 = (number(f) for f in fields[4:8])
        assert start <= pickup < start + dt.timedelta(days=1), fields
        assert pickup < dropoff <= pickup + dt.timedelta(hours=3), fields
        assert fields[2] in {"", "0", "1", "2", "3", "4", "5", "6"}, fields
        assert 0 < distance < 40, fields
        assert inside(lon1, lat1) and inside(lon2, lat2), fields
        # Metered fares grow with the distance; the JFK-Manhattan flat fare is the exception.
        assert fare == 70.0 or fare >= 3.0 + 3.5 * distance - 0.01, fields
        assert total >= fare + 1.5 - 0.001, fields
    # Trips spread over the day and the city.
    assert len({when(f[0]).hour for f in trips}) == 24
    assert len({(round(number(f[4]), 2), round(number(f[5]), 2)) for f in trips}) > 100


def defect_holds(kind: str, fields: list[str]) -> bool:
    """The line is impossible in the way its label says (computed from the fields alone)."""
    if kind == "wrong_column_count":
        return len(fields) != 10
    if len(fields) != 10:
        return False
    points = [number(f) if f else None for f in fields[4:8]]
    checks = {
        "outside_service_area": lambda: not (inside(*points[:2]) and inside(*points[2:])),
        "non_positive_distance": lambda: number(fields[3]) <= 0,
        "dropoff_before_pickup": lambda: when(fields[1]) < when(fields[0]),
        "missing_coordinates": lambda: any(p is None or p == 0 for p in points),
        "bad_pickup_datetime": lambda: when(fields[0]) is None,
        "negative_total": lambda: number(fields[9]) < 0,
        "bad_passenger_count": lambda: fields[2] not in {"", *map(str, range(10))},
    }
    return checks[kind]()


def test_every_line_is_what_its_label_says(sample):
    first_seen: dict[tuple, int] = {}
    kinds = Counter()
    for line in sample.lines[1:]:
        fields = line.text.split(",")
        kinds[line.kind] += 1
        if line.kind == "trip":
            assert values(fields) not in first_seen, line
            first_seen[values(fields)] = line.number
        elif line.kind == "duplicate":
            assert first_seen[values(fields)] == line.duplicate_of < line.number, line
        else:
            assert defect_holds(line.kind, fields), line
    assert kinds["duplicate"] == round(ROWS * 0.02)
    assert kinds["wrong_column_count"] == round(ROWS * 0.005)
    impossible = {k: n for k, n in kinds.items() if k not in {"trip", "duplicate", "wrong_column_count"}}
    assert sum(impossible.values()) == round(ROWS * 0.04)
    assert len(impossible) == 7 and max(impossible.values()) - min(impossible.values()) <= 1
    # Half the duplicates repeat the bytes, half the values formatted differently.
    copies = [line for line in sample.lines if line.kind == "duplicate"]
    exact = sum(line.text == sample.lines[line.duplicate_of - 1].text for line in copies)
    assert 0 < exact < len(copies)


def test_describe_sums_up_the_content(sample):
    rows = read_rows(sample.content)
    labels = Counter(line.kind for line in sample.lines)
    description = sample.describe()
    assert description["bytes"] == len(sample.content)
    assert description["lines"] == len(rows)
    assert description["trips"] + description["duplicates"] + sum(description["defects"].values()) == ROWS
    assert description["defects"] == {k: n for k, n in labels.items() if k not in {"header", "trip", "duplicate"}}
    assert description["pickup_days"] == ["2026-11-01"]


def test_options_shape_the_file():
    options = TripOptions(start=dt.datetime(2026, 3, 5, tzinfo=UTC), days=3, bad_ratio=0, duplicate_ratio=0)
    clean = generate_trip_file(300, seed=1, options=options, name="clean.csv")
    assert clean.name == "clean.csv"
    assert {line.kind for line in clean.lines[1:]} <= {"trip", "wrong_column_count"}
    assert clean.describe()["pickup_days"] == ["2026-03-05", "2026-03-06", "2026-03-07"]
    assert generate_trip_file(0, seed=1).content == (",".join(HEADER) + "\n").encode()
    with pytest.raises(ValueError, match="rows"):
        generate_trip_file(-1)
    with pytest.raises(ValueError, match="ratios"):
        generate_trip_file(10, options=TripOptions(bad_ratio=0.6))
    with pytest.raises(ValueError, match="time-zone"):
        generate_trip_file(10, options=TripOptions(start=dt.datetime(2026, 1, 1)))


def test_write_command(tmp_path, capsys):
    result = main(["write", "--out", str(tmp_path), "--rows", "120", "--seed", "4", "--start", "2026-11-19"])
    expected = generate_trip_file(120, 4, TripOptions(start=dt.datetime(2026, 11, 19, tzinfo=UTC)))
    assert (tmp_path / "trips_20261119_4.csv").read_bytes() == expected.content
    assert printed_json(capsys.readouterr().out) == result
    assert result["lines"] == 121 and result["seed"] == 4


def test_drop_uploads_one_file_through_the_connection(landing_s3, capsys):
    result = main(["drop", "--rows", "250", "--seed", "5", "--start", "2026-11-19"])
    key = "trips/trips_20261119_5.csv"
    body = landing_s3.get_object(Bucket="landing", Key=key)["Body"].read()
    assert body == generate_trip_file(250, 5, TripOptions(start=dt.datetime(2026, 11, 19, tzinfo=UTC))).content
    printed = printed_json(capsys.readouterr().out)
    assert printed == result
    assert printed["uri"] == f"s3://landing/{key}"
    assert printed["etag"] == landing_s3.head_object(Bucket="landing", Key=key)["ETag"].strip('"')
    assert (printed["bytes"], printed["lines"]) == (len(body), len(read_rows(body)))
    assert printed["trips"] + printed["duplicates"] + sum(printed["defects"].values()) == 250


def test_drop_to_an_explicit_endpoint(landing_s3, moto_endpoint, monkeypatch, capsys):
    monkeypatch.delenv("AIRFLOW_CONN_LAKEHOUSE_S3")  # the endpoint alone must do
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    args = ["drop", "--endpoint", moto_endpoint, "--rows", "40", "--seed", "6", "--name", "late.csv"]
    main([*args, "--prefix", "trips/2026/11/"])
    listed = landing_s3.list_objects_v2(Bucket="landing", Prefix="trips/")["Contents"]
    assert [item["Key"] for item in listed] == ["trips/2026/11/late.csv"]
    assert printed_json(capsys.readouterr().out)["key"] == "trips/2026/11/late.csv"
