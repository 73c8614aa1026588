"""The lakehouse REST API: the gold tables served from TiDB, read-only, versioned under ``/v1``.

Run: ``uvicorn include.api.app:create_app --factory --host 127.0.0.1 --port 8000 --workers 2`` with the
``LAKEHOUSE_API_*`` environment (see ``include.api.config.Settings``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response

from include.api import problems
from include.api.auth import HEADER, require_scope
from include.api.config import Settings
from include.api.datasets import REGISTRY, Dataset
from include.api.db import Database, DatabaseUnavailable, MemoryQuotaExceeded, StatementTimeout, TableMissing
from include.api.ingest import ingest_router
from include.api.middleware import RequestContext, configure_logging
from include.api.questions import trips_router
from include.api.routes import catalogue_router, dataset_router, health_router, no_repeated_query

VERSION = "1.0.0"
DESCRIPTION = f"""
Read-only access to the lakehouse's gold tables, as loaded into TiDB by the serve DAG.

* **Authentication**: send your API key in the `{HEADER}` header. `/health`, `/docs` and `/openapi.json` are open.
* **Catalogue**: `GET /v1/datasets` lists every dataset with its columns, filters, order and freshness.
* **Pagination**: list routes return `limit` rows (at most the maximum page size) in a stable order, and a
  `next_cursor` to pass as `cursor` for the next page (keyset pagination; keep the other parameters unchanged).
* **Slices**: each pipeline run loads a slice `ds`; a request reads the latest slice unless `ds` is given.
* **Questions**: `GET /v1/trips/weekly-average` answers the weekly average of trips per day in a bounding box or a
  region; `/v1/trips/top-regions/latest-datasource` and `/v1/trips/datasources/{{datasource}}/regions` the brief's
  two questions. Trip datetimes carry no zone in the feed and are read as UTC.
* **Ingestion**: `POST /v1/trips/files` (a key with the `ingest` scope) uploads a trips CSV file and returns its
  ingestion id; `GET /v1/ingestions/{{id}}/events` and `GET /v1/ingestions/events` push its stages (SSE).
* **Errors** are `application/problem+json` (RFC 9457) with the request id; every response has `X-Request-ID`.
"""


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        schema.setdefault("components", {}).setdefault("schemas", {}).update(problems.component_schemas())
        app.openapi_schema = schema
    return app.openapi_schema


def _database_handlers(app: FastAPI) -> None:
    @app.exception_handler(MemoryQuotaExceeded)
    async def over_quota(request: Request, error: MemoryQuotaExceeded) -> Response:
        problems.log.warning("query over the database memory quota: %s", error)
        return problems.problem_response(
            request, 503, "Database busy",
            "The query needed more memory than the database allows a query (TiDB error 8175); retry later, "
            "or narrow the request (a smaller range or page).",
            kind="database-memory-quota", headers={"Retry-After": "30"},
        )  # fmt: skip

    @app.exception_handler(DatabaseUnavailable)
    async def unavailable(request: Request, error: DatabaseUnavailable) -> Response:
        problems.log.warning("database unavailable: %s", error)
        return problems.problem_response(
            request, 503, "Database unavailable", "The serving database cannot be reached; retry later.",
            kind="database-unavailable", headers={"Retry-After": "5"},
        )  # fmt: skip

    @app.exception_handler(StatementTimeout)
    async def too_slow(request: Request, error: StatementTimeout) -> Response:
        return problems.problem_response(request, 504, "Request timed out", "The query ran past its time limit.",
                                         kind="timeout")  # fmt: skip

    @app.exception_handler(TableMissing)
    async def missing(request: Request, error: TableMissing) -> Response:
        return problems.problem_response(request, 404, "Not loaded", "The dataset has not been loaded yet.",
                                         kind="not-loaded")  # fmt: skip


def create_app(
    settings: Settings | None = None, database: Database | None = None, datasets: tuple[Dataset, ...] = REGISTRY
) -> FastAPI:
    """The ASGI application (a factory: ``uvicorn --factory`` calls it once per worker).

    Args:
        settings: default ``Settings.from_env()``.
        database: default a pool built from ``settings``.
        datasets: the datasets to serve, default the registry.
    """
    settings = settings or Settings.from_env()
    configure_logging()
    if not settings.key_hashes:
        problems.log.warning("LAKEHOUSE_API_KEY_HASHES is empty: every /v1 request will get 401")
    db = database or Database(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        db.dispose()

    domains = sorted({dataset.domain for dataset in datasets})
    app = FastAPI(
        title="Lakehouse API",
        version=VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        redoc_url=None,
        dependencies=[Depends(no_repeated_query)],
        openapi_tags=[
            {"name": "catalogue", "description": "The datasets and their freshness."},
            *({"name": domain, "description": f"Gold tables of the {domain} domain."} for domain in domains),
            {"name": "health", "description": "Service health (open)."},
        ],
    )
    app.state.settings = settings
    app.state.db = db
    problems.install(app)
    _database_handlers(app)
    app.include_router(health_router())
    # The data routes need the `read` scope (every key has it unless configured otherwise); uploads `ingest`.
    secured = {"dependencies": [Depends(require_scope("read"))], "responses": problems.responses(401, 403)}
    app.include_router(catalogue_router(datasets), prefix="/v1", **secured)
    if any(dataset.name == "trips" for dataset in datasets):
        # Before the dataset routes: /v1/trips/{trip_id} would otherwise take /v1/trips/weekly-average.
        app.include_router(trips_router(), prefix="/v1", **secured)
        app.include_router(ingest_router(), prefix="/v1", responses=problems.responses(401))
    app.include_router(dataset_router(datasets, settings), prefix="/v1", **secured)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET"],
            allow_headers=[HEADER, "X-Request-ID"],
            expose_headers=["X-Request-ID"],
            max_age=600,
        )
    # Added last, so outermost: it times and logs everything, CORS preflights included.
    app.add_middleware(RequestContext, timeout_s=settings.request_timeout_s)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app
