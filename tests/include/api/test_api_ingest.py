"""Uploads through the API (scopes, streamed to moto S3) and the ingestion event streams (SSE over LISTEN/NOTIFY),
against a real uvicorn server, the local PostgreSQL and the moto S3 server."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
import uuid

import httpx
import pytest
from api_data import API_KEY

pytestmark = pytest.mark.integration

INGEST_KEY = "ingest-test-key"  # a test-only key with the ingest scope
ID = r"ing_[0-9a-f]{24}"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def events_dsn():
    from devtools import local_stack

    name = f"ingest_test_{uuid.uuid4().hex[:8]}"
    local_stack.recreate_database(name)
    yield f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
    local_stack.drop_database(name)


@pytest.fixture(scope="module")
def live(settings, events_dsn, moto_endpoint, monkeypatch_module):
    """The API under uvicorn on a free port: a read key (API_KEY) and an ingest key, uploads to moto S3."""
    import uvicorn

    from devtools import local_stack
    from include.api import ingest
    from include.api.app import create_app
    from include.api.datasets import REGISTRY

    monkeypatch_module.setattr(ingest, "KEEP_ALIVE_S", 0.5)  # notice a closed client quickly
    configured = dataclasses.replace(
        settings,
        key_hashes=frozenset({digest(API_KEY), digest(INGEST_KEY)}),
        key_scopes={digest(INGEST_KEY): frozenset({"read", "ingest"})},
        events_dsn=events_dsn,
        s3_endpoint=moto_endpoint,
        s3_access_key_id="test",
        s3_secret_access_key="test",
    )
    port = local_stack.free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(configured, datasets=REGISTRY), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True, name="api")
    thread.start()
    local_stack.wait_for_port(port)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def upload(base: str, key: str | None, content: bytes, name: str = "trips.csv") -> httpx.Response:
    headers = {"X-API-Key": key} if key else {}
    return httpx.post(
        f"{base}/v1/trips/files", headers=headers, files={"file": (name, content, "text/csv")}, timeout=60
    )


def read_events(
    base: str, path: str, count: int, headers: dict | None = None, timeout: float = 20, of: str | None = None
) -> list[dict]:
    """The first ``count`` events of an SSE stream (id, event, data; of ingestion ``of`` only), parsed by hand."""
    events, current = [], {}
    with httpx.stream("GET", f"{base}{path}", headers={"X-API-Key": API_KEY, **(headers or {})}, timeout=timeout) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), r.read()
        for line in r.iter_lines():
            if not line:
                if "event" in current and of in (None, current["data"]["ingestion_id"]):
                    events.append(current)
                    if len(events) == count:
                        return events
                current = {}
            elif not line.startswith(":"):
                field, _, value = line.partition(": ")
                current[field] = json.loads(value) if field == "data" else value
    return events


def test_a_read_key_cannot_upload_and_nothing_lands(live, landing_s3):
    denied = upload(live, API_KEY, b"region,origin_coord,destination_coord,datetime,datasource\n")
    assert denied.status_code == 403 and denied.headers["content-type"] == "application/problem+json"
    assert "ingest" in denied.json()["detail"]
    assert upload(live, None, b"x").status_code == 401
    assert landing_s3.list_objects_v2(Bucket="landing").get("KeyCount", 0) == 0


def test_an_upload_is_streamed_to_landing_and_announced(live, landing_s3):
    from devtools.samples.trips import generate_trip_file

    content = generate_trip_file(90_000, seed=41).content  # ~11 MB: two parts of the multipart upload
    response = upload(live, INGEST_KEY, content, name="../My trips 2026.csv")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["key"] == f"trips/uploads/{body['ingestion_id']}-My_trips_2026.csv"
    stored = landing_s3.get_object(Bucket="landing", Key=body["key"])
    assert stored["Body"].read() == content and body["bytes"] == len(content)
    assert stored["Metadata"] == {"ingestion-id": body["ingestion_id"]}
    assert body["etag"] == stored["ETag"].strip('"') and body["etag"].endswith("-2")
    [landed] = read_events(live, body["events"], 1)
    assert landed["event"] == "landed" and landed["data"]["ingestion_id"] == body["ingestion_id"]
    assert landed["data"]["data"] == {"path": f"s3a://landing/{body['key']}", "bytes": len(content), "source": "api"}


def test_events_are_pushed_to_a_client_connected_before_and_resumed_after(live, events_dsn):
    import psycopg2

    from include.api import events as ingestions

    conn = psycopg2.connect(events_dsn)
    ingestions.ensure_schema(conn)
    ingestion, _ = ingestions.register(
        conn, domain="trips", path=f"s3a://landing/trips/{uuid.uuid4().hex}.csv", etag="e1", size=10, source="sensor"
    )
    stages = [
        ("landed", {"source": "sensor"}),
        ("raw", {"lines": 11}),
        ("bronze", {"accepted": 8, "duplicates": 1, "rejects": 1}),
        ("gold", {"trips": 8}),
        ("served", {"postgres_rows": 8, "tidb_rows": 8}),
    ]
    got: list[dict] = []
    # The client connects first (the all-ingestions stream), then the pipeline emits, a stage every 0.2 s.
    reader = threading.Thread(target=lambda: got.extend(read_events(live, "/v1/ingestions/events", 5, of=ingestion)))
    reader.start()
    time.sleep(1.0)
    for stage, data in stages:
        ingestions.emit(conn, ingestion, stage, data)
        time.sleep(0.2)
    reader.join(30)
    conn.close()
    mine = got
    assert [(e["event"], e["data"]["data"]) for e in mine] == stages
    assert [int(e["id"]) for e in mine] == sorted(int(e["id"]) for e in mine)
    # Reconnecting with Last-Event-ID replays what came after it; one ingestion's stream ends after `served`.
    resumed = read_events(live, f"/v1/ingestions/{ingestion}/events", 10, headers={"Last-Event-ID": mine[1]["id"]})
    assert [e["event"] for e in resumed] == ["bronze", "gold", "served"]
    assert read_events(live, f"/v1/ingestions/{ingestion}/events?last_event_id={mine[3]['id']}", 10)[0]["event"] == (
        "served"
    )


def test_an_unknown_ingestion_is_a_404(live):
    response = httpx.get(f"{live}/v1/ingestions/ing_{'0' * 24}/events", headers={"X-API-Key": API_KEY})
    assert response.status_code == 404 and response.json()["type"] == "urn:lakehouse:problem:not-found"
    assert httpx.get(f"{live}/v1/ingestions/nope/events", headers={"X-API-Key": API_KEY}).status_code == 422


def test_keys_carry_scopes():
    from include.api.config import Settings

    a, b = digest("a"), digest("b")
    settings = Settings.from_env({"LAKEHOUSE_API_KEY_HASHES": f"{a}, {b.upper()}:read+ingest"})
    assert settings.key_hashes == {a, b}
    assert (settings.scopes(a), settings.scopes(b)) == ({"read"}, {"read", "ingest"})
    with pytest.raises(ValueError, match="scopes"):
        Settings.from_env({"LAKEHOUSE_API_KEY_HASHES": f"{a}:admin"})
