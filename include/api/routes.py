"""Routes generated from the dataset registry: a list route and a lookup route per dataset, the catalogue, health."""

# No `from __future__ import annotations`: FastAPI reads the signatures built here at run time.

import dataclasses
import datetime as dt
import inspect
import re
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_validator

from include.api.config import Settings
from include.api.datasets import PYTHON_TYPES, Column, Contains, Dataset, Equals, Range
from include.api.db import Database, TableMissing
from include.api.problems import ApiError, responses
from include.api.query import (
    LOAD_LOG,
    CursorError,
    PageQuery,
    as_date,
    date_json,
    datetime_json,
    decode_cursor,
    encode_cursor,
    ident,
    latest_slice_sql,
    lookup_sql,
    page_sql,
    row_encoder,
    slice_exists_sql,
)

DS_DESCRIPTION = "The slice to read (a pipeline run's data date, YYYY-MM-DD); by default the latest loaded one."
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,1024}$"


class SliceNotLoaded(ApiError):
    """The dataset has no loaded slice (or not the requested one)."""

    def __init__(self, dataset: Dataset, ds: dt.date | None) -> None:
        what = f"slice ds={ds}" if ds else "slice"
        super().__init__(404, "Not loaded", f"Dataset {dataset.name} has no {what} loaded yet.", kind="not-loaded")


async def in_thread(fn: Callable[[], Any]) -> Any:
    """Blocking database work off the event loop; abandoned (not awaited) if the request times out."""
    return await anyio.to_thread.run_sync(fn, abandon_on_cancel=True)


def to_utc_naive(value: dt.datetime) -> dt.datetime:
    """A timestamp as the naive UTC the loader stores (no offset = UTC already)."""
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    except OverflowError as error:
        raise ValueError("timestamp out of range once converted to UTC") from error


def only_query(*names: str) -> Callable[..., Any]:
    """A dependency refusing query parameters other than ``names`` (list routes refuse them in their model)."""
    allowed = frozenset(names)

    async def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            detail = "; ".join(f"query parameter '{name}': Extra inputs are not permitted" for name in unknown)
            raise ApiError(422, "Invalid request", detail, kind="validation")

    return check


async def no_repeated_query(request: Request) -> None:
    """Every query parameter is single-valued: a repeated one is refused, not silently reduced to one value."""
    keys = [key for key, _ in request.query_params.multi_items()]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        detail = "; ".join(f"query parameter '{name}': given more than once" for name in repeated)
        raise ApiError(422, "Invalid request", detail, kind="validation")


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$")


def _iso(pattern: re.Pattern, what: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        # Pydantic would also take numbers as Unix times; the API takes ISO 8601 text only.
        if isinstance(value, str) and not pattern.match(value):
            raise ValueError(f"expected an ISO 8601 {what}")
        return value

    return check


# Dates and timestamps as the API accepts them: ISO 8601 text, timestamps converted to naive UTC.
ISO_TYPES: dict[str, Any] = {
    "date": Annotated[dt.date, BeforeValidator(_iso(_ISO_DATE, "date (YYYY-MM-DD)"))],
    "datetime": Annotated[
        dt.datetime,
        BeforeValidator(_iso(_ISO_DATETIME, "date-time (YYYY-MM-DDTHH:MM[:SS][Z|±HH:MM])")),
        AfterValidator(lambda value: to_utc_naive(value)),
    ],
}


def input_type(kind: str) -> Any:
    """The pydantic type of a parameter for a column type."""
    return ISO_TYPES.get(kind, PYTHON_TYPES[kind])


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


# --- models ------------------------------------------------------------------------------------------------------


def _column_field(column: Column) -> tuple[Any, Any]:
    kind: Any = PYTHON_TYPES[column.type]
    if column.nullable:
        kind = kind | None
    return kind, Field(description=column.description, examples=[column.example])


def row_model(dataset: Dataset) -> type[BaseModel]:
    """The JSON object of one row (documentation only: responses are encoded directly)."""
    fields = {column.name: _column_field(column) for column in dataset.columns}
    return create_model(f"{_camel(dataset.name)}Row", __doc__=dataset.description, **fields)


def page_model(dataset: Dataset, row: type[BaseModel]) -> type[BaseModel]:
    """The JSON object of one page."""
    return create_model(
        f"{_camel(dataset.name)}Page",
        __doc__=f"A page of {dataset.name}, in a stable order; follow next_cursor for the next page.",
        dataset=(str, Field(description="The dataset's name.", examples=[dataset.name])),
        ds=(dt.date | None, Field(description="The slice read (null for datasets read across slices).")),
        limit=(int, Field(description="The page size asked for.", examples=[100])),
        items=(list[row], Field(description="The rows of this page.")),
        next_cursor=(
            str | None,
            Field(description="Pass as `cursor` to get the next page; null on the last page.", examples=[None]),
        ),
    )


def _range_fields(dataset: Dataset, item: Range) -> dict[str, Any]:
    column = dataset.column_map[item.column]
    kind: Any = input_type(column.type)
    extra = {"allow_inf_nan": False} if column.type == "float" else {}
    upper_rule = "included" if item.upper_inclusive else "excluded"
    order = "at or before" if item.upper_inclusive else "before"
    return {
        f"p_{item.lower}": (
            kind | None,
            Field(None, alias=item.lower, examples=[item.examples[0]], **extra,
                  description=f"{item.description} Lower bound, included; {order} `{item.upper}` when both are given."),
        ),
        f"p_{item.upper}": (
            kind | None,
            Field(None, alias=item.upper, description=f"{item.description} Upper bound, {upper_rule}.",
                  examples=[item.examples[1]], **extra),
        ),
    }  # fmt: skip


def _text_field(item: Equals | Contains) -> dict[str, Any]:
    constraints: dict[str, Any] = {"max_length": item.max_length, "min_length": 1}
    if isinstance(item, Equals):
        constraints["pattern"] = item.pattern
    field = Field(None, alias=item.param, description=item.description, examples=[item.example], **constraints)
    return {f"p_{item.param}": (str | None, field)}


def params_model(dataset: Dataset, settings: Settings) -> type[BaseModel]:
    """The query parameters of the list route, validated by pydantic (unknown parameters are refused)."""
    fields: dict[str, Any] = {}
    if dataset.snapshot:
        fields["ds"] = (input_type("date") | None, Field(None, description=DS_DESCRIPTION, examples=["2026-11-20"]))
    for item in dataset.filters:
        fields.update(_range_fields(dataset, item) if isinstance(item, Range) else _text_field(item))
    fields["limit"] = (
        int,
        Field(settings.default_page_size, ge=1, le=settings.max_page_size, examples=[100],
              description=f"Rows a page, at most {settings.max_page_size}."),
    )  # fmt: skip
    fields["cursor"] = (
        str | None,
        Field(
            None,
            pattern=CURSOR_PATTERN,
            description="`next_cursor` of the previous page (opaque), with the same filters and `ds`: any other is "
            "refused with a 422.",
        ),
    )

    def bounds_in_order(self: BaseModel) -> BaseModel:
        return _check_ranges(dataset, self)

    validators: dict[str, Any] = {"bounds_in_order": model_validator(mode="after")(bounds_in_order)}
    return create_model(
        f"{_camel(dataset.name)}Params",
        __config__=ConfigDict(extra="forbid", populate_by_name=False),
        __validators__=validators,
        **fields,
    )


def _check_ranges(dataset: Dataset, params: BaseModel) -> BaseModel:
    for item in dataset.filters:
        if not isinstance(item, Range):
            continue
        lower, upper = getattr(params, f"p_{item.lower}"), getattr(params, f"p_{item.upper}")
        if lower is None or upper is None:
            continue
        if lower > upper or (lower == upper and not item.upper_inclusive):
            relation = "at or before" if item.upper_inclusive else "before"
            raise ValueError(f"`{item.lower}` must be {relation} `{item.upper}`")
    return params


def _example_page(dataset: Dataset) -> dict[str, Any]:
    row = {column.name: column.example for column in dataset.columns}
    return {"dataset": dataset.name, "ds": "2026-11-20", "limit": 100, "items": [row], "next_cursor": None}


# --- list and lookup ---------------------------------------------------------------------------------------------


def _page(query: PageQuery, cur: Any) -> tuple[PageQuery, list[tuple]]:
    dataset = query.dataset
    if dataset.snapshot and query.after is None:
        if query.ds is None:
            cur.execute(latest_slice_sql(), (dataset.name,))
        else:
            cur.execute(slice_exists_sql(), (dataset.name, query.ds))
        found = cur.fetchone()
        if found is None:
            raise SliceNotLoaded(dataset, query.ds)
        query = dataclasses.replace(query, ds=as_date(found[0]))
    sql, args = page_sql(query)
    cur.execute(sql, args)
    return query, list(cur.fetchall())


def _lookup(dataset: Dataset, ds: dt.date | None, key: Any, cur: Any) -> tuple[dt.date | None, tuple | None]:
    if ds is None and dataset.snapshot:
        cur.execute(latest_slice_sql(), (dataset.name,))
        found = cur.fetchone()
        if found is None:
            raise SliceNotLoaded(dataset, None)
        ds = as_date(found[0])
    sql, args = lookup_sql(dataset, ds, key)
    cur.execute(sql, args)
    return ds, cur.fetchone()


def _signature(*parameters: inspect.Parameter) -> inspect.Signature:
    return inspect.Signature([inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                annotation=Request), *parameters])  # fmt: skip


def list_endpoint(dataset: Dataset, params: type[BaseModel]) -> Callable[..., Any]:
    """The list route's function for ``dataset``."""
    encode = row_encoder(dataset)
    names = [name for name in params.model_fields if name.startswith("p_")]

    async def endpoint(request: Request, params: BaseModel) -> Response:
        filters = {name[2:]: getattr(params, name) for name in names}
        query = PageQuery(dataset, filters, params.limit, getattr(params, "ds", None))
        if params.cursor is not None:
            try:
                query = decode_cursor(query, params.cursor)
            except CursorError as error:
                raise ApiError(422, "Invalid cursor", str(error), kind="invalid-cursor") from error
        db: Database = request.app.state.db
        query, rows = await in_thread(partial(db.run, partial(_page, query)))
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        body = {
            "dataset": dataset.name,
            "ds": query.ds.isoformat() if query.ds else None,
            "limit": query.limit,
            "items": [encode(row) for row in rows],
            "next_cursor": encode_cursor(query, rows[-1]) if more else None,
        }
        return JSONResponse(body)

    parameter = inspect.Parameter(
        "params", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[params, Query()]
    )
    endpoint.__signature__ = _signature(parameter)  # type: ignore[attr-defined]
    return endpoint


def lookup_endpoint(dataset: Dataset) -> Callable[..., Any]:
    """The lookup route's function for ``dataset`` (its ``key`` column as the path parameter)."""
    encode = row_encoder(dataset)
    column = dataset.column_map[dataset.key or ""]

    async def endpoint(request: Request, **kwargs: Any) -> Response:
        key, ds = kwargs[column.name], kwargs.get("ds")
        if isinstance(key, dt.datetime):
            try:
                key = to_utc_naive(key)
            except ValueError as error:
                raise ApiError(422, "Invalid request", f"path parameter '{column.name}': {error}",
                               kind="validation") from error  # fmt: skip
        db: Database = request.app.state.db
        ds, row = await in_thread(partial(db.run, partial(_lookup, dataset, ds, key)))
        if row is None:
            where = f" in slice ds={ds}" if ds else ""
            detail = f"No {dataset.name} row with {column.name}={kwargs[column.name]}{where}."
            raise ApiError(404, "Not found", detail, kind="not-found")
        return JSONResponse(encode(row))

    path_constraints = {"pattern": dataset.key_pattern, "max_length": 255} if column.type == "str" else {}
    if column.type == "float":
        path_constraints["allow_inf_nan"] = False
    key = inspect.Parameter(
        column.name,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[
            input_type(column.type),
            Path(description=f"{column.description} The row's key.", examples=[column.example], **path_constraints),
        ],
    )
    ds = inspect.Parameter(
        "ds",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[input_type("date") | None, Query(description=DS_DESCRIPTION, examples=["2026-11-20"])],
    )
    endpoint.__signature__ = _signature(key, *([ds] if dataset.snapshot else []))  # type: ignore[attr-defined]
    return endpoint


def _add_list_route(router: APIRouter, dataset: Dataset, settings: Settings, row: type[BaseModel]) -> None:
    params = params_model(dataset, settings)
    page = page_model(dataset, row)
    order = ", ".join(f"{name} {direction}" for name, direction in dataset.page_key)
    router.add_api_route(
        f"/{dataset.path}",
        list_endpoint(dataset, params),
        methods=["GET"],
        name=f"list_{dataset.name}",
        operation_id=f"list_{dataset.name}",
        tags=[dataset.domain],
        summary=dataset.summary,
        description=(
            f"{dataset.description}\n\nRows come in a stable order ({order}), `limit` a page; follow "
            "`next_cursor` (keyset pagination: deep pages are as fast as the first). "
            + ("One slice is read: `ds`, or the latest loaded." if dataset.snapshot else "")
        ),
        response_model=page,
        responses={
            200: {"content": {"application/json": {"example": _example_page(dataset)}}},
            **responses(401, 404, 422, 503, 504, refused=refused_combinations(dataset)),
        },
    )


def refused_combinations(dataset: Dataset) -> tuple[str, ...]:
    """What the list route refuses across its parameters (documented with its 422), as ``_check_ranges`` does."""
    bounds = tuple(
        f"`{item.lower}` after `{item.upper}`" if item.upper_inclusive else f"`{item.lower}` not before `{item.upper}`"
        for item in dataset.filters
        if isinstance(item, Range)
    )
    return (*bounds, "a `cursor` that is not the `next_cursor` of a page of the same query (dataset, filters, slice)")


def _add_lookup_route(router: APIRouter, dataset: Dataset, row: type[BaseModel]) -> None:
    router.add_api_route(
        f"/{dataset.path}/{{{dataset.key}}}",
        lookup_endpoint(dataset),
        methods=["GET"],
        name=f"get_{dataset.name}",
        operation_id=f"get_{dataset.name}",
        tags=[dataset.domain],
        summary=f"{dataset.summary}: one row by {dataset.key}",
        description=f"The row of {dataset.name} whose `{dataset.key}` is given, "
        + ("in slice `ds` (default: the latest loaded)." if dataset.snapshot else "from its newest slice."),
        response_model=row,
        dependencies=[Depends(only_query(*(["ds"] if dataset.snapshot else [])))],
        responses={
            200: {"content": {"application/json": {"example": _example_page(dataset)["items"][0]}}},
            **responses(401, 404, 422, 503, 504),
        },
    )


def dataset_router(datasets: tuple[Dataset, ...], settings: Settings) -> APIRouter:
    """A list route for each dataset, and a lookup route for those with a key.

    Every list route comes first, so a fixed path (``/products/by-category``) wins over a lookup path
    (``/products/{product_id}``) that would also match it.
    """
    router = APIRouter()
    rows = {dataset.name: row_model(dataset) for dataset in datasets}
    for dataset in datasets:
        _add_list_route(router, dataset, settings, rows[dataset.name])
    for dataset in datasets:
        if dataset.key:
            _add_lookup_route(router, dataset, rows[dataset.name])
    return router


# --- catalogue ---------------------------------------------------------------------------------------------------


class ColumnInfo(BaseModel):
    """A column of a dataset."""

    name: str = Field(examples=["hour_start"])
    type: str = Field(description="date, datetime (UTC, ISO 8601 with Z), int, float, str or bool.")
    description: str
    nullable: bool


class FilterInfo(BaseModel):
    """A query parameter of a dataset's list route."""

    param: str = Field(examples=["start"])
    column: str = Field(examples=["hour_start"])
    kind: str = Field(description="lower bound, upper bound, equals or contains.", examples=["lower bound"])
    description: str


class Freshness(BaseModel):
    """What the load-log says about a dataset."""

    latest_ds: dt.date = Field(description="The newest loaded slice.", examples=["2026-11-20"])
    latest_ds_loaded_at: dt.datetime = Field(description="When the newest slice was loaded (UTC).")
    latest_ds_rows: int = Field(description="Rows in the newest slice.", examples=[744])
    last_loaded_at: dt.datetime = Field(description="The most recent load of any slice (UTC).")
    slices: int = Field(description="Number of loaded slices.", examples=[1])


class DatasetInfo(BaseModel):
    """A dataset in the catalogue."""

    name: str = Field(examples=["tweets_per_hour"])
    domain: str = Field(examples=["tweets"])
    description: str
    url: str = Field(description="The list route.", examples=["/v1/tweets/per-hour"])
    lookup_url: str | None = Field(description="The one-row route, if any.", examples=["/v1/tweets/per-hour/{key}"])
    columns: list[ColumnInfo]
    filters: list[FilterInfo]
    order: list[str] = Field(description="The stable order of the list route.", examples=[["hour_start asc"]])
    freshness: Freshness | None = Field(description="Null until the dataset is loaded.")


class Catalogue(BaseModel):
    """Every dataset the API serves."""

    datasets: list[DatasetInfo]


def _filters_info(dataset: Dataset) -> list[dict[str, Any]]:
    out = []
    for item in dataset.filters:
        if isinstance(item, Range):
            out.append({"param": item.lower, "column": item.column, "kind": "lower bound",
                        "description": item.description})  # fmt: skip
            out.append({"param": item.upper, "column": item.column, "kind": "upper bound",
                        "description": item.description})  # fmt: skip
        else:
            kind = "equals" if isinstance(item, Equals) else "contains"
            out.append({"param": item.param, "column": item.column, "kind": kind, "description": item.description})
    return out


def static_info(dataset: Dataset) -> dict[str, Any]:
    """The catalogue entry of ``dataset`` without freshness."""
    return {
        "name": dataset.name,
        "domain": dataset.domain,
        "description": dataset.description,
        "url": f"/v1/{dataset.path}",
        "lookup_url": f"/v1/{dataset.path}/{{{dataset.key}}}" if dataset.key else None,
        "columns": [
            {"name": c.name, "type": c.type, "description": c.description, "nullable": c.nullable}
            for c in dataset.columns
        ],
        "filters": _filters_info(dataset),
        "order": [f"{name} {direction}" for name, direction in dataset.page_key],
    }


def _freshness(names: list[str], cur: Any) -> dict[str, dict[str, Any]]:
    log_table = ident(LOAD_LOG)
    marks = ", ".join(["%s"] * len(names))
    cur.execute(
        f"SELECT l.table_name, l.ds, l.loaded_at, l.`rows`, s.slices, s.last_loaded_at FROM {log_table} l"
        f" JOIN (SELECT table_name, MAX(ds) AS ds, COUNT(*) AS slices, MAX(loaded_at) AS last_loaded_at"
        f" FROM {log_table} WHERE table_name IN ({marks}) GROUP BY table_name) s"
        " ON s.table_name = l.table_name AND s.ds = l.ds",
        names,
    )
    return {
        name: {
            "latest_ds": date_json(ds),
            "latest_ds_loaded_at": datetime_json(loaded_at),
            "latest_ds_rows": int(rows),
            "last_loaded_at": datetime_json(last),
            "slices": int(slices),
        }
        for name, ds, loaded_at, rows, slices, last in cur.fetchall()
    }


async def _catalogue(request: Request, datasets: tuple[Dataset, ...]) -> list[dict[str, Any]]:
    db: Database = request.app.state.db
    try:
        fresh = await in_thread(partial(db.run, partial(_freshness, [d.name for d in datasets])))
    except TableMissing:
        fresh = {}
    return [{**static_info(d), "freshness": fresh.get(d.name)} for d in datasets]


def _fixed_route(operation_id: str, summary: str, model: type[BaseModel], errors: tuple[int, ...]) -> dict[str, Any]:
    """The keyword arguments of a route without query parameters (any given is a 422) and its documented errors.

    Its description is the endpoint's docstring.
    """
    return {
        "operation_id": operation_id,
        "summary": summary,
        "response_model": model,
        "dependencies": [Depends(only_query())],
        "responses": responses(*errors),
    }


def catalogue_router(datasets: tuple[Dataset, ...]) -> APIRouter:
    """``GET /datasets`` and ``GET /datasets/{name}``."""
    router = APIRouter(tags=["catalogue"])
    by_name = {dataset.name: dataset for dataset in datasets}

    @router.get("/datasets", **_fixed_route("list_datasets", "The catalogue", Catalogue, (401, 503, 504)))
    async def list_datasets(request: Request) -> Response:
        """Every dataset with its columns, filters, order and freshness (from the load-log)."""
        return JSONResponse({"datasets": await _catalogue(request, datasets)})

    @router.get(
        "/datasets/{name}",
        **_fixed_route("get_dataset", "One dataset of the catalogue", DatasetInfo, (401, 404, 422, 503, 504)),
    )
    async def get_dataset(
        request: Request,
        name: Annotated[str, Path(description="The dataset's name.", examples=["tweets_per_hour"], max_length=64)],
    ) -> Response:
        """A dataset's columns, filters, order and freshness."""
        dataset = by_name.get(name)
        if dataset is None:
            raise ApiError(404, "Not found", f"No dataset named {name!r}; see /v1/datasets.", kind="not-found")
        return JSONResponse((await _catalogue(request, (dataset,)))[0])

    return router


class Health(BaseModel):
    """The service is up and reaches its database."""

    status: str = Field(examples=["ok"])
    database: str = Field(examples=["ok"])


def health_router() -> APIRouter:
    """``GET /health``: open, no key; 503 when the database cannot be reached."""
    router = APIRouter(tags=["health"])

    @router.get("/health", **_fixed_route("health", "Liveness and database reachability", Health, (422, 503, 504)))
    async def health(request: Request) -> Response:
        """Open (no API key). 200 when the API can query its database, else a 503 problem."""
        db: Database = request.app.state.db
        await in_thread(db.ping)
        return JSONResponse({"status": "ok", "database": "ok"})

    return router
