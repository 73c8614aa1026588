"""Ingestions and their events in PostgreSQL, pushed with LISTEN/NOTIFY: written by the pipeline, read by the API."""

# An ingestion is one version of one landed file (path, ETag): an upload through the API gets its id when it is
# received, a file dropped by other means when the sensor finds it. Each stage it passes appends an event to
# `ingest.events` and, in the same transaction, NOTIFYs the channel `ingestion_events` with the event as JSON, so a
# listener learns it when it is committed, without polling; a client reconnecting with `Last-Event-ID` replays the
# table from that id, then listens. Events: landed, raw, bronze, gold, served, failed.
#
# psycopg2 only, passed in as connections: the Airflow tasks (include/landing/ingestion_events.py) and the API share
# this module, which lives in the API package because the API image holds only include/api.

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

CHANNEL = "ingestion_events"
STAGES = ("landed", "raw", "bronze", "gold", "served", "failed")
FINAL = frozenset({"served", "failed"})
SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS ingest;
CREATE TABLE IF NOT EXISTS ingest.ingestions (
    ingestion_id text PRIMARY KEY,
    domain text NOT NULL,
    path text NOT NULL,
    etag text,
    size bigint,
    source text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS ingestions_version ON ingest.ingestions (path, etag);
CREATE TABLE IF NOT EXISTS ingest.events (
    event_id bigserial PRIMARY KEY,
    ingestion_id text NOT NULL REFERENCES ingest.ingestions (ingestion_id),
    event text NOT NULL,
    data jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS events_by_ingestion ON ingest.events (ingestion_id, event_id);
"""
# NOTIFY payloads are limited to 8000 bytes; an event's data stays far below (counts and a one-line reason).
MAX_REASON = 500


@dataclass(frozen=True)
class Event:
    """One event of an ingestion, as stored and as pushed."""

    event_id: int
    ingestion_id: str
    event: str
    data: Mapping[str, Any]
    created_at: str

    def json(self) -> str:
        return json.dumps(
            {
                "id": self.event_id,
                "ingestion_id": self.ingestion_id,
                "event": self.event,
                "data": dict(self.data),
                "at": self.created_at,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Event:
        doc = json.loads(text)
        return cls(doc["id"], doc["ingestion_id"], doc["event"], doc["data"], doc["at"])


def new_ingestion_id() -> str:
    """A fresh ingestion id (``ing_`` and 24 hex digits)."""
    return f"ing_{uuid.uuid4().hex[:24]}"


def ensure_schema(conn: Any) -> None:
    """Create the ``ingest`` schema and tables when missing (idempotent)."""
    with conn.cursor() as cur:
        cur.execute(SCHEMA_SQL)
    conn.commit()


def register(
    conn: Any,
    *,
    domain: str,
    path: str,
    etag: str | None,
    size: int | None,
    source: str,
    ingestion_id: str | None = None,
) -> tuple[str, bool]:
    """The ingestion id of file version (``path``, ``etag``), registered when new; returns ``(id, created)``.

    Args:
        conn: a psycopg2 connection to the analytics database.
        domain: the pipeline, e.g. ``trips``.
        path: the file as the pipeline names it, ``s3a://<bucket>/<key>``.
        etag: the object's ETag (no quotes); None while an upload is still being received.
        size: bytes, when known.
        source: ``api`` (uploaded) or ``sensor`` (dropped by other means).
        ingestion_id: the id to use (an upload's, given when it was received); default a new one.
    """
    with conn.cursor() as cur:
        if etag is not None:
            cur.execute("SELECT ingestion_id FROM ingest.ingestions WHERE path = %s AND etag = %s", (path, etag))
            found = cur.fetchone()
            if found:
                conn.commit()
                return found[0], False
        chosen = ingestion_id or new_ingestion_id()
        cur.execute(
            "INSERT INTO ingest.ingestions (ingestion_id, domain, path, etag, size, source)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (ingestion_id)"
            " DO UPDATE SET etag = EXCLUDED.etag, size = EXCLUDED.size, path = EXCLUDED.path",
            (chosen, domain, path, etag, size, source),
        )
    conn.commit()
    return chosen, True


def ingestion_ids(conn: Any, versions: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(path, etag) -> ingestion id, for the versions that are registered."""
    pairs = list(versions)
    if not pairs:
        return {}
    with conn.cursor() as cur:
        cur.execute(
            "SELECT path, etag, ingestion_id FROM ingest.ingestions WHERE (path, etag) IN %s",
            (tuple(pairs),),
        )
        found = {(path, etag): ingestion for path, etag, ingestion in cur.fetchall()}
    conn.commit()
    return found


def emit(conn: Any, ingestion_id: str, event: str, data: Mapping[str, Any] | None = None) -> Event:
    """Append an event and NOTIFY it, in one transaction (listeners get it when it is committed)."""
    if event not in STAGES:
        raise ValueError(f"unknown event {event!r}; one of {STAGES}")
    payload = dict(data or {})
    if isinstance(payload.get("reason"), str):
        payload["reason"] = payload["reason"].splitlines()[0][:MAX_REASON] if payload["reason"] else ""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO ingest.events (ingestion_id, event, data) VALUES (%s, %s, %s) RETURNING event_id, created_at",
            (ingestion_id, event, json.dumps(payload)),
        )
        event_id, created = cur.fetchone()
        stored = Event(event_id, ingestion_id, event, payload, _iso(created))
        cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, stored.json()))
    conn.commit()
    return stored


def events_after(conn: Any, after: int, ingestion_id: str | None = None, limit: int = 1000) -> list[Event]:
    """Stored events with ids above ``after`` (of one ingestion, or all), in order."""
    sql = "SELECT event_id, ingestion_id, event, data, created_at FROM ingest.events WHERE event_id > %s"
    params: list[Any] = [after]
    if ingestion_id is not None:
        sql += " AND ingestion_id = %s"
        params.append(ingestion_id)
    with conn.cursor() as cur:
        cur.execute(sql + " ORDER BY event_id LIMIT %s", (*params, limit))
        rows = cur.fetchall()
    conn.commit()
    return [Event(r[0], r[1], r[2], r[3], _iso(r[4])) for r in rows]


def exists(conn: Any, ingestion_id: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM ingest.ingestions WHERE ingestion_id = %s", (ingestion_id,))
        found = cur.fetchone() is not None
    conn.commit()
    return found


def drain(conn: Any) -> Iterator[Event]:
    """The events notified to a LISTENing connection since the last call (``conn.poll()`` first)."""
    conn.poll()
    while conn.notifies:
        yield Event.from_json(conn.notifies.pop(0).payload)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
