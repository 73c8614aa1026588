"""Trips transformations: input lines beside the rows expected from them (computed with csv and plain Python)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import pytest

pytestmark = pytest.mark.spark

D0, D1, D2 = "2026-11-18", "2026-11-19", "2026-11-20"
DAY0, DAY1, DAY2 = (dt.date.fromisoformat(d) for d in (D0, D1, D2))
UTC = dt.timezone.utc  # noqa: UP017 - mirrors the job's Python 3.10 code
LOADED = dt.datetime(2026, 11, 20, 6, tzinfo=UTC)
F1 = "s3a://landing/trips/a.csv"
F2 = "s3a://landing/trips/b.csv"
HEADER = (
    "pickup_datetime,dropoff_datetime,passenger_count,trip_distance,pickup_longitude,pickup_latitude,"
    "dropoff_longitude,dropoff_latitude,fare_amount,total_amount"
)
GOOD = "2026-11-18 10:00:00,2026-11-18 10:12:30,1,2.30,-73.985500,40.758000,-73.990300,40.692800,14.50,19.80"


def lines_frame(spark, files: dict[str, list[str]]):
    """Numbered lines as ``read_lines`` gives them: one row per line of each file."""
    rows = [(text, path, n) for path, lines in files.items() for n, text in enumerate(lines, start=1)]
    return spark.createDataFrame(rows, "line string, _source_file string, _line_number long")


def raw_frame(spark, files: dict[str, list[str]], ds: str = D2):
    from lakehouse_jobs.trips import to_raw

    return to_raw(lines_frame(spark, files), ds)


def fields_of(line: str) -> list[str]:
    """The values of a line: split on commas, trimmed, one pair of surrounding double quotes removed."""
    values = [field.strip() for field in line.split(",")]
    return [v[1:-1].strip() if len(v) >= 2 and v[0] == v[-1] == '"' else v for v in values]


# --- an independent Python reading of the rules ----------------------------------------------------


def decimal_or_none(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def moment(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S") if len(text) == 19 else None
    except ValueError:
        return None


def reason_of(fields: list[str]) -> str | None:
    """The bronze reason for a data line's fields, from the rules as documented."""
    checks = _field_checks(fields)
    return next((reason for reason, failed in checks if failed()), None)


def _field_checks(v: list[str]):
    if len(v) == 1 and not v[0]:
        return [("blank_line", lambda: True)]
    if len(v) != 10:
        return [("wrong_column_count", lambda: True)]
    pickup, dropoff = moment(v[0]), moment(v[1])
    distance = decimal_or_none(v[3])
    points = [decimal_or_none(x) for x in v[4:8]]
    fare, total = decimal_or_none(v[8]), decimal_or_none(v[9])
    return [
        ("bad_pickup_datetime", lambda: pickup is None),
        ("bad_dropoff_datetime", lambda: dropoff is None),
        ("dropoff_before_pickup", lambda: dropoff < pickup),
        ("zero_duration", lambda: dropoff == pickup),
        ("bad_passenger_count", lambda: v[2] != "" and not (WHOLE.fullmatch(v[2]) and 0 <= float(v[2]) <= 9)),
        ("bad_distance", lambda: distance is None),
        ("non_positive_distance", lambda: distance <= 0),
        ("implausible_distance", lambda: distance > 500),
        ("missing_coordinates", lambda: any(x == "" for x in v[4:8]) or any(p == 0 for p in points)),
        ("bad_coordinates", lambda: any(p is None for p in points)),
        (
            "outside_service_area",
            lambda: (
                not all(Decimal("-74.30") <= p <= Decimal("-73.65") for p in points[0::2])
                or not all(Decimal("40.45") <= p <= Decimal("40.95") for p in points[1::2])
            ),
        ),
        ("bad_fare", lambda: fare is None),
        ("negative_fare", lambda: fare < 0),
        ("bad_total", lambda: total is None),
        ("negative_total", lambda: total < 0),
        ("total_below_fare", lambda: total < fare),
    ]


WHOLE = re.compile(r"[+-]?[0-9]+(\.0*)?")  # "1" or "1.0"


def places(text: str, digits: int) -> str:
    return str(Decimal(text.strip()).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def trip_id_of(fields: list[str]) -> str:
    """sha256 of the values normalised: datetimes as written, doubles to 6 decimals, amounts to cents."""
    v = fields
    passengers = str(int(float(v[2]))) if v[2] else ""
    parts = [v[0], v[1], passengers, *(places(x, 6) for x in v[3:8]), places(v[8], 2), places(v[9], 2)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def expected_kinds(files: dict[str, list[str]], history: set[str] = frozenset()) -> dict:
    """Per (file, line): header / record / duplicate / reject (+ reason), and the records' trip ids."""
    kinds, reasons, records, seen = {}, {}, {}, set(history)
    for path in sorted(files):
        for n, text in enumerate(files[path], start=1):
            if n == 1 and text == HEADER:
                kinds[path, n] = "header"
                continue
            reason = "repeated_header" if text == HEADER else reason_of(fields_of(text))
            if reason:
                kinds[path, n], reasons[path, n] = "reject", reason
                continue
            trip = trip_id_of(fields_of(text))
            kinds[path, n] = "duplicate" if trip in seen else "record"
            if trip not in seen:
                records[path, n] = trip
            seen.add(trip)
    return {"kinds": kinds, "reasons": reasons, "records": records}


# --- raw -------------------------------------------------------------------------------------------


def test_to_raw_splits_ten_columns_and_keeps_a_malformed_line_whole(spark):
    from lakehouse_jobs.trips import COLUMNS

    lines = [HEADER, GOOD, "a,b,c", GOOD + ",extra", "", ' "2026-11-18 10:00:00" ,x,,,,,,,,']
    rows = raw_frame(spark, {F1: lines}).orderBy("_line_number").collect()
    assert [(r["_line_number"], r["_field_count"], r["_line"]) for r in rows] == [
        (1, 10, None),
        (2, 10, None),
        (3, 3, "a,b,c"),
        (4, 11, GOOD + ",extra"),
        (5, 1, ""),
        (6, 10, None),
    ]
    assert [rows[1][c] for c in COLUMNS] == GOOD.split(",")
    assert [rows[2][c] for c in COLUMNS] == ["a", "b", "c"] + [None] * 7
    assert [rows[3][c] for c in COLUMNS] == GOOD.split(",")  # the 11th field is only in `_line`
    assert rows[5]["pickup_datetime"] == ' "2026-11-18 10:00:00" '  # as received; bronze trims
    assert {(r["ds"], r["_source_file"]) for r in rows} == {(DAY2, F1)}


# --- bronze ----------------------------------------------------------------------------------------

# (line, expected reason) — one line per rule, in the order the rules apply.
CASES = [
    (GOOD, None),
    (' "2026-11-18 11:00:00" , 2026-11-18 11:30:00 ,,1.5,-73.95,40.77,-73.98,40.75,"12",15', None),
    ("2026-11-18 10:00:00,2026-11-18 10:10:00,1.0,2.3,-73.9855,40.758,-73.9903,40.6928,14.5,19.8", None),
    ("", "blank_line"),
    (HEADER, "repeated_header"),
    ("2026-11-18 10:00:00,2026-11-18 10:12:30,1,2.30", "wrong_column_count"),
    (GOOD + ",N", "wrong_column_count"),
    (GOOD.replace("2026-11-18 10:00:00", "2026-11-31 10:00:00"), "bad_pickup_datetime"),
    (GOOD.replace("2026-11-18 10:00:00", "2026-11-18T10:00:00"), "bad_pickup_datetime"),
    (GOOD.replace("2026-11-18 10:00:00", "0000-01-01 00:00:00"), "bad_pickup_datetime"),
    (GOOD.replace("2026-11-18 10:00:00,", ","), "bad_pickup_datetime"),
    (GOOD.replace("2026-11-18 10:12:30", "2026-11-18 25:12:30"), "bad_dropoff_datetime"),
    (GOOD.replace("2026-11-18 10:12:30", "2026-11-18 09:59:59"), "dropoff_before_pickup"),
    (GOOD.replace("2026-11-18 10:12:30", "2026-11-18 10:00:00"), "zero_duration"),
    (GOOD.replace(",1,2.30,", ",-1,2.30,"), "bad_passenger_count"),
    (GOOD.replace(",1,2.30,", ",12,2.30,"), "bad_passenger_count"),
    (GOOD.replace(",1,2.30,", ",two,2.30,"), "bad_passenger_count"),
    (GOOD.replace(",1,2.30,", ",1,,"), "bad_distance"),
    (GOOD.replace(",1,2.30,", ",1,NaN,"), "bad_distance"),
    (GOOD.replace(",1,2.30,", ",1,0.00,"), "non_positive_distance"),
    (GOOD.replace(",1,2.30,", ",1,-2.30,"), "non_positive_distance"),
    (GOOD.replace(",1,2.30,", ",1,1e20,"), "implausible_distance"),
    (GOOD.replace("-73.985500,40.758000", ","), "missing_coordinates"),
    (GOOD.replace("-73.985500,40.758000", "0.0,0.0"), "missing_coordinates"),
    (GOOD.replace("-73.990300", "abc"), "bad_coordinates"),
    (GOOD.replace("-73.990300,40.692800", "-75.165200,39.952600"), "outside_service_area"),
    (GOOD.replace("-73.985500,40.758000", "40.758000,-73.985500"), "outside_service_area"),
    (GOOD.replace("14.50,19.80", ",19.80"), "bad_fare"),
    (GOOD.replace("14.50,19.80", "1e3x,19.80"), "bad_fare"),
    (GOOD.replace("14.50,19.80", "-14.50,19.80"), "negative_fare"),
    (GOOD.replace("14.50,19.80", "14.50,"), "bad_total"),
    (GOOD.replace("14.50,19.80", "14.50,-19.80"), "negative_total"),
    (GOOD.replace("14.50,19.80", "14.50,14.49"), "total_below_fare"),
]


def test_every_rule_gives_its_reason(spark):
    from lakehouse_jobs.trips import classify

    lines = [HEADER, *(line for line, _ in CASES)]
    got = {
        r["_line_number"]: (r["kind"], r["reason"])
        for r in classify(raw_frame(spark, {F1: lines})).select("_line_number", "kind", "reason").collect()
    }
    want = {1: ("header", None)}
    for n, (_, reason) in enumerate(CASES, start=2):
        want[n] = ("reject", reason) if reason else ("record", None)
    assert got == want
    # The Python reading of the rules agrees with the hand-written reasons.
    assert [reason_of(fields_of(line)) for line, _ in CASES if line != HEADER] == [
        reason for line, reason in CASES if line != HEADER
    ]


def test_typed_values_and_trip_id(spark):
    from lakehouse_jobs.trips import accepted, classify

    lines = [HEADER, GOOD, CASES[1][0]]
    rows = {r["_line_number"]: r.asDict() for r in accepted(classify(raw_frame(spark, {F1: lines}))).collect()}
    assert rows[2] == {
        "ds": DAY2,
        "trip_id": trip_id_of(fields_of(GOOD)),
        "pickup_at": dt.datetime(2026, 11, 18, 10, 0, 0),
        "dropoff_at": dt.datetime(2026, 11, 18, 10, 12, 30),
        "passenger_count": 1,
        "trip_distance": 2.3,
        "pickup_longitude": -73.9855,
        "pickup_latitude": 40.758,
        "dropoff_longitude": -73.9903,
        "dropoff_latitude": 40.6928,
        "fare_amount": Decimal("14.50"),
        "total_amount": Decimal("19.80"),
        "_source_file": F1,
        "_line_number": 2,
        "_loaded_at": rows[2]["_loaded_at"],
    }
    # Quotes and blanks around values are dropped; an empty passenger count is unknown, not zero.
    assert rows[3]["passenger_count"] is None
    assert (rows[3]["pickup_at"], rows[3]["fare_amount"]) == (dt.datetime(2026, 11, 18, 11), Decimal("12.00"))
    normalised = (
        "2026-11-18 11:00:00|2026-11-18 11:30:00||1.500000|-73.950000|40.770000|-73.980000|40.750000|12.00|15.00"
    )
    expected_id = hashlib.sha256(normalised.encode()).hexdigest()
    assert rows[3]["trip_id"] == expected_id


def test_the_same_trip_formatted_differently_is_a_duplicate(spark):
    from lakehouse_jobs.trips import classify

    same = "2026-11-18 10:00:00,2026-11-18 10:12:30,1.0,2.3,-73.9855,40.758,-73.9903,40.6928,14.5,19.8"
    kinds = classify(raw_frame(spark, {F1: [HEADER, same], F2: [HEADER, GOOD, GOOD]}))
    got = {(r["_source_file"], r["_line_number"]): r["kind"] for r in kinds.collect()}
    # The first occurrence by file, then line, is the record, wherever the copies are.
    assert got == {
        (F1, 1): "header",
        (F1, 2): "record",
        (F2, 1): "header",
        (F2, 2): "duplicate",
        (F2, 3): "duplicate",
    }


def test_trips_of_earlier_slices_are_duplicates(spark):
    from lakehouse_jobs.trips import BRONZE_SCHEMA, accepted, classify

    earlier = accepted(classify(raw_frame(spark, {F1: [HEADER, GOOD]}, ds=D1))).collect()
    history = spark.createDataFrame(earlier, BRONZE_SCHEMA)
    other = GOOD.replace("14.50,19.80", "15.50,20.80")
    got = classify(raw_frame(spark, {F2: [HEADER, GOOD, other]}), history).collect()
    assert {r["_line_number"]: r["kind"] for r in got} == {1: "header", 2: "duplicate", 3: "record"}


def test_a_file_without_the_header_is_refused_whole(spark):
    from lakehouse_jobs.trips import classify

    renamed = HEADER.replace("fare_amount", "fare")
    files = {F1: [renamed, GOOD], F2: [GOOD, HEADER], "s3a://landing/trips/bom.csv": ["\ufeff" + HEADER, GOOD]}
    got = {
        (r["_source_file"], r["_line_number"]): (r["kind"], r["reason"])
        for r in classify(raw_frame(spark, files)).collect()
    }
    assert got == {
        (F1, 1): ("reject", "bad_header"),
        (F1, 2): ("reject", "bad_header"),
        (F2, 1): ("reject", "bad_header"),
        (F2, 2): ("reject", "bad_header"),
        ("s3a://landing/trips/bom.csv", 1): ("header", None),
        ("s3a://landing/trips/bom.csv", 2): ("record", None),
    }


def test_rejects_keep_the_raw_values(spark):
    from lakehouse_jobs.trips import classify, rejected

    short = "2026-11-18 10:00:00,2026-11-18 10:12:30,1"
    bad_total = GOOD.replace("14.50,19.80", "14.50,-19.80")
    rows = {
        r["_line_number"]: r for r in rejected(classify(raw_frame(spark, {F1: [HEADER, short, bad_total]}))).collect()
    }
    assert json.loads(rows[2]["record"]) == {
        "pickup_datetime": "2026-11-18 10:00:00",
        "dropoff_datetime": "2026-11-18 10:12:30",
        "passenger_count": "1",
        "_line": short,
    }
    assert json.loads(rows[3]["record"]) == dict(zip(HEADER.split(","), bad_total.split(","), strict=True))
    assert [(rows[n]["reason"], rows[n]["_source_file"]) for n in (2, 3)] == [
        ("wrong_column_count", F1),
        ("negative_total", F1),
    ]


@pytest.fixture(scope="module")
def generated():
    """Two generated files, the second repeating ten trips of the first (a feed re-sending them)."""
    from include.samples.trips import TripOptions, generate_trip_file

    first = generate_trip_file(1500, seed=21)
    second = generate_trip_file(600, seed=22, options=TripOptions(start=dt.datetime(2026, 11, 2, tzinfo=UTC)))
    first_lines = first.content.decode().splitlines()
    repeated = [line for line in first_lines[1:] if reason_of(fields_of(line)) is None][:10]
    return {F1: first_lines, F2: second.content.decode().splitlines() + repeated}


def test_generated_files_are_classified_as_computed_with_csv(spark, generated):
    from lakehouse_jobs.trips import Reconciliation, accepted, classify, rejected

    want = expected_kinds(generated)
    classified = classify(raw_frame(spark, generated)).persist()
    got = {(r["_source_file"], r["_line_number"]): r["kind"] for r in classified.collect()}
    assert got == want["kinds"]
    reasons = Counter(r["reason"] for r in rejected(classified).collect())
    assert reasons == Counter(want["reasons"].values())
    # The generator's impossible trips all show up, each under its own reason.
    assert set(reasons) >= {
        "outside_service_area", "non_positive_distance", "dropoff_before_pickup", "missing_coordinates",
        "bad_pickup_datetime", "negative_total", "bad_passenger_count", "wrong_column_count",
    }  # fmt: skip
    records = {(r["_source_file"], r["_line_number"]): r["trip_id"] for r in accepted(classified).collect()}
    assert records == want["records"]
    recon = Reconciliation.of(classified, classified.count())
    recon.check()
    kinds = Counter(want["kinds"].values())
    assert (recon.headers, recon.accepted, recon.duplicates, recon.rejects) == (
        kinds["header"],
        kinds["record"],
        kinds["duplicate"],
        kinds["reject"],
    )
    assert recon.duplicates >= 10
    classified.unpersist()


def test_reconciliation_fails_when_lines_are_lost():
    from lakehouse_jobs.trips import Reconciliation

    recon = Reconciliation(raw=10, headers=1, accepted=6, duplicates=1, rejects=2)
    recon.check()
    assert recon.records == 9 and recon.reject_ratio == pytest.approx(2 / 9)
    with pytest.raises(AssertionError, match="records lost"):
        Reconciliation(raw=10, headers=1, accepted=6, duplicates=1, rejects=1).check()


# --- gold -----------------------------------------------------------------------------------------


def bronze_rows(spark, files: dict[str, list[str]], ds: str):
    from lakehouse_jobs.trips import BRONZE_SCHEMA, accepted, classify

    return spark.createDataFrame(accepted(classify(raw_frame(spark, files, ds=ds))).collect(), BRONZE_SCHEMA)


def test_gold_trips_add_pickup_day_and_duration(spark):
    from lakehouse_jobs.trips import GOLD_TRIPS_SCHEMA, gold_trips

    late = "2026-11-18 23:50:00,2026-11-19 00:20:15,2,5.25,-73.9855,40.758,-73.7781,40.6413,70.00,88.44"
    gold = gold_trips(bronze_rows(spark, {F1: [HEADER, GOOD, late]}, D2))
    assert gold.columns == GOLD_TRIPS_SCHEMA.fieldNames()
    got = {r["trip_id"]: r for r in gold.collect()}
    assert {tid: (r["ds"], r["pickup_date"], r["duration_minutes"]) for tid, r in got.items()} == {
        trip_id_of(fields_of(GOOD)): (DAY2, dt.date(2026, 11, 18), 12.5),
        trip_id_of(fields_of(late)): (DAY2, dt.date(2026, 11, 18), 30.25),
    }


def test_trips_daily_is_a_snapshot_of_every_slice_up_to_ds(spark, generated):
    from lakehouse_jobs.trips import gold_trips, trips_daily

    slices = {D0: {F1: generated[F1]}, D1: {F2: generated[F2]}, D2: {"s3a://landing/trips/c.csv": [HEADER, GOOD]}}
    frames = [gold_trips(bronze_rows(spark, files, ds)) for ds, files in slices.items()]
    trips = frames[0].unionByName(frames[1]).unionByName(frames[2])
    got = {r["pickup_date"]: r.asDict() for r in trips_daily(trips, D1).collect()}
    # Expected: the accepted lines of the D0 and D1 slices (each slice de-duplicated on its own here).
    per_day: dict[dt.date, list[list[str]]] = {}
    for files in (slices[D0], slices[D1]):
        for path, line in expected_kinds(files)["records"]:
            fields = fields_of(files[path][line - 1])
            per_day.setdefault(dt.date.fromisoformat(fields[0][:10]), []).append(fields)
    assert set(got) == set(per_day)
    for day, trips_of_day in per_day.items():
        distances = [Decimal(places(f[3], 6)) for f in trips_of_day]
        fares = [Decimal(places(f[8], 2)) for f in trips_of_day]
        n = len(trips_of_day)
        assert got[day] == {
            "ds": DAY1,
            "pickup_date": day,
            "trips": n,
            "average_distance": float((sum(distances) / n).quantize(Decimal("0.0001"), ROUND_HALF_UP)),
            "average_fare": float((sum(fares) / n).quantize(Decimal("0.0001"), ROUND_HALF_UP)),
            "total_fare": sum(fares),
        }, day


# --- reading the files ---------------------------------------------------------------------------


def test_read_lines_numbers_each_file_and_names_it_as_listed(spark, s3):
    """On the S3 stand-in: odd names, CRLF, no final newline, an empty file; the sensor sees the same versions."""
    from pyspark.sql import functions as F

    from include.landing.new_files import list_objects
    from lakehouse_jobs.landed_files import list_landed
    from lakehouse_jobs.trips import count_lines, read_lines

    prefix = f"trips-test-{uuid.uuid4().hex[:8]}/"
    bodies = {
        "plain.csv": f"{HEADER}\n{GOOD}\n{GOOD}\n",
        "day 2/with space+plus.csv": f"{HEADER}\r\n{GOOD}\r\n\r\nlast line without newline",
        "empty.csv": "",
        "_manifest.csv": "not data\n",
        "notes.txt": "not data\n",
    }
    for name, body in bodies.items():
        s3.put_object(Bucket="landing", Key=prefix + name, Body=body.encode())
    try:
        landed = list_landed(spark, f"s3a://landing/{prefix}", suffix=".csv")
        paths = [f.path for f in landed]
        data = sorted(n for n in bodies if n.endswith(".csv") and not n.startswith("_"))
        assert paths == sorted(f"s3a://landing/{prefix}{n}" for n in data)
        objects = list_objects(s3, "landing", prefix, ".csv")
        assert [(o.path("landing"), o.etag, o.size) for o in objects] == [(f.path, f.etag, f.size) for f in landed]
        got = Counter(r["_source_file"] for r in read_lines(spark, paths).collect())
        lines = {f"s3a://landing/{prefix}{n}": len(bodies[n].splitlines()) for n in data}
        assert dict(got) == {p: n for p, n in lines.items() if n}
        assert {p: count_lines(spark, p) for p in paths} == lines
        numbered = read_lines(spark, paths).where(F.col("_source_file").endswith("plus.csv"))
        numbered = numbered.orderBy("_line_number").collect()
        assert [(r["_line_number"], r["line"]) for r in numbered] == list(
            enumerate(bodies["day 2/with space+plus.csv"].splitlines(), start=1)
        )
    finally:
        for name in bodies:
            s3.delete_object(Bucket="landing", Key=prefix + name)
