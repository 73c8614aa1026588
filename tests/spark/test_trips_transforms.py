"""Trips transformations: input lines beside the rows expected from them (computed with re, csv and plain Python)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import uuid
from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal

import pytest

pytestmark = pytest.mark.spark

D0, D1, D2 = "2026-11-18", "2026-11-19", "2026-11-20"
DAY0, DAY1, DAY2 = (dt.date.fromisoformat(d) for d in (D0, D1, D2))
UTC = dt.timezone.utc  # noqa: UP017 - mirrors the job's Python 3.10 code
F1 = "s3a://landing/trips/a.csv"
F2 = "s3a://landing/trips/b.csv"
HEADER = "region,origin_coord,destination_coord,datetime,datasource"
# The brief's own sample lines.
GOOD = (
    "Prague,POINT (14.4973794438195 50.00136875782316),POINT (14.43109483523328 50.04052930943246),"
    "2018-05-28 09:03:40,funny_car"
)
TURIN = (
    "Turin,POINT (7.672837913286881 44.9957109242058),POINT (7.720368637535126 45.06782385393849),"
    "2018-05-21 02:54:04,baba_car"
)


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

NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
POINT = re.compile(rf"POINT\s*\(\s*({NUMBER})\s+({NUMBER})\s*\)", re.IGNORECASE | re.ASCII)
DATETIME = re.compile(r"(19|20)\d\d-\d\d-\d\d \d\d:\d\d:\d\d", re.ASCII)


def point(text: str) -> tuple[float, float] | None:
    match = POINT.fullmatch(text)
    if not match:
        return None
    lon, lat = float(match[1]), float(match[2])
    return (lon, lat) if math.isfinite(lon) and math.isfinite(lat) else None


def moment(text: str) -> dt.datetime | None:
    if not DATETIME.fullmatch(text):
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None


def is_region(text: str) -> bool:
    return text[:1].isalpha() and all(c.isalpha() or c in " .'’-" for c in text)


def is_datasource(text: str) -> bool:
    return (text[:1].isalnum() or text[:1] == "_") and all(c.isalnum() or c in "_ .-" for c in text)


def reason_of(fields: list[str]) -> str | None:
    """The bronze reason for a data line's fields, from the rules as documented."""
    if len(fields) == 1 and not fields[0]:
        return "blank_line"
    if [f.lower() for f in fields] == HEADER.split(","):
        return "repeated_header"
    if len(fields) != 5:
        return "wrong_column_count"
    region, origin, destination, when, source = fields
    a, b = point(origin), point(destination)
    checks = [
        ("missing_region", lambda: not region),
        ("bad_region", lambda: not is_region(region)),
        ("bad_origin_coord", lambda: a is None),
        ("bad_destination_coord", lambda: b is None),
        ("origin_out_of_range", lambda: abs(a[0]) > 180 or abs(a[1]) > 90),
        ("destination_out_of_range", lambda: abs(b[0]) > 180 or abs(b[1]) > 90),
        ("bad_datetime", lambda: moment(when) is None),
        ("missing_datasource", lambda: not source),
        ("bad_datasource", lambda: not is_datasource(source)),
    ]
    return next((reason for reason, failed in checks if failed()), None)


def nine(value: float) -> str:
    """A coordinate as the trip id normalises it: half up to 9 decimals (from the shortest repr, as Java reads it)."""
    return str(Decimal(repr(value)).quantize(Decimal("1e-9"), ROUND_HALF_UP))


def trip_id_of(fields: list[str]) -> str:
    region, origin, destination, when, source = fields
    coords = [*point(origin), *point(destination)]
    return hashlib.sha256("|".join([region, *(nine(c) for c in coords), when, source]).encode()).hexdigest()


def expected_kinds(files: dict[str, list[str]], history: set[str] = frozenset()) -> dict:
    """Per (file, line): header / record / duplicate / reject (+ reason), and the records' trip ids."""
    kinds, reasons, records, seen = {}, {}, {}, set(history)
    for path in sorted(files):
        for n, text in enumerate(files[path], start=1):
            if n == 1 and text == HEADER:
                kinds[path, n] = "header"
                continue
            reason = reason_of(fields_of(text))
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


def test_to_raw_splits_five_columns_and_keeps_a_malformed_line_whole(spark):
    from lakehouse_jobs.trips import COLUMNS

    lines = [HEADER, GOOD, "a,b,c", GOOD + ",extra", "", ' "Prague" ,x,,,']
    rows = raw_frame(spark, {F1: lines}).orderBy("_line_number").collect()
    assert [(r["_line_number"], r["_field_count"], r["_line"]) for r in rows] == [
        (1, 5, None),
        (2, 5, None),
        (3, 3, "a,b,c"),
        (4, 6, GOOD + ",extra"),
        (5, 1, ""),
        (6, 5, None),
    ]
    assert [rows[1][c] for c in COLUMNS] == GOOD.split(",")
    assert [rows[2][c] for c in COLUMNS] == ["a", "b", "c", None, None]
    assert [rows[3][c] for c in COLUMNS] == GOOD.split(",")  # the 6th field is only in `_line`
    assert rows[5]["region"] == ' "Prague" '  # as received; bronze trims
    assert {(r["ds"], r["_source_file"]) for r in rows} == {(DAY2, F1)}


# --- bronze ----------------------------------------------------------------------------------------

ORIGIN = "POINT (14.4973794438195 50.00136875782316)"
DESTINATION = "POINT (14.43109483523328 50.04052930943246)"
WHEN = "2018-05-28 09:03:40"
# (line, expected reason) — one line per rule, in the order the rules apply.
CASES = [
    (GOOD, None),
    (TURIN, None),
    ('"Ústí nad Labem" , point(14.0 50.6) ,POINT  ( -9.1 38.7 ),2018-05-28 23:59:59, "cheap_mobile" ', None),
    ("São Paulo,POINT (1e1 5E1),POINT (.5 -0.),2018-05-28 00:00:00,pt search app", None),
    ("", "blank_line"),
    (HEADER, "repeated_header"),
    (HEADER.upper(), "repeated_header"),
    (f"Prague,{ORIGIN},{WHEN},funny_car", "wrong_column_count"),
    (GOOD + ",x", "wrong_column_count"),
    (GOOD.replace("Prague", ""), "missing_region"),
    (f"{ORIGIN},Prague,{DESTINATION},{WHEN},funny_car", "bad_region"),  # region and origin swapped
    (GOOD.replace("Prague", "42"), "bad_region"),
    (GOOD.replace(ORIGIN, ""), "bad_origin_coord"),
    (GOOD.replace(ORIGIN, "POINT 14.49 50.00"), "bad_origin_coord"),
    (GOOD.replace(ORIGIN, "POINT (14.49)"), "bad_origin_coord"),
    (GOOD.replace(ORIGIN, "POINT (14.49 50.0"), "bad_origin_coord"),
    (GOOD.replace(ORIGIN, "POINT (14.49 50.0 3.0)"), "bad_origin_coord"),
    (GOOD.replace(ORIGIN, "POINT (NaN 50.0)"), "bad_origin_coord"),
    (GOOD.replace(ORIGIN, "POINT (1e999 50.0)"), "bad_origin_coord"),
    (GOOD.replace(DESTINATION, "LINESTRING (1 2, 3 4)"), "wrong_column_count"),
    (GOOD.replace(DESTINATION, "PONT (14.4 50.0)"), "bad_destination_coord"),
    (GOOD.replace(ORIGIN, "POINT (180.0000001 50.0)"), "origin_out_of_range"),
    (GOOD.replace(ORIGIN, "POINT (14.4 -90.5)"), "origin_out_of_range"),
    (GOOD.replace(DESTINATION, "POINT (-200 45)"), "destination_out_of_range"),
    (GOOD.replace(WHEN, ""), "bad_datetime"),
    (GOOD.replace(WHEN, "2018-02-30 09:03:40"), "bad_datetime"),
    (GOOD.replace(WHEN, "2018-05-28T09:03:40"), "bad_datetime"),
    (GOOD.replace(WHEN, "2018-05-28 24:03:40"), "bad_datetime"),
    (GOOD.replace(WHEN, "0018-05-28 09:03:40"), "bad_datetime"),
    (f"Prague,{ORIGIN},{DESTINATION},funny_car,{WHEN}", "bad_datetime"),  # datetime and datasource swapped
    (GOOD.replace("funny_car", ""), "missing_datasource"),
    (GOOD.replace("funny_car", "funny:car"), "bad_datasource"),
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
    assert [reason_of(fields_of(line)) for line, _ in CASES] == [reason for _, reason in CASES]


def test_typed_values_and_trip_id(spark):
    from lakehouse_jobs.trips import accepted, classify

    rows = {
        r["_line_number"]: r.asDict()
        for r in accepted(classify(raw_frame(spark, {F1: [HEADER, GOOD, CASES[2][0]]}))).collect()
    }
    assert rows[2] == {
        "ds": DAY2,
        "trip_id": hashlib.sha256(
            b"Prague|14.497379444|50.001368758|14.431094835|50.040529309|2018-05-28 09:03:40|funny_car"
        ).hexdigest(),
        "region": "Prague",
        "origin_longitude": 14.4973794438195,
        "origin_latitude": 50.00136875782316,
        "destination_longitude": 14.43109483523328,
        "destination_latitude": 50.04052930943246,
        "datetime": dt.datetime(2018, 5, 28, 9, 3, 40),
        "datasource": "funny_car",
        "_source_file": F1,
        "_line_number": 2,
        "_loaded_at": rows[2]["_loaded_at"],
    }
    # Quotes and blanks around values are dropped; WKT is read whatever its case and spacing.
    third = rows[3]
    assert (third["region"], third["datasource"]) == ("Ústí nad Labem", "cheap_mobile")
    assert [
        third[c] for c in ("origin_longitude", "origin_latitude", "destination_longitude", "destination_latitude")
    ] == [14.0, 50.6, -9.1, 38.7]
    assert third["trip_id"] == trip_id_of(fields_of(CASES[2][0]))


def test_duplicates_are_repeats_of_a_valid_trip_whatever_the_spelling(spark):
    from lakehouse_jobs.trips import classify

    respelled = GOOD.replace(
        "POINT (14.4973794438195 50.00136875782316)", "POINT(14.49737944381950 50.001368757823160)"
    )
    bad = GOOD.replace("funny_car", "")
    kinds = classify(raw_frame(spark, {F1: [HEADER, bad, bad, respelled], F2: [HEADER, GOOD, GOOD, TURIN]}))
    got = {(r["_source_file"], r["_line_number"]): r["kind"] for r in kinds.collect()}
    # The first valid occurrence by file, then line, is the record; a refused line repeated is refused again, and
    # never makes the valid line that follows a duplicate.
    assert got == {
        (F1, 1): "header", (F1, 2): "reject", (F1, 3): "reject", (F1, 4): "record",
        (F2, 1): "header", (F2, 2): "duplicate", (F2, 3): "duplicate", (F2, 4): "record",
    }  # fmt: skip


def test_history_is_the_latest_version_of_each_file_not_read_again(spark):
    from lakehouse_jobs.trips import BRONZE_SCHEMA, accepted, classify, current_history

    def bronze(ds, files):
        return accepted(classify(raw_frame(spark, files, ds=ds))).collect()

    other = GOOD.replace("09:03:40", "10:03:40")
    # F1 was read on D0 (GOOD) and again on D1 (TURIN only): GOOD no longer stands. F2 (other) was read on D0.
    rows = bronze(D0, {F1: [HEADER, GOOD], F2: [HEADER, other]}) + bronze(D1, {F1: [HEADER, TURIN]})
    history = spark.createDataFrame(rows, BRONZE_SCHEMA)
    ids = {r["trip_id"] for r in current_history(history, D2, []).collect()}
    assert ids == {trip_id_of(fields_of(TURIN)), trip_id_of(fields_of(other))}
    # Slice D2 reads F1 again: its trips are no history at all, so they are accepted again.
    ids = {r["trip_id"] for r in current_history(history, D2, [F1]).collect()}
    assert ids == {trip_id_of(fields_of(other))}
    got = classify(raw_frame(spark, {F1: [HEADER, TURIN, other]}), current_history(history, D2, [F1])).collect()
    assert {r["_line_number"]: r["kind"] for r in got} == {1: "header", 2: "record", 3: "duplicate"}


def test_a_file_without_the_header_is_refused_whole(spark):
    from lakehouse_jobs.trips import classify

    renamed = HEADER.replace("datasource", "source")
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

    short = f"Prague,{ORIGIN},{WHEN}"
    no_source = GOOD.replace("funny_car", "")
    rows = {
        r["_line_number"]: r for r in rejected(classify(raw_frame(spark, {F1: [HEADER, short, no_source]}))).collect()
    }
    assert json.loads(rows[2]["record"]) == {
        "region": "Prague",
        "origin_coord": ORIGIN,
        "destination_coord": WHEN,
        "_line": short,
    }
    assert json.loads(rows[3]["record"]) == dict(zip(HEADER.split(","), no_source.split(","), strict=True))
    assert [(rows[n]["reason"], rows[n]["_source_file"]) for n in (2, 3)] == [
        ("wrong_column_count", F1),
        ("missing_datasource", F1),
    ]


# The generator's label of a bad line -> the reason bronze must give.
LABELS = {
    "malformed_origin": "bad_origin_coord",
    "malformed_destination": "bad_destination_coord",
    "origin_out_of_range": "origin_out_of_range",
    "destination_out_of_range": "destination_out_of_range",
    "swapped_datetime_datasource": "bad_datetime",
    "swapped_region_origin": "bad_region",
    "missing_field": "wrong_column_count",
    "extra_field": "wrong_column_count",
    "bad_datetime": "bad_datetime",
    "empty_region": "missing_region",
    "empty_datasource": "missing_datasource",
    "repeated_header": "repeated_header",
    "blank_line": "blank_line",
}


@pytest.fixture(scope="module")
def generated():
    """Two generated files, the second repeating ten trips of the first (a feed re-sending them)."""
    from devtools.samples.trips import TripOptions, generate_trip_file

    first = generate_trip_file(2000, seed=21)
    second = generate_trip_file(600, seed=22, options=TripOptions(start=dt.datetime(2026, 11, 2, tzinfo=UTC), days=3))
    repeated = [line.text for line in first.lines if line.kind == "trip"][:10]
    return {
        "files": {F1: [line.text for line in first.lines], F2: [line.text for line in second.lines] + repeated},
        "labelled": (first, second),
    }


def test_generated_files_are_classified_as_computed_in_python(spark, generated):
    from lakehouse_jobs.trips import Reconciliation, accepted, classify, rejected

    files = generated["files"]
    want = expected_kinds(files)
    classified = classify(raw_frame(spark, files)).persist()
    got = {(r["_source_file"], r["_line_number"]): r["kind"] for r in classified.collect()}
    assert got == want["kinds"]
    got_reasons = {(r["_source_file"], r["_line_number"]): r["reason"] for r in rejected(classified).collect()}
    assert got_reasons == want["reasons"]
    # The generator's labels say the same: each defect under its reason, every trip and duplicate accepted as such.
    for path, labelled in zip((F1, F2), generated["labelled"], strict=True):
        for line in labelled.lines[1:]:
            label = line.repeats or line.kind
            expected = {"trip": "record", "duplicate": "duplicate"}.get(label, "reject")
            assert (got[path, line.number], got_reasons.get((path, line.number))) == (expected, LABELS.get(label)), line
    assert set(got_reasons.values()) == set(LABELS.values())
    records = {(r["_source_file"], r["_line_number"]): r["trip_id"] for r in accepted(classified).collect()}
    assert records == want["records"]
    recon = Reconciliation.of(classified, classified.count())
    recon.check()
    kinds = Counter(want["kinds"].values())
    assert (recon.headers, recon.accepted, recon.duplicates, recon.rejects) == (
        kinds["header"], kinds["record"], kinds["duplicate"], kinds["reject"],
    )  # fmt: skip
    assert recon.duplicates >= 10
    classified.unpersist()


def test_the_engine_keeps_the_first_valid_trip_as_computed_in_python(spark, generated):
    """What bronze writes (an aggregation, not the row-by-row view): a trip first seen on a refused line is kept."""
    from lakehouse_jobs.trips import LAYER

    files = dict(generated["files"])
    trips = [text for text in files[F1][1:] if reason_of(fields_of(text)) is None]
    # A file sorting first whose lines 2 and 3 refuse two trips of F1 (a sixth field; a bad datetime) before line 4
    # accepts the second one: it is a record there, and F1's copy of it a duplicate.
    early = "s3a://landing/trips/0.csv"
    files[early] = [
        HEADER,
        trips[0] + ",extra",
        trips[1].replace(fields_of(trips[1])[3], "2026-13-01 00:00:00"),
        trips[1],
    ]
    history = {trip_id_of(fields_of(trips[2]))}
    want = expected_kinds(files, history)
    assert want["kinds"][early, 4] == "record" and want["kinds"][early, 2] == want["kinds"][early, 3] == "reject"
    parsed = LAYER.parse(raw_frame(spark, files))
    seen = spark.createDataFrame([(t,) for t in history], "trip_id string")
    got = {(r["_source_file"], r["_line_number"]): r["trip_id"] for r in LAYER.records(parsed, seen).collect()}
    assert got == want["records"]


# --- gold -----------------------------------------------------------------------------------------


def bronze_rows(spark, files: dict[str, list[str]], ds: str):
    from lakehouse_jobs.trips import BRONZE_SCHEMA, accepted, classify

    return spark.createDataFrame(accepted(classify(raw_frame(spark, files, ds=ds))).collect(), BRONZE_SCHEMA)


def test_gold_trips_add_day_week_hour_bucket_and_cells(spark):
    from lakehouse_jobs.trips import GOLD_TRIPS_SCHEMA, gold_trips

    west = "Lisbon,POINT (-9.1393 38.7223),POINT (-9.0 -0.005),2018-06-03 23:59:59,pt_search_app"  # a Sunday
    gold = gold_trips(bronze_rows(spark, {F1: [HEADER, GOOD, west]}, D2))
    assert gold.columns == GOLD_TRIPS_SCHEMA.fieldNames()
    got = {
        r["region"]: (
            r["trip_date"],
            r["week_start"],
            r["hour_of_day"],
            r["time_bucket"],
            r["origin_cell"],
            r["destination_cell"],
            r["source_file"],
        )
        for r in gold.collect()
    }
    assert got == {
        # 2018-05-28 is a Monday; 14.497 -> 1449, 50.0013 -> 5000; 09:03 is in 09-12.
        "Prague": (dt.date(2018, 5, 28), dt.date(2018, 5, 28), 9, "09-12", "1449:5000", "1443:5004", F1),
        # Cells floor towards minus infinity: -9.1393 -> -914, -0.005 -> -1.
        "Lisbon": (dt.date(2018, 6, 3), dt.date(2018, 5, 28), 23, "21-24", "-914:3872", "-900:-1", F1),
    }


def python_trips(files: dict[str, list[str]]) -> list[dict]:
    """The accepted trips of ``files``, with their derived values computed in Python."""
    trips = []
    for path, line in expected_kinds(files)["records"]:
        region, origin, destination, when, source = fields_of(files[path][line - 1])
        moment_ = moment(when)
        (olon, olat), (dlon, dlat) = point(origin), point(destination)
        trips.append(
            {
                "region": region,
                "origin_cell": f"{math.floor(olon * 100)}:{math.floor(olat * 100)}",
                "destination_cell": f"{math.floor(dlon * 100)}:{math.floor(dlat * 100)}",
                "bucket": f"{moment_.hour // 3 * 3:02d}-{moment_.hour // 3 * 3 + 3:02d}",
                "datetime": moment_,
                "datasource": source,
            }
        )
    return trips


def centre(cell: str) -> tuple[float, float]:
    x, y = (int(v) for v in cell.split(":"))
    return (x + 0.5) / 100, (y + 0.5) / 100


def test_trip_groups_count_every_trip_made_by_the_end_of_ds_whichever_slice_holds_it(spark, generated):
    # The first file (trips of 2026-11-16 to -22) was read by the run of D0, the second by D1's, the brief's sample
    # line (a trip of 2018) by a later run's: D1's groups take the trips made up to the end of D1, from all three.
    from lakehouse_jobs.trips import gold_trips, trip_groups

    first, second = ({F1: generated["files"][F1]}, {F2: generated["files"][F2][:601]})
    later = {"s3a://landing/trips/c.csv": [HEADER, GOOD]}
    trips = gold_trips(bronze_rows(spark, first, D0)).unionByName(gold_trips(bronze_rows(spark, second, D1)))
    trips = trips.unionByName(gold_trips(bronze_rows(spark, later, D2)))
    got = {
        (r["region"], r["origin_cell"], r["destination_cell"], r["time_bucket"]): r.asDict()
        for r in trip_groups(trips, D1).collect()
    }
    made = [t for t in python_trips(first) + python_trips(second) + python_trips(later) if t["datetime"].date() <= DAY1]
    assert dt.date(2018, 5, 28) in {t["datetime"].date() for t in made}
    assert len(made) < len(python_trips(first) + python_trips(second))  # the first file's later days are left out
    groups = defaultdict(list)
    for trip in made:
        groups[trip["region"], trip["origin_cell"], trip["destination_cell"], trip["bucket"]].append(trip)
    assert set(got) == set(groups)
    assert max(len(members) for members in groups.values()) > 2  # the hot spots make similar trips
    for key, members in groups.items():
        (olon, olat), (dlon, dlat) = centre(key[1]), centre(key[2])
        assert got[key] == {
            "ds": DAY1, "region": key[0], "origin_cell": key[1], "destination_cell": key[2], "time_bucket": key[3],
            "origin_cell_longitude": olon, "origin_cell_latitude": olat,
            "destination_cell_longitude": dlon, "destination_cell_latitude": dlat,
            "trips": len(members),
            "datasources": ",".join(sorted({m["datasource"] for m in members})),
            "first_seen": min(m["datetime"] for m in members),
            "last_seen": max(m["datetime"] for m in members),
        }, key  # fmt: skip


def test_trips_weekly_covers_every_region_and_week_of_the_range(spark):
    from lakehouse_jobs.trips import gold_trips, trips_weekly

    def line(region, when):
        return f"{region},POINT (14.4 50.0),POINT (14.5 50.1),{when},funny_car"

    # Wednesday 2026-11-04 to Tuesday 2026-11-24: four ISO weeks, of 5, 7, 7 and 2 days; Turin has none in two.
    lines = [
        HEADER,
        line("Prague", "2026-11-04 08:00:00"), line("Prague", "2026-11-04 09:00:00"),
        line("Prague", "2026-11-08 23:00:00"), line("Turin", "2026-11-10 07:00:00"),
        line("Prague", "2026-11-24 12:00:00"),
    ]  # fmt: skip
    trips = gold_trips(bronze_rows(spark, {F1: lines}, D2))
    last = dt.date(2026, 11, 24)
    got = sorted(tuple(r) for r in trips_weekly(trips, last.isoformat()).collect())
    w = [dt.date(2026, 11, 2), dt.date(2026, 11, 9), dt.date(2026, 11, 16), dt.date(2026, 11, 23)]
    assert got == [
        (last, "Prague", w[0], 5, 3, 2, 0.6),
        (last, "Prague", w[1], 7, 0, 0, 0.0),
        (last, "Prague", w[2], 7, 0, 0, 0.0),
        (last, "Prague", w[3], 2, 1, 1, 0.5),
        (last, "Turin", w[0], 5, 0, 0, 0.0),
        (last, "Turin", w[1], 7, 1, 1, 0.1429),
        (last, "Turin", w[2], 7, 0, 0, 0.0),
        (last, "Turin", w[3], 2, 0, 0, 0.0),
    ]
    # As of D2 (2026-11-20) the trip of the 24th has not happened: the range ends on the 10th, Turin's trip.
    assert sorted(tuple(r) for r in trips_weekly(trips, D2).collect()) == [
        (DAY2, "Prague", w[0], 5, 3, 2, 0.6),
        (DAY2, "Prague", w[1], 2, 0, 0, 0.0),
        (DAY2, "Turin", w[0], 5, 0, 0, 0.0),
        (DAY2, "Turin", w[1], 2, 1, 1, 0.5),
    ]
    assert trips_weekly(trips, "2026-11-03").count() == 0  # no trip made by the end of an earlier day


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


def test_origin_cells_count_each_trip_once_per_level(spark):
    from lakehouse_jobs.trips import gold_trips, origin_cells

    def line(region, point, when):
        return f"{region},POINT ({point[0]} {point[1]}),POINT (14.5 50.1),{when},funny_car"

    # West of Greenwich (negative cells), exactly on cell edges, two trips of one fine cell on one day.
    points = [
        ("Lisbon", (-9.1393, 38.7223), "2026-11-04 08:00:00"),
        ("Lisbon", (-9.1393, 38.7223), "2026-11-04 09:00:00"),
        ("Lisbon", (-9.14, 38.72), "2026-11-04 10:00:00"),
        ("Prague", (14.43, 50.0), "2026-11-05 11:00:00"),
        ("Prague", (14.4399999, 50.0999999), "2026-11-05 12:00:00"),
    ]
    trips = gold_trips(bronze_rows(spark, {F1: [HEADER, *(line(*p) for p in points)]}, D2))
    got = Counter({tuple(r[:6]): r[6] for r in origin_cells(trips).collect()})
    want = Counter()
    for region, (lon, lat), when in points:
        day = dt.date.fromisoformat(when[:10])
        x, y = math.floor(lon * 1000), math.floor(lat * 1000)
        for level, cx, cy in ((3, x, y), (2, x // 10, y // 10), (0, 0, 0)):
            want[DAY2, region, level, cx, cy, day] += 1
    assert got == want
    assert got[DAY2, "Lisbon", 3, -9140, 38722, dt.date(2026, 11, 4)] == 2
