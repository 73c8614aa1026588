"""Ingestion on demand: trip files uploaded and streamed to landing/trips/, and each ingestion's stages pushed (SSE)."""

# No `from __future__ import annotations`: FastAPI reads the signatures here at run time.
#
# The upload is parsed as it arrives (python-multipart's push parser over `request.stream()`) and written to S3 as a
# multipart upload in parts of PART_SIZE, so the API holds at most about one part of the file, whatever its size;
# the object appears under landing/trips/ only when complete (S3 makes a multipart upload visible at completion), so
# the sensor never sees half a file. The ingestion is then registered (include/api/events.py) and its `landed`
# event pushed; the trips DAG finds the file through its sensor like any other and adds the later events under the
# same id.
#
# The event streams LISTEN on the analytics database's `ingestion_events` channel first, then replay the stored
# events after `Last-Event-ID` (or `last_event_id`), then forward each notification as it arrives: a client that
# reconnects misses nothing, and nothing polls the table.

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from include.api import events as ingestions
from include.api.auth import require_scope
from include.api.problems import ApiError, responses
from include.api.routes import in_thread

log = logging.getLogger("lakehouse.api")

UPLOAD_PATH = "/trips/files"
PREFIX = "trips/uploads/"
PART_SIZE = 8 * 1024 * 1024  # S3 parts are at least 5 MiB, but the last
KEEP_ALIVE_S = 15.0
INGESTION_ID = r"^ing_[0-9a-f]{24}$"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class Uploaded(BaseModel):
    """An accepted upload: its ingestion id, where it landed, and where to follow it."""

    ingestion_id: str = Field(examples=["ing_3f2a9c0d1e4b5a6978877665"])
    key: str = Field(description="The object key in the landing bucket.", examples=["trips/uploads/ing_3f2a-x.csv"])
    bytes: int = Field(description="Bytes received.", examples=[1048576])
    etag: str = Field(description="The object's ETag.", examples=["9b2cf535f27731c974343645a3985328-1"])
    events: str = Field(description="The ingestion's event stream.", examples=["/v1/ingestions/ing_3f2a/events"])


UPLOAD_EXAMPLE = {
    "ingestion_id": "ing_3f2a9c0d1e4b5a6978877665",
    "key": "trips/uploads/ing_3f2a9c0d1e4b5a6978877665-trips_2026_11.csv",
    "bytes": 1048576,
    "etag": "9b2cf535f27731c974343645a3985328-1",
    "events": "/v1/ingestions/ing_3f2a9c0d1e4b5a6978877665/events",
}


def _s3(settings: Any) -> Any:
    import boto3
    from botocore.config import Config

    options: dict[str, Any] = {"region_name": settings.s3_region, "config": Config(s3={"addressing_style": "path"})}
    if settings.s3_endpoint:
        options["endpoint_url"] = settings.s3_endpoint
    if settings.s3_access_key_id:
        options["aws_access_key_id"] = settings.s3_access_key_id
        options["aws_secret_access_key"] = settings.s3_secret_access_key
    return boto3.client("s3", **options)


def _events_conn(settings: Any) -> Any:
    import psycopg2

    if not settings.events_dsn:
        raise ApiError(503, "Ingestion unavailable", "No events database is configured.", kind="ingest-unavailable")
    return psycopg2.connect(settings.events_dsn, connect_timeout=int(settings.connect_timeout_s))


def object_key(ingestion_id: str, filename: str | None) -> str:
    """Where an upload lands: ``trips/uploads/<id>-<safe name>.csv`` (the sensor reads ``*.csv`` below trips/)."""
    stem = _UNSAFE.sub("_", (filename or "upload").rsplit("/", 1)[-1]).strip("._") or "upload"
    stem = stem[:-4] if stem.lower().endswith(".csv") else stem
    return f"{PREFIX}{ingestion_id}-{stem[:100]}.csv"


class _Parts:
    """Collects the file field's bytes from python-multipart's callbacks (which cannot await)."""

    def __init__(self) -> None:
        self.header_field, self.header_value = bytearray(), bytearray()
        self.headers: dict[str, str] = {}
        self.in_file = False
        self.seen_file = False
        self.filename: str | None = None
        self.pending: list[bytes] = []

    def callbacks(self) -> dict[str, Any]:
        def part_begin() -> None:
            self.headers = {}

        def header_field(data: bytes, start: int, end: int) -> None:
            self.header_field += data[start:end]

        def header_value(data: bytes, start: int, end: int) -> None:
            self.header_value += data[start:end]

        def header_end() -> None:
            self.headers[self.header_field.decode("latin-1").lower()] = self.header_value.decode("utf-8", "replace")
            self.header_field, self.header_value = bytearray(), bytearray()

        def headers_finished() -> None:
            from python_multipart.multipart import parse_options_header

            _, options = parse_options_header(self.headers.get("content-disposition", ""))
            if options.get(b"name") == b"file" and not self.seen_file:
                self.in_file, self.seen_file = True, True
                self.filename = options.get(b"filename", b"").decode("utf-8", "replace") or None

        def part_data(data: bytes, start: int, end: int) -> None:
            if self.in_file:
                self.pending.append(bytes(data[start:end]))

        def part_end() -> None:
            self.in_file = False

        return {
            "on_part_begin": part_begin,
            "on_header_field": header_field,
            "on_header_value": header_value,
            "on_header_end": header_end,
            "on_headers_finished": headers_finished,
            "on_part_data": part_data,
            "on_part_end": part_end,
        }


class _S3Upload:
    """A multipart upload written a part at a time, in a worker thread (boto3 blocks)."""

    def __init__(self, client: Any, bucket: str, key: str, metadata: dict[str, str]) -> None:
        self.client, self.bucket, self.key, self.metadata = client, bucket, key, metadata
        self.upload_id: str | None = None
        self.buffer = bytearray()
        self.parts: list[dict[str, Any]] = []
        self.size = 0

    async def _call(self, method: str, **args: Any) -> dict[str, Any]:
        """``client.<method>`` on this upload's object, in a worker thread."""
        return await in_thread(partial(getattr(self.client, method), Bucket=self.bucket, Key=self.key, **args))

    async def write(self, data: bytes) -> None:
        if self.upload_id is None:
            started = await self._call("create_multipart_upload", Metadata=self.metadata)
            self.upload_id = started["UploadId"]
        self.buffer += data
        self.size += len(data)
        while len(self.buffer) >= PART_SIZE:
            await self._part(bytes(self.buffer[:PART_SIZE]))
            del self.buffer[:PART_SIZE]

    async def _part(self, body: bytes) -> None:
        number = len(self.parts) + 1
        done = await self._call("upload_part", UploadId=self.upload_id, PartNumber=number, Body=body)
        self.parts.append({"PartNumber": number, "ETag": done["ETag"]})

    async def complete(self) -> str:
        if self.upload_id is None:
            await self.write(b"")
        if self.buffer or not self.parts:
            await self._part(bytes(self.buffer))
            self.buffer.clear()
        parts = {"Parts": self.parts}
        done = await self._call("complete_multipart_upload", UploadId=self.upload_id, MultipartUpload=parts)
        return done["ETag"].strip('"')

    async def abort(self) -> None:
        if self.upload_id is not None:
            await self._call("abort_multipart_upload", UploadId=self.upload_id)


def _boundary(request: Request) -> bytes:
    from python_multipart.multipart import parse_options_header

    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise ApiError(415, "Unsupported media type", "Send the file as multipart/form-data, field `file`.")
    return options[b"boundary"]


async def receive(request: Request, settings: Any, ingestion_id: str) -> tuple[str, int, str]:
    """Stream the request's ``file`` field to S3; returns (key, bytes, ETag)."""
    from python_multipart.multipart import MultipartParser

    parts = _Parts()
    parser = MultipartParser(_boundary(request), parts.callbacks())
    upload: _S3Upload | None = None
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if parts.pending and upload is None:
                key = object_key(ingestion_id, parts.filename)
                upload = _S3Upload(_s3(settings), settings.landing_bucket, key, {"ingestion-id": ingestion_id})
            for piece in parts.pending:
                await upload.write(piece)
                if upload.size > settings.max_upload_bytes:
                    raise ApiError(413, "Too large", f"Uploads are limited to {settings.max_upload_bytes} bytes.")
            parts.pending.clear()
        parser.finalize()
        if not parts.seen_file:
            raise ApiError(422, "No file", "The form has no `file` field.", kind="validation")
        if upload is None:  # an empty file
            upload = _S3Upload(
                _s3(settings),
                settings.landing_bucket,
                object_key(ingestion_id, parts.filename),
                {"ingestion-id": ingestion_id},
            )
        etag = await upload.complete()
    except BaseException:
        if upload is not None:
            await upload.abort()
        raise
    return upload.key, upload.size, etag


def _land(settings: Any, ingestion_id: str, key: str, size: int, etag: str) -> None:
    conn = _events_conn(settings)
    try:
        ingestions.ensure_schema(conn)
        path = f"s3a://{settings.landing_bucket}/{key}"
        ingestions.register(
            conn, domain="trips", path=path, etag=etag, size=size, source="api", ingestion_id=ingestion_id
        )
        ingestions.emit(conn, ingestion_id, "landed", {"path": path, "bytes": size, "source": "api"})
    finally:
        conn.close()


def _sse(event: ingestions.Event) -> str:
    return f"id: {event.event_id}\nevent: {event.event}\ndata: {event.json()}\n\n"


async def event_stream(request: Request, settings: Any, ingestion_id: str | None, after: int) -> AsyncIterator[str]:
    """Stored events after ``after``, then each event as it is notified; one ingestion's stream ends at its last."""
    conn = await in_thread(partial(_events_conn, settings))
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"LISTEN {ingestions.CHANNEL}")  # before the replay: nothing falls between the two
        loop.add_reader(conn.fileno(), wake.set)
        yield "retry: 2000\n\n"
        for event in await in_thread(partial(ingestions.events_after, conn, after, ingestion_id)):
            after = event.event_id
            yield _sse(event)
            if ingestion_id is not None and event.event in ingestions.FINAL:
                return
        # A client that goes away cancels this generator (Starlette's StreamingResponse watches for the disconnect).
        while True:
            try:
                await asyncio.wait_for(wake.wait(), KEEP_ALIVE_S)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            wake.clear()
            for event in ingestions.drain(conn):
                if event.event_id <= after or ingestion_id not in (None, event.ingestion_id):
                    continue
                after = event.event_id
                yield _sse(event)
                if ingestion_id is not None and event.event in ingestions.FINAL:
                    return
    finally:
        loop.remove_reader(conn.fileno())
        conn.close()


def _last_event_id(header: str | None, query: int | None) -> int:
    if query is not None:
        return query
    try:
        return max(int(header), 0) if header else 0
    except ValueError:
        raise ApiError(422, "Invalid Last-Event-ID", "Last-Event-ID must be an event id (an integer).") from None


UPLOAD_DOC = (
    "A CSV file of the trips feed (`region,origin_coord,destination_coord,datetime,datasource`), as the "
    "multipart/form-data field `file`, streamed to `landing/trips/uploads/`; the trips pipeline picks it up "
    "like any dropped file. Needs an API key with the `ingest` scope (a `read` key gets 403). Returns the "
    "ingestion id; follow it on `GET /v1/ingestions/{ingestion_id}/events`."
)
SSE_DOC = (
    "Server-Sent Events (`text/event-stream`), pushed as the pipeline progresses (PostgreSQL LISTEN/NOTIFY): "
    "`landed` (path, bytes, source), `raw` (lines), `bronze` (accepted, duplicates, rejects), `gold` (trips), "
    "`served` (PostgreSQL and TiDB rows) and `failed` (stage and the one-line reason). Each event has an `id`; "
    "reconnect with the `Last-Event-ID` header (browsers do it by themselves) or `last_event_id` to resume after it."
)


LastEventIdQuery = Annotated[int | None, Query(ge=0, description="Resume after this event id.", examples=[0])]
LastEventIdHeader = Annotated[str | None, Header(alias="Last-Event-ID", include_in_schema=False)]
SSE_EXAMPLE = "id: 7\nevent: raw\ndata: {...}\n\n"
STREAM_ENDS = "The stream ends after `served` or `failed`."


def _sse_route(operation_id: str, summary: str, ends: str, *, not_found: bool = False) -> dict[str, Any]:
    """The keyword arguments of an event stream route, all but its path; ``not_found`` adds the 404."""
    errors = (403, 404, 422, 503) if not_found else (403, 422, 503)
    return {
        "operation_id": operation_id,
        "summary": summary,
        "description": f"{SSE_DOC} {ends}",
        "response_class": StreamingResponse,
        "dependencies": [Depends(require_scope("read"))],
        "responses": {200: {"content": {SSE: {"example": SSE_EXAMPLE}}}, **responses(*errors)},
    }


def ingest_router() -> APIRouter:
    """``POST /trips/files`` (scope ``ingest``) and the ingestion event streams (scope ``read``)."""
    router = APIRouter(tags=["ingestion"])

    @router.post(
        UPLOAD_PATH,
        dependencies=[Depends(require_scope("ingest"))],
        status_code=202,
        operation_id="trips_upload_file",
        summary="Upload a trips CSV file",
        description=UPLOAD_DOC,
        response_model=Uploaded,
        responses={
            202: {"content": {"application/json": {"example": UPLOAD_EXAMPLE}}},
            **responses(401, 403, 413, 415, 422, 503),
        },
    )
    async def upload(request: Request) -> Response:
        settings = request.app.state.settings
        if not settings.events_dsn:
            raise ApiError(503, "Ingestion unavailable", "No events database is configured.", kind="ingest-unavailable")
        ingestion_id = ingestions.new_ingestion_id()
        key, size, etag = await receive(request, settings, ingestion_id)
        await in_thread(partial(_land, settings, ingestion_id, key, size, etag))
        log.info("upload %s: %s (%d bytes)", ingestion_id, key, size)
        body = {
            "ingestion_id": ingestion_id,
            "key": key,
            "bytes": size,
            "etag": etag,
            "events": f"/v1/ingestions/{ingestion_id}/events",
        }
        return JSONResponse(body, status_code=202)

    @router.get(
        "/ingestions/events",
        **_sse_route("ingestion_events_all", "Events of every ingestion (SSE)", "This stream never ends by itself."),
    )
    async def all_events(
        request: Request, last_event_id: LastEventIdQuery = None, last_event_header: LastEventIdHeader = None
    ) -> Response:
        after = _last_event_id(last_event_header, last_event_id)
        await in_thread(partial(_check_db, request.app.state.settings))
        stream = event_stream(request, request.app.state.settings, None, after)
        return StreamingResponse(stream, media_type=SSE, headers=SSE_HEADERS)

    @router.get(
        "/ingestions/{ingestion_id}/events",
        **_sse_route("ingestion_events", "Events of one ingestion (SSE)", STREAM_ENDS, not_found=True),
    )
    async def one_ingestion(
        request: Request,
        ingestion_id: Annotated[
            str, Path(pattern=INGESTION_ID, examples=["ing_3f2a9c0d1e4b5a6978877665"], description="The ingestion.")
        ],
        last_event_id: LastEventIdQuery = None,
        last_event_header: LastEventIdHeader = None,
    ) -> Response:
        after = _last_event_id(last_event_header, last_event_id)
        settings = request.app.state.settings
        if not await in_thread(partial(_known, settings, ingestion_id)):
            raise ApiError(404, "No such ingestion", f"No ingestion {ingestion_id}.", kind="not-found")
        return StreamingResponse(
            event_stream(request, settings, ingestion_id, after), media_type=SSE, headers=SSE_HEADERS
        )

    return router


SSE = "text/event-stream"
# No caching, and no buffering by a reverse proxy (nginx honours X-Accel-Buffering): each event goes out at once.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _check_db(settings: Any) -> None:
    conn = _events_conn(settings)
    try:
        ingestions.ensure_schema(conn)
    finally:
        conn.close()


def _known(settings: Any, ingestion_id: str) -> bool:
    conn = _events_conn(settings)
    try:
        ingestions.ensure_schema(conn)
        return ingestions.exists(conn, ingestion_id)
    finally:
        conn.close()
