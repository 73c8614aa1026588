"""The trips DAG end to end through Airflow (local Spark runner): feed files dropped in moto S3, the deferrable
sensor, raw → bronze → gold, checked against figures computed in plain Python from the generated files; a second
run waits (deferred) for a changed version of a file, and every gold table then counts the new version only; each
file's ingestion events; an upload through the API followed on an SSE stream opened before the upload."""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from trips_oracle import expected_cells, expected_groups, expected_weekly, made_by, trips_of

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NEXT_DS = "2026-11-21"
NEXT_LOGICAL_DATE = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
UPLOAD_DS = "2026-11-22"
INGEST_KEY = "trips-upload-test-key"  # a test-only key with the ingest scope
LABELS = {  # the generator's label of a bad line -> the reason bronze must give
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


def arrow(catalog, table: str, ds: str | None = None):
    from pyiceberg.expressions import AlwaysTrue, EqualTo

    return catalog.load_table(table).scan(row_filter=EqualTo("ds", ds) if ds else AlwaysTrue()).to_arrow()


def reason_of(line) -> str | None:
    return LABELS.get(line.repeats or line.kind)


def assert_gold_matches(catalog, ds: str, trips: list[dict]) -> None:
    # The cell counts of every slice up to ds together count the current trips (a changed file's old trips left
    # their slice, whose cells were rebuilt).
    cells = Counter()
    for r in arrow(catalog, "gold.trip_origin_cells").to_pylist():
        if r["ds"] <= dt.date.fromisoformat(ds):
            cells[r["region"], r["level"], r["cell_x"], r["cell_y"], r["trip_date"]] += r["trips"]
    assert cells == expected_cells(trips)
    # The groups and weeks of slice ds are snapshots of the trips made by the end of ds, whichever run read them.
    made = made_by(trips, ds)
    groups = {
        (r["region"], r["origin_cell"], r["destination_cell"], r["time_bucket"]): (
            r["trips"], r["datasources"], r["first_seen"], r["last_seen"],
        )
        for r in arrow(catalog, "gold.trip_groups", ds).to_pylist()
    }  # fmt: skip
    want = expected_groups(made)
    assert groups == want
    assert max(n for n, *_ in want.values()) > 2  # similar trips do get grouped
    weekly = {
        (r["region"], r["week_start"]): (r["days"], r["trips"], r["days_with_trips"], r["average_trips_per_day"])
        for r in arrow(catalog, "gold.trips_weekly", ds).to_pylist()
    }
    assert weekly == expected_weekly(made)


def test_raw_keeps_every_line_with_its_file_and_number(trips_run, iceberg_catalog):
    raw = arrow(iceberg_catalog, "raw.trips", trips_run.ds).to_pylist()
    pairs = zip(trips_run.files, trips_run.drops, strict=True)
    expected = Counter((drop["key"], line.number) for trip_file, drop in pairs for line in trip_file.lines)
    got = Counter((r["_source_file"].split("landing/", 1)[1], r["_line_number"]) for r in raw)
    assert got == expected


def test_bronze_accounts_for_every_line_and_rejects_with_a_reason(trips_run, iceberg_catalog):
    lines = [line for f in trips_run.files for line in f.lines[1:]]
    kinds = Counter(line.kind for line in lines)
    rejects = arrow(iceberg_catalog, "bronze.trips_rejects", trips_run.ds).to_pylist()
    assert Counter(r["reason"] for r in rejects) == Counter(reason_of(line) for line in lines if reason_of(line))
    assert set(r["reason"] for r in rejects) == set(LABELS.values())
    assert arrow(iceberg_catalog, "bronze.trips", trips_run.ds).num_rows == kinds["trip"]
    (run,) = [
        r for r in arrow(iceberg_catalog, "gold.pipeline_runs", trips_run.ds).to_pylist() if r["domain"] == "trips"
    ]
    assert (run["raw_rows"], run["accepted"], run["duplicates"], run["rejects"], run["status"]) == (
        len(lines),
        kinds["trip"],
        kinds["duplicate"],
        len(lines) - kinds["trip"] - kinds["duplicate"],
        "published",
    )


def test_gold_trips_groups_and_weeks_match_the_files(trips_run, iceberg_catalog):
    trips = trips_of(trips_run.files)
    gold = arrow(iceberg_catalog, "gold.trips", trips_run.ds).to_pylist()
    assert len(gold) == len(trips) == len({r["trip_id"] for r in gold})
    assert Counter(
        (r["region"], r["origin_longitude"], r["origin_latitude"], r["destination_longitude"],
         r["destination_latitude"], r["datetime"], r["datasource"])
        for r in gold
    ) == Counter((t["region"], *t["origin"], *t["destination"], t["at"], t["source"]) for t in trips)  # fmt: skip
    for r in gold:
        monday = r["trip_date"] - dt.timedelta(days=r["trip_date"].weekday())
        assert (r["week_start"], r["hour_of_day"], r["trip_date"]) == (monday, r["datetime"].hour, r["datetime"].date())
        fine = tuple(math.floor(v * 1000) for v in (r["origin_longitude"], r["origin_latitude"]))
        assert (r["origin_fine_x"], r["origin_fine_y"]) == fine
    assert 0 < len(made_by(trips, trips_run.ds)) < len(trips)  # the files run past ds: the snapshots leave those out
    assert_gold_matches(iceberg_catalog, trips_run.ds, trips)


def file_events(dsn: str) -> dict[tuple[str, str], list[tuple[str, dict]]]:
    """(path, etag) -> [(event, data), ...] in order, from the events database."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT i.path, i.etag, e.event, e.data FROM ingest.events AS e"
                " JOIN ingest.ingestions AS i USING (ingestion_id) ORDER BY e.event_id"
            )
            found = defaultdict(list)
            for path, etag, event, data in cur.fetchall():
                found[path, etag].append((event, data))
            return found
    finally:
        conn.close()


def expected_events(trip_file, ds: str) -> list[tuple[str, dict]]:
    """The stages of a file with its figures, from the generator's labels (landed is checked apart)."""
    kinds = Counter(line.kind for line in trip_file.lines[1:])
    rejects = sum(1 for line in trip_file.lines[1:] if reason_of(line))
    return [
        ("raw", {"ds": ds, "lines": len(trip_file.lines)}),
        ("bronze", {"ds": ds, "accepted": kinds["trip"], "duplicates": kinds["duplicate"], "rejects": rejects}),
        ("gold", {"ds": ds, "trips": kinds["trip"]}),
    ]


def test_every_file_is_an_ingestion_with_its_stage_events(trips_run):
    found = file_events(trips_run.events_dsn)
    for trip_file, drop in zip(trips_run.files, trips_run.drops, strict=True):
        path = f"s3a://landing/{drop['key']}"
        events = found[path, drop["etag"]]
        assert events[0] == ("landed", {"path": path, "bytes": len(trip_file.content), "source": "sensor"})
        want = expected_events(trip_file, trips_run.ds)
        if len(events) == len(want) + 2:
            # The serve DAG ran in this session (the serve test shares the trips run): its stage comes last, with the
            # file's trips as loaded into both copies.
            trips = want[-1][1]["trips"]
            want.append(("served", {"ds": trips_run.ds, "postgres_rows": trips, "tidb_rows": trips}))
        assert events[1:] == want


def test_a_changed_file_replaces_its_trips_in_every_gold_table(trips_run, iceberg_catalog, s3, lake_env):
    """A later run waits, deferred, for a changed version of the first file; afterwards every gold table counts
    that version only (its old trips leave the older slice, which is announced for serving)."""
    from airflow.dag_processing.dagbag import DagBag

    from devtools.samples.trips import TripFile, TripLine, TripOptions, generate_trip_file

    first = trips_run.files[0]
    # The first 800 lines as they were, then 200 lines of new trips (and defects): some trips gone, some new.
    extra = generate_trip_file(200, 33, TripOptions(start=dt.datetime(2026, 11, 19, tzinfo=dt.UTC), days=3))
    kept = first.lines[:801]
    added = [
        TripLine(len(kept) + i, line.text, line.kind, repeats=line.repeats) for i, line in enumerate(extra.lines[1:], 1)
    ]
    changed = TripFile(first.name, (*kept, *added))
    dropped = {}

    def drop_later():
        from devtools.samples.trips import drop_file

        time.sleep(8)  # the sensor has found nothing pending by then and deferred
        dropped.update(drop_file(s3, changed))

    dropper = threading.Thread(target=drop_later)
    dropper.start()
    try:
        dag = DagBag(dag_folder=str(ROOT / "dags" / "trips.py"))
        run = dag.dags["trips"].test(logical_date=NEXT_LOGICAL_DATE)
    finally:
        dropper.join()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    tasks = {ti.task_id: ti for ti in run.get_task_instances()}
    assert [f["key"] for f in tasks["wait_for_files"].xcom_pull(task_ids="wait_for_files")] == [dropped["key"]]
    assert tasks["announce_replaced_slices"].xcom_pull(task_ids="announce_replaced_slices") == [trips_run.ds]
    cells_announced = tasks["announce_replaced_cell_slices"].xcom_pull(task_ids="announce_replaced_cell_slices")
    assert cells_announced == [trips_run.ds]

    raw_files = {r["_source_file"] for r in arrow(iceberg_catalog, "raw.trips", NEXT_DS).to_pylist()}
    assert {f.split("landing/", 1)[1] for f in raw_files} == {dropped["key"]}
    current = trips_of([changed, trips_run.files[1]])
    all_gold = arrow(iceberg_catalog, "gold.trips").to_pylist()
    assert len(all_gold) == len(current) == len({r["trip_id"] for r in all_gold})
    assert Counter(r["ds"].isoformat() for r in all_gold) == {
        trips_run.ds: len(trips_of([trips_run.files[1]])),
        NEXT_DS: len(trips_of([changed])),
    }
    assert_gold_matches(iceberg_catalog, NEXT_DS, current)
    # The new version is an ingestion of its own, with its own events.
    events = file_events(trips_run.events_dsn)[f"s3a://landing/{dropped['key']}", dropped["etag"]]
    assert [event for event, _ in events] == ["landed", "raw", "bronze", "gold"]
    assert events[1:] == expected_events(changed, NEXT_DS)
    # The earlier snapshot still says what the earlier run saw.
    assert arrow(iceberg_catalog, "gold.trips_weekly", trips_run.ds).num_rows == len(
        expected_weekly(made_by(trips_of(trips_run.files), trips_run.ds))
    )


@pytest.fixture
def upload_api(trips_run, s3_endpoint):
    """The REST API under uvicorn, uploading to the test S3 and reporting to the trips runs' events database."""
    import hashlib
    import socket

    import uvicorn

    from devtools import local_stack
    from include.api.app import create_app
    from include.api.config import Settings

    digest = hashlib.sha256(INGEST_KEY.encode()).hexdigest()
    settings = Settings(
        key_hashes=frozenset({digest}),
        key_scopes={digest: frozenset({"read", "ingest"})},
        events_dsn=trips_run.events_dsn,
        s3_endpoint=s3_endpoint,
        s3_access_key_id=local_stack.S3_KEY,
        s3_secret_access_key=local_stack.S3_KEY,
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def follow(base: str, seen: list[dict], ready: threading.Event) -> None:
    """Read the all-ingestions SSE stream into ``seen`` until an uploaded file's ``gold`` event arrives.

    Like a browser's EventSource, a dropped connection is resumed with ``Last-Event-ID``: no event may be missed or
    repeated across the reconnection.
    """
    import json

    import httpx

    uploads, last = set(), None
    while True:
        headers = {"X-API-Key": INGEST_KEY, **({"Last-Event-ID": last} if last else {})}
        current = {}
        try:
            with httpx.stream("GET", f"{base}/v1/ingestions/events", headers=headers, timeout=600) as r:
                ready.set()
                for line in r.iter_lines():
                    if line.startswith(("id: ", "event: ", "data: ")):
                        field, _, value = line.partition(": ")
                        current[field] = json.loads(value) if field == "data" else value
                    elif not line and "data" in current:
                        event, last, current = current["data"], current["id"], {}
                        seen.append(event)
                        if event["event"] == "landed" and event["data"]["source"] == "api":
                            uploads.add(event["ingestion_id"])
                        if event["event"] == "gold" and event["ingestion_id"] in uploads:
                            return
        except httpx.RemoteProtocolError:
            continue


def test_an_upload_is_followed_stage_by_stage_on_a_stream_opened_before_it(upload_api, trips_run, iceberg_catalog):
    import httpx

    from devtools.samples.trips import TripOptions, generate_trip_file

    upload = generate_trip_file(400, 34, TripOptions(start=dt.datetime(2026, 11, 20, tzinfo=dt.UTC), days=2))
    seen: list[dict] = []
    ready = threading.Event()
    reader = threading.Thread(target=follow, args=(upload_api, seen, ready))
    reader.start()
    assert ready.wait(30)
    response = httpx.post(
        f"{upload_api}/v1/trips/files",
        headers={"X-API-Key": INGEST_KEY},
        files={"file": ("upload.csv", upload.content, "text/csv")},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    ingestion = response.json()["ingestion_id"]
    from airflow.dag_processing.dagbag import DagBag

    run = (
        DagBag(dag_folder=str(ROOT / "dags" / "trips.py"))
        .dags["trips"]
        .test(logical_date=dt.datetime(2026, 11, 22, tzinfo=dt.UTC))
    )
    assert run.state == "success", {ti.task_id: ti.state for ti in run.get_task_instances()}
    reader.join(120)
    assert len({e["id"] for e in seen}) == len(seen)  # no event twice, even across a reconnection
    mine = [(e["event"], e["data"]) for e in seen if e["ingestion_id"] == ingestion]
    path = f"s3a://landing/{response.json()['key']}"
    assert mine == [("landed", {"path": path, "bytes": len(upload.content), "source": "api"}),
                    *expected_events(upload, UPLOAD_DS)]  # fmt: skip
    assert arrow(iceberg_catalog, "gold.trips", UPLOAD_DS).num_rows == len(trips_of([upload]))
