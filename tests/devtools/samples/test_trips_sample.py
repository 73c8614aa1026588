"""Tests for the trip feed generator and its commands, checked with csv, re and plain Python."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
from collections import Counter

import pytest

from devtools.samples.trips import REGIONS, TripOptions, generate_trip_file, iter_lines, main, write_trip_file

UTC = dt.UTC
HEADER = ["region", "origin_coord", "destination_coord", "datetime", "datasource"]
ROWS = 3_000
POINT = re.compile(r"POINT ?\((\S+) (\S+)\)")


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


def point(text: str) -> tuple[float, float] | None:
    match = POINT.fullmatch(text)
    if not match:
        return None
    try:
        lon, lat = float(match[1]), float(match[2])
    except ValueError:
        return None
    return (lon, lat) if math.isfinite(lon) and math.isfinite(lat) else None


def values(fields: list[str]) -> tuple:
    """A trip's values, whatever the spelling of its points."""
    return (fields[0], point(fields[1]), point(fields[2]), *fields[3:])


def test_same_arguments_same_bytes():
    first = generate_trip_file(500, seed=9)
    assert generate_trip_file(500, seed=9).content == first.content
    assert generate_trip_file(500, seed=10).content != first.content
    assert first.name == "trips_20261116_9.csv"


def test_header_and_one_line_per_row(sample):
    rows = read_rows(sample.content)
    assert rows[0] == HEADER
    assert len(sample.content.decode().split("\n")) == ROWS + 2  # the last line ends with a newline too
    assert [line.number for line in sample.lines] == list(range(1, ROWS + 2))
    assert [line.text for line in sample.lines] == sample.content.decode().split("\n")[:-1]


def test_trips_are_valid_and_realistic(sample):
    start = dt.datetime(2026, 11, 16)
    trips = [line.text.split(",") for line in sample.lines if line.kind == "trip"]
    assert len(trips) > 0.9 * ROWS
    for region, origin, destination, moment, source in trips:
        assert region in REGIONS and source in dict(REGIONS[region].datasources), region
        assert start <= when(moment) < start + dt.timedelta(days=7), moment
        for lon, lat in (point(origin), point(destination)):
            # Within ~0.5 degree of the region's centre: a city, not the globe.
            assert abs(lon - REGIONS[region].longitude) < 0.6 and abs(lat - REGIONS[region].latitude) < 0.4
    regions = Counter(t[0] for t in trips)
    assert set(regions) == set(REGIONS)
    # The weights show: Prague (5) has more trips than Lisbon (2).
    assert regions["Prague"] > 1.5 * regions["Lisbon"]
    hours = Counter(when(t[3]).hour for t in trips)
    assert hours[8] > 3 * hours[3] and hours[17] > 3 * hours[2]  # rush hours against the night
    weekdays = Counter(when(t[3]).weekday() for t in trips)
    assert weekdays[2] > 1.3 * weekdays[6]  # a Wednesday against a Sunday
    assert {t[4] for t in trips if t[0] == "Turin"} == {"baba_car", "pt_search_app", "bad_diesel_vehicles"}
    # The hot spots: many trips start in the same ~1 km cell.
    cells = Counter((math.floor(point(t[1])[0] * 100), math.floor(point(t[1])[1] * 100)) for t in trips)
    assert cells.most_common(1)[0][1] > 0.05 * len(trips)


def defect_holds(kind: str, text: str) -> bool:
    """The line is bad in the way its label says (computed from its text alone)."""
    fields = text.split(",")
    checks = {
        "repeated_header": lambda: fields == HEADER,
        "blank_line": lambda: text == "",
        "missing_field": lambda: len(fields) == 4,
        "extra_field": lambda: len(fields) == 6,
        "empty_region": lambda: fields[0] == "" and len(fields) == 5,
        "empty_datasource": lambda: fields[4] == "" and len(fields) == 5,
        "malformed_origin": lambda: point(fields[1]) is None and point(fields[2]) is not None,
        "malformed_destination": lambda: point(fields[1]) is not None and point(fields[2]) is None,
        "origin_out_of_range": lambda: abs(point(fields[1])[0]) > 180 or abs(point(fields[1])[1]) > 90,
        "destination_out_of_range": lambda: abs(point(fields[2])[0]) > 180 or abs(point(fields[2])[1]) > 90,
        "swapped_datetime_datasource": lambda: when(fields[3]) is None and when(fields[4]) is not None,
        "swapped_region_origin": lambda: point(fields[0]) is not None and fields[1] in REGIONS,
        "bad_datetime": lambda: when(fields[3]) is None and point(fields[1]) and point(fields[2]),
    }
    return bool(checks[kind]())


def test_every_line_is_what_its_label_says(sample):
    first_seen: dict[tuple, int] = {}
    kinds = Counter()
    for line in sample.lines[1:]:
        kinds[line.kind] += 1
        if line.kind == "trip":
            assert values(line.text.split(",")) not in first_seen, line
            first_seen[values(line.text.split(","))] = line.number
        elif line.kind == "duplicate":
            assert first_seen[values(line.text.split(","))] == line.duplicate_of < line.number, line
        elif line.kind == "repeated_defect":
            # The same text as the latest earlier defect of the kind it repeats.
            earlier = [e for e in sample.lines[: line.number - 1] if e.kind == line.repeats]
            assert earlier and earlier[-1].text == line.text, line
        else:
            assert defect_holds(line.kind, line.text), line
    defects = {k: n for k, n in kinds.items() if k not in {"trip", "duplicate"}}
    assert len(defects) == 14 and max(defects.values()) - min(defects.values()) <= 2, defects
    # About the ratios asked for (2% duplicates, 3% defects), drawn at random.
    assert 0.01 * ROWS < kinds["duplicate"] < 0.03 * ROWS
    assert 0.02 * ROWS < sum(defects.values()) < 0.04 * ROWS
    # Half the duplicates repeat the bytes, half the trip with the WKT's optional space left out.
    copies = [line for line in sample.lines if line.kind == "duplicate"]
    exact = sum(line.text == sample.lines[line.duplicate_of - 1].text for line in copies)
    assert 0 < exact < len(copies)


def test_describe_sums_up_the_content(sample):
    labels = Counter(line.kind for line in sample.lines)
    description = sample.describe()
    assert description["bytes"] == len(sample.content)
    assert description["lines"] == ROWS + 1
    assert description["trips"] + description["duplicates"] + sum(description["defects"].values()) == ROWS
    assert description["defects"] == {k: n for k, n in labels.items() if k not in {"header", "trip", "duplicate"}}


def test_options_shape_the_file():
    options = TripOptions(
        start=dt.datetime(2026, 3, 5, tzinfo=UTC), days=3, defect_ratio=0, duplicate_ratio=0, regions=("Turin",)
    )
    clean = generate_trip_file(300, seed=1, options=options, name="clean.csv")
    assert clean.name == "clean.csv"
    assert {line.kind for line in clean.lines[1:]} == {"trip"}
    assert {line.text[:5] for line in clean.lines[1:]} == {"Turin"}
    assert {line.text.split(",")[3][:10] for line in clean.lines[1:]} == {"2026-03-05", "2026-03-06", "2026-03-07"}
    assert generate_trip_file(0, seed=1).content == (",".join(HEADER) + "\n").encode()
    with pytest.raises(ValueError, match="rows"):
        generate_trip_file(-1)
    with pytest.raises(ValueError, match="ratio"):
        generate_trip_file(10, options=TripOptions(defect_ratio=0.6))
    with pytest.raises(ValueError, match="time-zone"):
        generate_trip_file(10, options=TripOptions(start=dt.datetime(2026, 1, 1)))
    with pytest.raises(ValueError, match="regions"):
        generate_trip_file(10, options=TripOptions(regions=("Atlantis",)))


def test_streamed_file_is_the_same_bytes(tmp_path):
    kinds = write_trip_file(tmp_path / "big.csv", 5_000, seed=8)
    in_memory = generate_trip_file(5_000, seed=8)
    assert (tmp_path / "big.csv").read_bytes() == in_memory.content
    assert kinds == dict(Counter(line.kind for line in iter_lines(5_000, seed=8)))


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
