"""Routes for parameterised questions beyond the registry's routes: the weekly trip average and the brief's two."""

# No `from __future__ import annotations`: FastAPI reads the signatures here at run time.

import datetime as dt
import math
import re
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from include.api.db import Database
from include.api.problems import responses
from include.api.queries import (
    DATASOURCE_REGIONS_SQL,
    MAX_DATE,
    MAX_RANGE_DAYS,
    MIN_DATE,
    TOP_REGIONS_LATEST_DATASOURCE_SQL,
    BoundingBox,
    Region,
    weekly_average_query,
    weekly_rows,
)
from include.api.query import date_json, datetime_json
from include.api.routes import in_thread, input_type

WEEKLY_PATH = "/trips/weekly-average"
TOP_REGIONS_PATH = "/trips/top-regions/latest-datasource"
DATASOURCE_REGIONS_PATH = "/trips/datasources/{datasource}/regions"
# Central Prague, as the Metabase question's defaults; a range starting on a Wednesday.
EXAMPLE_BOX = (14.40, 50.05, 14.46, 50.10)
EXAMPLE_RANGE = ("2026-11-04", "2026-11-15")
# What a region or datasource may be (the feed's names: letters, digits, spaces and a few marks).
NAME = r"^[^\x00-\x1f]{1,100}$"
UTC_NOTE = "The feed's datetimes carry no zone and are read as UTC, so a day and an ISO week are UTC days and weeks."


def _day(alias: str, example: str, what: str) -> Any:
    return Field(
        alias=alias,
        examples=[example],
        description=f"{what} (YYYY-MM-DD, {MIN_DATE} to {MAX_DATE}).",
        json_schema_extra={"pattern": DAY_PATTERN},
    )


# ISO 8601 text only, as the dataset routes take dates.
IsoDate = input_type("date")


# What the schema states of `bbox` (and parse_bbox enforces): four decimal numbers in range, no exponent or `+`.
_LON = r"-?(?:180(?:\.0+)?|(?:1[0-7][0-9]|[1-9]?[0-9])(?:\.[0-9]+)?)"
_LAT = r"-?(?:90(?:\.0+)?|[1-8]?[0-9](?:\.[0-9]+)?)"
BBOX_PATTERN = rf"^{_LON},{_LAT},{_LON},{_LAT}$"
# The days a weekly average may ask for, as the schema states them.
DAY_PATTERN = r"^(?:19[0-9]{2}|2[0-9]{3})-[0-9]{2}-[0-9]{2}$"


# What WeeklyAverageParams.consistent refuses across parameters (or within `bbox`), documented with the 422.
WEEKLY_REFUSED = (
    "both or neither of `bbox` and `region`",
    "a `bbox` whose min_lon is not below its max_lon, or min_lat not below max_lat",
    f"`from` after `to`, or `to` more than {MAX_RANGE_DAYS} days after `from`",
)


def parse_bbox(text: str) -> BoundingBox:
    """``min_lon,min_lat,max_lon,max_lat`` (WGS 84 degrees) -> a box; ``ValueError`` naming what is wrong."""
    parts = text.split(",")
    if len(parts) != 4:
        raise ValueError("`bbox` must be four numbers: min_lon,min_lat,max_lon,max_lat")
    try:
        min_lon, min_lat, max_lon, max_lat = (float(p) for p in parts)
    except ValueError:
        raise ValueError("`bbox` must be four numbers: min_lon,min_lat,max_lon,max_lat") from None
    if not all(math.isfinite(v) for v in (min_lon, min_lat, max_lon, max_lat)):
        raise ValueError("`bbox` values must be finite numbers")
    problems = []
    if not (-180 <= min_lon <= 180 and -180 <= max_lon <= 180 and -90 <= min_lat <= 90 and -90 <= max_lat <= 90):
        problems.append("`bbox` longitudes must lie in -180..180 and latitudes in -90..90")
    if min_lon >= max_lon:
        problems.append("`bbox` needs min_lon < max_lon")
    if min_lat >= max_lat:
        problems.append("`bbox` needs min_lat < max_lat")
    if not problems and not re.match(BBOX_PATTERN, text):
        problems.append("`bbox` numbers must be plain decimals (no exponent, `+`, spaces or leading zeros)")
    if problems:
        raise ValueError("; ".join(problems))
    return BoundingBox(min_lon, min_lat, max_lon, max_lat)


class WeeklyAverageParams(BaseModel):
    """The query parameters of the weekly average: ``bbox`` or ``region`` (one of them), ``from`` and ``to``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    bbox: str | None = Field(
        default=None,
        max_length=200,
        json_schema_extra={"pattern": BBOX_PATTERN},
        examples=[",".join(map(str, EXAMPLE_BOX))],
        description="The area as `min_lon,min_lat,max_lon,max_lat` (WGS 84 degrees, edges included, each min below "
        "its max): trips whose origin lies in it. Give `bbox` or `region`, not both.",
    )
    region: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=NAME,
        examples=["Prague"],
        description="The area as a region, exactly as the feed names it. Give `bbox` or `region`, not both.",
    )
    start: IsoDate = _day("from", EXAMPLE_RANGE[0], "First day, included, at or before `to`")
    end: IsoDate = _day("to", EXAMPLE_RANGE[1], f"Last day, included, at most {MAX_RANGE_DAYS} days after `from`")

    def area(self) -> BoundingBox | Region:
        return Region(self.region) if self.region is not None else parse_bbox(self.bbox or "")

    @model_validator(mode="after")
    def consistent(self) -> "WeeklyAverageParams":
        problems = []
        if (self.bbox is None) == (self.region is None):
            problems.append("give exactly one of `bbox` and `region`")
        elif self.bbox is not None:
            try:
                parse_bbox(self.bbox)
            except ValueError as exc:
                problems.append(str(exc))
        if not (MIN_DATE <= self.start <= MAX_DATE and MIN_DATE <= self.end <= MAX_DATE):
            problems.append(f"`from` and `to` must be between {MIN_DATE} and {MAX_DATE}")
        if self.start > self.end:
            problems.append("`from` must be at or before `to`")
        elif (self.end - self.start).days > MAX_RANGE_DAYS:
            problems.append(f"`to` must be at most {MAX_RANGE_DAYS} days after `from`")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class WeekRow(BaseModel):
    """One ISO week overlapping the range."""

    week_start: dt.date = Field(description="The Monday starting the week.", examples=["2026-11-02"])
    days: int = Field(description="Days of the week inside [from, to] (1 to 7).", examples=[5])
    trips: int = Field(description="Trips picked up in the box on those days.", examples=[37])
    average_trips_per_day: float = Field(description="`trips / days`, rounded to 4 decimals.", examples=[7.4])


class WeeklyAverage(BaseModel):
    """The weekly averages for one area and date range."""

    bbox: list[float] | None = Field(description="The box asked for, `[min_lon, min_lat, max_lon, max_lat]`.")
    region: str | None = Field(description="The region asked for.")
    from_: dt.date = Field(alias="from", description="First day, included.")
    to: dt.date = Field(description="Last day, included.")
    items: list[WeekRow] = Field(description="Every ISO week overlapping the range, in order (0 trips when none).")


EXAMPLE = {
    "bbox": list(EXAMPLE_BOX),
    "region": None,
    "from": EXAMPLE_RANGE[0],
    "to": EXAMPLE_RANGE[1],
    "items": [
        {"week_start": "2026-11-02", "days": 5, "trips": 37, "average_trips_per_day": 7.4},
        {"week_start": "2026-11-09", "days": 7, "trips": 70, "average_trips_per_day": 10.0},
    ],
}


class RegionLatestDatasource(BaseModel):
    """One of the two regions with the most trips, and the datasource of its latest trip."""

    region: str = Field(examples=["Prague"])
    trips: int = Field(description="Trips of the region.", examples=[5120])
    latest_datasource: str = Field(description="The datasource of the region's latest trip.", examples=["baba_car"])
    latest_at: dt.datetime = Field(description="When that trip happened (UTC).", examples=["2026-11-22T23:58:10Z"])


class TopRegions(BaseModel):
    """From the two most commonly appearing regions, the latest datasource (of each; the first is the larger)."""

    items: list[RegionLatestDatasource]


class DatasourceRegion(BaseModel):
    """A region a datasource appeared in."""

    region: str = Field(examples=["Prague"])
    trips: int = Field(description="Trips of the datasource in the region.", examples=[812])
    first_seen: dt.datetime = Field(description="Its first trip there (UTC).", examples=["2026-11-16T00:03:00Z"])
    last_seen: dt.datetime = Field(description="Its latest trip there (UTC).", examples=["2026-11-22T23:41:00Z"])


class DatasourceRegions(BaseModel):
    """The regions a datasource appeared in, by name (none: an empty list)."""

    datasource: str
    items: list[DatasourceRegion]


TOP_EXAMPLE = {
    "items": [
        {"region": "Prague", "trips": 5120, "latest_datasource": "cheap_mobile", "latest_at": "2026-11-22T23:58:10Z"},
        {"region": "Hamburg", "trips": 4080, "latest_datasource": "funny_car", "latest_at": "2026-11-22T23:51:02Z"},
    ]
}
DATASOURCE_EXAMPLE = {
    "datasource": "cheap_mobile",
    "items": [
        {"region": "Hamburg", "trips": 1210, "first_seen": "2026-11-16T00:07:41Z", "last_seen": "2026-11-22T23:40:00Z"},
        {"region": "Prague", "trips": 1533, "first_seen": "2026-11-16T00:01:12Z", "last_seen": "2026-11-22T23:58:10Z"},
    ],
}


def _rows(sql: str, params: dict, cur: Any) -> list[tuple]:
    cur.execute(sql, params)
    return list(cur.fetchall())


def trips_router() -> APIRouter:
    """The trips questions: the weekly average for a box or a region, and the brief's two SQL questions."""
    router = APIRouter(tags=["trips"])

    @router.get(
        WEEKLY_PATH,
        operation_id="trips_weekly_average",
        summary="Weekly average of trips per day in a bounding box or a region",
        description=(
            "Trips whose origin lies in `bbox` (edges included), or whose region is `region`, and whose day lies "
            "in [`from`, `to`], over every loaded slice: one row per ISO week (starting Monday) overlapping the "
            "range, with the days of that week inside the range, the trips, and the average trips per day "
            "(`trips / days`, so a partial first or last week is averaged over its own days). Weeks without trips "
            f"are rows with 0. The range may span at most {MAX_RANGE_DAYS} days. {UTC_NOTE}"
        ),
        response_model=WeeklyAverage,
        responses={
            200: {"content": {"application/json": {"example": EXAMPLE}}},
            **responses(401, 404, 422, 503, 504, refused=WEEKLY_REFUSED),
        },
    )
    async def weekly_average(request: Request, params: Annotated[WeeklyAverageParams, Query()]) -> Response:
        area = params.area()
        db: Database = request.app.state.db
        sql, bound = weekly_average_query(area, params.start, params.end)
        days = await in_thread(partial(db.run, partial(_rows, sql, bound)))
        items = [
            {"week_start": date_json(week), "days": n, "trips": trips, "average_trips_per_day": float(average)}
            for week, n, trips, average in weekly_rows(days, params.start, params.end)
        ]
        box = None if isinstance(area, Region) else [area.min_lon, area.min_lat, area.max_lon, area.max_lat]
        body = {
            "bbox": box,
            "region": area.name if isinstance(area, Region) else None,
            "from": params.start.isoformat(),
            "to": params.end.isoformat(),
            "items": items,
        }
        return JSONResponse(body)

    @router.get(
        TOP_REGIONS_PATH,
        operation_id="trips_top_regions_latest_datasource",
        summary="From the two most commonly appearing regions, the latest datasource",
        description=(
            "The two regions with the most trips (ties by name), each with the datasource of its latest trip "
            f"(ties by datasource name), over every loaded slice. {UTC_NOTE}"
        ),
        response_model=TopRegions,
        responses={200: {"content": {"application/json": {"example": TOP_EXAMPLE}}}, **responses(401, 404, 503, 504)},
    )
    async def top_regions(request: Request) -> Response:
        db: Database = request.app.state.db
        rows = await in_thread(partial(db.run, partial(_rows, TOP_REGIONS_LATEST_DATASOURCE_SQL, {})))
        items = [
            {"region": r, "trips": int(n), "latest_datasource": source, "latest_at": datetime_json(at)}
            for r, n, source, at in rows
        ]
        return JSONResponse({"items": items})

    @router.get(
        DATASOURCE_REGIONS_PATH,
        operation_id="trips_datasource_regions",
        summary="The regions a datasource has appeared in",
        description=(
            "Every region with at least one trip of the datasource (exact name, e.g. `cheap_mobile`), by name, "
            f"with its trips and first and last trip there. An unknown datasource has no regions. {UTC_NOTE}"
        ),
        response_model=DatasourceRegions,
        responses={
            200: {"content": {"application/json": {"example": DATASOURCE_EXAMPLE}}},
            **responses(401, 404, 422, 503, 504),
        },
    )
    async def datasource_regions(
        request: Request,
        datasource: Annotated[
            str,
            Path(
                min_length=1,
                max_length=100,
                pattern=NAME,
                examples=["cheap_mobile"],
                description="The datasource, exactly as the feed names it.",
            ),
        ],
    ) -> Response:
        db: Database = request.app.state.db
        rows = await in_thread(partial(db.run, partial(_rows, DATASOURCE_REGIONS_SQL, {"datasource": datasource})))
        items = [
            {"region": r, "trips": int(n), "first_seen": datetime_json(first), "last_seen": datetime_json(last)}
            for r, n, first, last in rows
        ]
        return JSONResponse({"datasource": datasource, "items": items})

    return router
