"""Errors as RFC 9457 problem details (``application/problem+json``), never a stack trace."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("lakehouse.api")

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:lakehouse:problem:"


class FieldError(BaseModel):
    """One invalid input."""

    loc: list[str | int] = Field(description="Where: `query`, `path` or `header`, then the parameter name.")
    msg: str = Field(description="What is wrong with it.")
    type: str = Field(description="The kind of error.")


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    type: str = Field(description="A URI naming the kind of problem.", examples=["urn:lakehouse:problem:validation"])
    title: str = Field(description="A short summary of the kind of problem.", examples=["Invalid request"])
    status: int = Field(description="The HTTP status code.", examples=[422])
    detail: str | None = Field(None, description="What went wrong with this request.")
    instance: str | None = Field(None, description="The request path.", examples=["/v1/tweets/per-hour"])
    request_id: str | None = Field(None, description="The request's id, as in the X-Request-ID header and the logs.")
    errors: list[FieldError] | None = Field(None, description="For 422: every invalid input.")


class ApiError(Exception):
    """An error the API reports as a problem; raise it from routes and dependencies."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        kind: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail = status, title, detail
        self.kind = kind
        self.headers = dict(headers or {})


def problem_body(status: int, title: str, detail: str | None, instance: str | None, request_id: str | None,
                 *, kind: str | None = None, errors: list[dict] | None = None) -> bytes:  # fmt: skip
    """The JSON bytes of a problem (also used by the middleware, outside FastAPI)."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + kind if kind else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "request_id": request_id,
    }
    if errors is not None:
        body["errors"] = errors
    return json.dumps(body, separators=(",", ":"), default=str).encode()


def problem_response(request: Request, status: int, title: str, detail: str | None = None, **extra: Any) -> Response:
    """A problem response for ``request``."""
    headers = extra.pop("headers", None)
    request_id = request.scope.get("state", {}).get("request_id")
    body = problem_body(status, title, detail, request.url.path, request_id, **extra)
    return Response(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _validation_errors(error: RequestValidationError) -> list[dict]:
    errors = []
    for item in error.errors():
        loc = [part for part in item.get("loc", ()) if isinstance(part, str | int)]
        errors.append({"loc": loc, "msg": str(item.get("msg", "invalid")), "type": str(item.get("type", "invalid"))})
    return errors


def _describe(errors: list[dict]) -> str:
    parts = []
    for item in errors:
        loc = [str(part) for part in item["loc"]]
        if len(loc) >= 2:
            parts.append(f"{loc[0]} parameter '{'.'.join(loc[1:])}': {item['msg']}")
        else:
            parts.append(f"{loc[0] if loc else 'request'} parameters: {item['msg']}")
    return "; ".join(parts)


def install(app: FastAPI) -> None:
    """Register the problem handlers on ``app``."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> Response:
        return problem_response(request, error.status, error.title, error.detail, kind=error.kind,
                                headers=error.headers)  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        errors = _validation_errors(error)
        return problem_response(request, 422, "Invalid request", _describe(errors), kind="validation", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        detail = error.detail if isinstance(error.detail, str) else None
        return problem_response(request, error.status_code, _title(error.status_code), detail, headers=error.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return problem_response(request, 500, "Internal server error", "The error was logged with the request id.")


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def responses(*statuses: int, refused: tuple[str, ...] = ()) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting problem bodies for ``statuses``.

    Args:
        statuses: the HTTP statuses.
        refused: for the 422, the rules across parameters that the parameters' schemas cannot state, each as what
            is refused ("`from` after `to`").
    """
    invalid = "Invalid parameters: every problem is listed in `errors`."
    if refused:
        invalid += " Besides what each parameter's schema states, refused: " + "; ".join(refused) + "."
    descriptions = {
        400: "Bad request.",
        401: "No valid API key in the X-API-Key header.",
        404: "No such resource, or the dataset has no loaded slice.",
        422: invalid,
        503: "The database is unavailable, or busy past the pool timeout; retry later.",
        504: "The request ran past the request timeout.",
    }
    return {
        status: {
            "description": descriptions.get(status, "Error."),
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def component_schemas() -> dict[str, Any]:
    """The OpenAPI component schemas of ``Problem`` and what it refers to (for ``#/components/schemas/Problem``)."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    return {"Problem": schema, **defs}
