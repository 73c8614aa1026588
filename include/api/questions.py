"""Routes for parameterised questions (beyond the registry's list and lookup routes): the weekly trip average."""

# No `from __future__ import annotations`: FastAPI reads the signatures here at run time.

import datetime as dt
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from include.api.db import Database
from include.api.problems import responses
from include.api.queries import MAX_DATE, MAX_RANGE_DAYS, MIN_DATE, BoundingBox, weekly_average_query
from include.api.query import date_json
from include.api.routes import in_thread, input_type

WEEKLY_PATH = "/trips/weekly-average"
# Midtown Manhattan, as the Metabase question's defaults; a range starting on a Wednesday.
EXAMPLE_BOX = {"min_lon": -74.0, "min_lat": 40.74, "max_lon": -73.96, "max_lat": 40.78}
EXAMPLE_RANGE = ("2026-11-04", "2026-11-15")


def _coordinate(limit: int, example: float, what: str) -> Any:
    return Field(ge=-limit, le=limit, allow_inf_nan=False, examples=[example], description=what)


def _day(alias: str, example: str, what: str) -> Any:
    return Field(alias=alias, examples=[example], description=f"{what} (YYYY-MM-DD, {MIN_DATE} to {MAX_DATE}).")


# ISO 8601 text only, as the dataset routes take dates.
IsoDate = input_type("date")


class WeeklyAverageParams(BaseModel):
    """The query parameters of the weekly average; every one is required."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    min_lon: float = _coordinate(180, EXAMPLE_BOX["min_lon"], "West edge of the box, degrees of longitude (WGS 84).")
    min_lat: float = _coordinate(90, EXAMPLE_BOX["min_lat"], "South edge of the box, degrees of latitude (WGS 84).")
    max_lon: float = _coordinate(180, EXAMPLE_BOX["max_lon"], "East edge of the box; greater than `min_lon`.")
    max_lat: float = _coordinate(90, EXAMPLE_BOX["max_lat"], "North edge of the box; greater than `min_lat`.")
    start: IsoDate = _day("from", EXAMPLE_RANGE[0], "First pickup day, included")
    end: IsoDate = _day("to", EXAMPLE_RANGE[1], "Last pickup day, included")

    @model_validator(mode="after")
    def consistent(self) -> "WeeklyAverageParams":
        problems = []
        if self.min_lon >= self.max_lon:
            problems.append("`min_lon` must be less than `max_lon`")
        if self.min_lat >= self.max_lat:
            problems.append("`min_lat` must be less than `max_lat`")
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
    """The weekly averages for one box and date range."""

    min_lon: float = Field(description="West edge of the box.", examples=[EXAMPLE_BOX["min_lon"]])
    min_lat: float = Field(description="South edge of the box.", examples=[EXAMPLE_BOX["min_lat"]])
    max_lon: float = Field(description="East edge of the box.", examples=[EXAMPLE_BOX["max_lon"]])
    max_lat: float = Field(description="North edge of the box.", examples=[EXAMPLE_BOX["max_lat"]])
    from_: dt.date = Field(alias="from", description="First pickup day, included.")
    to: dt.date = Field(description="Last pickup day, included.")
    items: list[WeekRow] = Field(description="Every ISO week overlapping the range, in order (0 trips when none).")


EXAMPLE = {
    **EXAMPLE_BOX,
    "from": EXAMPLE_RANGE[0],
    "to": EXAMPLE_RANGE[1],
    "items": [
        {"week_start": "2026-11-02", "days": 5, "trips": 37, "average_trips_per_day": 7.4},
        {"week_start": "2026-11-09", "days": 7, "trips": 70, "average_trips_per_day": 10.0},
    ],
}


def _weekly_rows(box: BoundingBox, start: dt.date, end: dt.date, cur: Any) -> list[tuple]:
    sql, params = weekly_average_query(box, start, end)
    cur.execute(sql, params)
    return list(cur.fetchall())


def trips_router() -> APIRouter:
    """``GET /trips/weekly-average``: the weekly average of trips per day in a bounding box."""
    router = APIRouter(tags=["trips"])

    @router.get(
        WEEKLY_PATH,
        operation_id="trips_weekly_average",
        summary="Weekly average of trips per day in a bounding box",
        description=(
            "Trips whose pickup point lies in the box (edges included) and whose pickup day lies in [`from`, `to`], "
            "over every loaded slice: one row per ISO week (starting Monday) overlapping the range, with the days "
            "of that week inside the range, the trips, and the average trips per day (`trips / days`, so a "
            "partial first or last week is averaged over its own days). Weeks without trips are rows with 0. "
            f"The range may span at most {MAX_RANGE_DAYS} days."
        ),
        response_model=WeeklyAverage,
        responses={200: {"content": {"application/json": {"example": EXAMPLE}}}, **responses(401, 404, 422, 503, 504)},
    )
    async def weekly_average(request: Request, params: Annotated[WeeklyAverageParams, Query()]) -> Response:
        box = BoundingBox(params.min_lon, params.min_lat, params.max_lon, params.max_lat)
        db: Database = request.app.state.db
        rows = await in_thread(partial(db.run, partial(_weekly_rows, box, params.start, params.end)))
        items = [
            {"week_start": date_json(week), "days": int(days), "trips": int(trips), "average_trips_per_day": float(avg)}
            for week, days, trips, avg in rows
        ]
        body = {
            "min_lon": box.min_lon,
            "min_lat": box.min_lat,
            "max_lon": box.max_lon,
            "max_lat": box.max_lat,
            "from": params.start.isoformat(),
            "to": params.end.isoformat(),
            "items": items,
        }
        return JSONResponse(body)

    return router
