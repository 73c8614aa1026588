"""Request id, request timeout and structured JSON access logs, as one plain ASGI middleware (no per-request task)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import sys
import time
import uuid
from typing import Any

from include.api.problems import MEDIA_TYPE, problem_body

access_log = logging.getLogger("lakehouse.api.access")
REQUEST_ID_HEADER = "x-request-id"
# A caller's request id is kept when it is a plain token, so ids can be followed across services.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and the record's ``fields`` dict if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stdout for the API's loggers; uvicorn's own plain access log is replaced by ours."""
    root = logging.getLogger("lakehouse.api")
    if not any(getattr(handler, "_lakehouse_api", False) for handler in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        handler._lakehouse_api = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    logging.getLogger("uvicorn.access").disabled = True


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class RequestContext:
    """Gives each request an id (``X-Request-ID``), bounds its time, and logs one JSON line when it ends.

    A request still running after ``timeout_s`` is cancelled and answered 504 (if nothing was sent yet). Blocking
    database work runs in abandoned-on-cancel threads, so the answer is not held up by it; the statement itself
    stops at the database's statement timeout.
    """

    def __init__(self, app: Any, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        outcome = {"status": 500, "sent": False}

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                outcome["status"], outcome["sent"] = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        deadline = asyncio.timeout(self.timeout_s)
        try:
            async with deadline:
                await self.app(scope, receive, send_with_id)
        except TimeoutError:
            if not deadline.expired():
                raise
            if not outcome["sent"]:
                await self._timed_out(scope, send_with_id, request_id)
        finally:
            self._log(scope, state, request_id, outcome["status"], started)

    async def _timed_out(self, scope: dict, send: Any, request_id: str) -> None:
        detail = f"The request did not finish within {self.timeout_s:g} s."
        body = problem_body(504, "Request timed out", detail, scope.get("path"), request_id, kind="timeout")
        headers = [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 504, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _log(scope: dict, state: dict, request_id: str, status: int, started: float) -> None:
        client = scope.get("client")
        fields = {
            "request_id": request_id,
            "method": scope.get("method"),
            "path": scope.get("path"),
            "query": scope.get("query_string", b"").decode("latin-1")[:512],
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "client": client[0] if client else None,
            "api_key_id": state.get("api_key_id"),
        }
        access_log.info("request", extra={"fields": fields})
