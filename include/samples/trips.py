"""Deterministic generator of NYC-like taxi-trip CSV files with impossible trips, duplicates and malformed lines."""

# A file is a header and one line per trip, ordered by pickup time as a dispatch system would export them.
# Trips start and end around real NYC hot spots (Midtown, the airports, Brooklyn...); the distance driven is the
# straight line times a street detour factor, the duration follows from a traffic speed, and the fare from the
# distance and duration (the JFK-Manhattan flat fare included); the total adds tax, surcharges, tip and tolls.
#
# Some lines are spoiled on purpose, each with a label saying how (`DEFECT_KINDS`): impossible trips (outside the
# service area, zero or negative distance, dropoff before pickup, missing coordinates...), lines of the wrong
# number of fields, and duplicates of earlier trips (byte-identical, or the same values formatted differently).
# `TripFile.lines` says what every line is, and `TripFile.describe()` sums it up.

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

LANDING_PREFIX = "trips/"
COLUMNS = (
    "pickup_datetime", "dropoff_datetime", "passenger_count", "trip_distance", "pickup_longitude", "pickup_latitude",
    "dropoff_longitude", "dropoff_latitude", "fare_amount", "total_amount",
)  # fmt: skip
HEADER = ",".join(COLUMNS)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# The service area bronze accepts: (lowest, highest) longitude and latitude.
LONGITUDE = (-74.30, -73.65)
LATITUDE = (40.45, 40.95)

# name -> (longitude, latitude, weight as a pickup or dropoff place, spread in degrees, in Manhattan)
HOT_SPOTS: dict[str, tuple[float, float, int, float, bool]] = {
    "Midtown": (-73.9855, 40.7580, 30, 0.012, True),
    "Lower Manhattan": (-74.0090, 40.7110, 12, 0.008, True),
    "Upper East Side": (-73.9590, 40.7736, 12, 0.010, True),
    "Upper West Side": (-73.9754, 40.7870, 8, 0.010, True),
    "Harlem": (-73.9465, 40.8116, 4, 0.010, True),
    "Williamsburg": (-73.9570, 40.7081, 6, 0.010, False),
    "Downtown Brooklyn": (-73.9903, 40.6928, 5, 0.010, False),
    "Park Slope": (-73.9800, 40.6710, 3, 0.008, False),
    "Long Island City": (-73.9485, 40.7447, 4, 0.008, False),
    "Astoria": (-73.9230, 40.7644, 3, 0.008, False),
    "JFK Airport": (-73.7781, 40.6413, 5, 0.006, False),
    "LaGuardia Airport": (-73.8740, 40.7769, 5, 0.004, False),
}
# Share of pickups per hour of the day (UTC stands in for local time: the feed is synthetic).
HOURLY_WEIGHTS = (3, 2, 1, 1, 1, 2, 4, 6, 7, 6, 5, 5, 6, 6, 6, 7, 7, 8, 9, 9, 8, 7, 6, 4)
PASSENGERS: dict[str, int] = {"1": 70, "2": 14, "3": 4, "4": 2, "5": 5, "6": 3, "0": 1, "": 1}
JFK_FLAT_FARE = 70.00
LOCAL_SHARE = 0.45
MILES_PER_DEGREE_LATITUDE = 69.0

# How a line is spoiled; each is one reason bronze gives (the malformed lines are `wrong_column_count`).
DEFECT_KINDS = (
    "outside_service_area", "non_positive_distance", "dropoff_before_pickup", "missing_coordinates",
    "bad_pickup_datetime", "negative_total", "bad_passenger_count",
)  # fmt: skip
MALFORMED = "wrong_column_count"
TRIP, DUPLICATE, HEADER_KIND = "trip", "duplicate", "header"
FAR_AWAY = ((-75.1652, 39.9526), (-71.0589, 42.3601), (-73.7562, 42.6526))  # Philadelphia, Boston, Albany
BAD_DATETIMES = ("2026-13-01 10:00:00", "", "2026/11/01 10:00", "2026-11-31 08:15:00", "yesterday")
BAD_PASSENGERS = ("-1", "12", "two")


@dataclass(frozen=True)
class TripOptions:
    """Shape of a generated file.

    Attributes:
        start: pickups fall within ``[start, start + days)`` (UTC).
        days: days covered by the file.
        bad_ratio: share of lines that are impossible trips (one of ``DEFECT_KINDS`` each, in turn).
        duplicate_ratio: share of lines that repeat an earlier trip of the file.
        malformed_ratio: share of lines with the wrong number of fields.
    """

    start: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    days: int = 1
    bad_ratio: float = 0.04
    duplicate_ratio: float = 0.02
    malformed_ratio: float = 0.005


@dataclass(frozen=True)
class TripLine:
    """One line of a generated file: its 1-based number, its text (no newline) and what it is.

    ``kind`` is ``header``, ``trip``, ``duplicate`` (of line ``duplicate_of``), ``wrong_column_count`` or one of
    ``DEFECT_KINDS``.
    """

    number: int
    text: str
    kind: str
    duplicate_of: int | None = None


@dataclass(frozen=True)
class TripFile:
    """A generated file: its name and every line, header first."""

    name: str
    lines: tuple[TripLine, ...]

    @property
    def content(self) -> bytes:
        """The file's bytes: the lines, each ending with a newline."""
        return "".join(line.text + "\n" for line in self.lines).encode("utf-8")

    def describe(self) -> dict[str, Any]:
        """What the file holds: its size, and how many lines of each kind (the header is one of the lines)."""
        kinds = Counter(line.kind for line in self.lines)
        trips = [line for line in self.lines if line.kind == TRIP]
        days = sorted({line.text[:10] for line in trips})
        return {
            "name": self.name,
            "bytes": len(self.content),
            "lines": len(self.lines),
            "trips": kinds[TRIP],
            "duplicates": kinds[DUPLICATE],
            "defects": {kind: kinds[kind] for kind in (*DEFECT_KINDS, MALFORMED) if kinds[kind]},
            "pickup_days": days,
        }

    def write(self, folder: str | Path) -> Path:
        """Write the file into ``folder`` (created when missing); returns its path."""
        path = Path(folder) / self.name
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        partial.write_bytes(self.content)
        partial.replace(path)  # a reader never sees half a file
        return path


@dataclass
class _Trip:
    pickup: datetime
    dropoff: datetime
    passengers: str
    distance: float
    pickup_point: tuple[float, float]
    dropoff_point: tuple[float, float]
    fare: float
    total: float

    def fields(self, compact: bool = False) -> list[str]:
        """The CSV fields; ``compact`` drops trailing zeros (the same values, formatted differently)."""
        number = _compact if compact else (lambda value, places: f"{value:.{places}f}")
        return [
            self.pickup.strftime(TIME_FORMAT),
            self.dropoff.strftime(TIME_FORMAT),
            self.passengers,
            number(self.distance, 2),
            number(self.pickup_point[0], 6),
            number(self.pickup_point[1], 6),
            number(self.dropoff_point[0], 6),
            number(self.dropoff_point[1], 6),
            number(self.fare, 2),
            number(self.total, 2),
        ]


def _compact(value: float, places: int) -> str:
    text = f"{value:.{places}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def default_name(seed: int, options: TripOptions | None = None) -> str:
    """``trips_<start day>_<seed>.csv``: one name per seed, sorting by the day the trips start."""
    opts = options or TripOptions()
    return f"trips_{opts.start:%Y%m%d}_{seed}.csv"


def generate_trip_file(
    rows: int, seed: int = 7, options: TripOptions | None = None, name: str | None = None
) -> TripFile:
    """Generate a file of ``rows`` lines after the header; the same arguments give the same bytes.

    Args:
        rows: data lines (trips, duplicates, impossible trips and malformed lines together).
        seed: seed of the random generator.
        options: time range and defect ratios; defaults to ``TripOptions()``.
        name: the file name; default ``default_name(seed, options)``.

    Raises:
        ValueError: on a negative size or out-of-range options.
    """
    opts = options or TripOptions()
    counts = _counts(rows, opts)
    rng = random.Random(f"trips-{seed}")
    trips = sorted((_trip(rng, opts) for _ in range(counts[TRIP] + counts["bad"])), key=lambda t: t.pickup)
    bad_positions = set(rng.sample(range(len(trips)), counts["bad"]))
    body: list[tuple[str, str]] = []  # (text, kind)
    defect = 0
    for index, trip in enumerate(trips):
        if index in bad_positions:
            kind = DEFECT_KINDS[defect % len(DEFECT_KINDS)]
            body.append((",".join(_spoil(trip, kind, defect)), kind))
            defect += 1
        else:
            body.append((",".join(trip.fields()), TRIP))
    for n in range(counts[DUPLICATE]):
        source = rng.choice([i for i, (_, kind) in enumerate(body) if kind == TRIP])
        # Every other copy formats the same values differently ("2.30" -> "2.3"): still the same trip.
        text = body[source][0] if n % 2 == 0 else ",".join(_parse_fields(body[source][0], compact=True))
        body.insert(rng.randint(source + 1, len(body)), (text, DUPLICATE))
    for n in range(counts[MALFORMED]):
        body.insert(rng.randrange(len(body) + 1), (_malformed(body, rng, n), MALFORMED))
    return TripFile(name or default_name(seed, opts), _number_lines(body))


def _number_lines(body: list[tuple[str, str]]) -> tuple[TripLine, ...]:
    """Number the lines (the header is line 1) and point duplicates at their original's line."""
    lines = [TripLine(1, HEADER, HEADER_KIND)]
    first_line: dict[str, int] = {}
    for number, (text, kind) in enumerate(body, start=2):
        original = None
        if kind == DUPLICATE:
            original = first_line[_key(text)]
        elif kind == TRIP:
            first_line.setdefault(_key(text), number)
        lines.append(TripLine(number, text, kind, original))
    return tuple(lines)


def _key(text: str) -> tuple[str, ...]:
    """The values of a trip line, independent of how its numbers are formatted."""
    return tuple(_parse_fields(text, compact=True))


def _parse_fields(text: str, compact: bool) -> list[str]:
    fields = text.split(",")
    if not compact:
        return fields
    places = (None, None, None, 2, 6, 6, 6, 6, 2, 2)
    return [f if p is None else _compact(float(f), p) for f, p in zip(fields, places, strict=True)]


def _counts(rows: int, opts: TripOptions) -> dict[str, int]:
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    ratios = (opts.bad_ratio, opts.duplicate_ratio, opts.malformed_ratio)
    if min(ratios) < 0 or sum(ratios) > 0.5:
        raise ValueError(f"defect ratios must be >= 0 and add up to at most 0.5, got {ratios}")
    if opts.days < 1:
        raise ValueError(f"days must be >= 1, got {opts.days}")
    if opts.start.tzinfo is None:
        raise ValueError("start must be time-zone aware (UTC)")
    bad, duplicates, malformed = (round(rows * ratio) for ratio in ratios)
    trips = rows - bad - duplicates - malformed
    if duplicates and trips < 1:
        duplicates, trips = 0, trips + duplicates
    return {TRIP: trips, "bad": bad, DUPLICATE: duplicates, MALFORMED: malformed}


def _place(rng: random.Random, names: list[str], weights: list[int]) -> tuple[str, tuple[float, float]]:
    name = rng.choices(names, weights)[0]
    lon, lat, _, spread, _ = HOT_SPOTS[name]
    point = (
        min(max(rng.gauss(lon, spread), LONGITUDE[0] + 0.01), LONGITUDE[1] - 0.01),
        min(max(rng.gauss(lat, spread * 0.75), LATITUDE[0] + 0.01), LATITUDE[1] - 0.01),
    )
    return name, (round(point[0], 6), round(point[1], 6))


def _miles(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Straight-line distance on the local flat approximation (good to a few percent across the city)."""
    dx = (a[0] - b[0]) * MILES_PER_DEGREE_LATITUDE * math.cos(math.radians((a[1] + b[1]) / 2))
    dy = (a[1] - b[1]) * MILES_PER_DEGREE_LATITUDE
    return math.hypot(dx, dy)


def _trip(rng: random.Random, opts: TripOptions) -> _Trip:
    names = list(HOT_SPOTS)
    weights = [HOT_SPOTS[n][2] for n in names]
    day = rng.randrange(opts.days)
    hour = rng.choices(range(24), HOURLY_WEIGHTS)[0]
    start = opts.start.replace(hour=0, minute=0, second=0, microsecond=0)
    pickup = start + timedelta(days=day, hours=hour, seconds=rng.randrange(3600))
    origin, pickup_point = _place(rng, names, weights)
    # Most rides stay in the neighbourhood they start in; the others cross town.
    local = rng.random() < LOCAL_SHARE
    destination, dropoff_point = _place(rng, [origin] if local else names, [1] if local else weights)
    distance = round(max(0.1, _miles(pickup_point, dropoff_point) * rng.uniform(1.15, 1.45) + rng.uniform(0, 0.3)), 2)
    airport = "Airport" in origin or "Airport" in destination
    speed = rng.uniform(18, 30) if airport else rng.uniform(6, 16)  # mph
    seconds = max(60, round(distance / speed * 3600 + rng.uniform(30, 240)))
    dropoff = pickup + timedelta(seconds=seconds)
    manhattan = HOT_SPOTS[origin][4] or HOT_SPOTS[destination][4]
    if {origin, destination} & {"JFK Airport"} and manhattan:
        fare = JFK_FLAT_FARE
    else:
        fare = round(3.00 + 3.50 * distance + 0.35 * seconds / 60, 2)
    tip = round(fare * rng.choice((0, 0, 0.15, 0.18, 0.2, 0.25)), 2)
    tolls = 6.94 if airport and rng.random() < 0.4 else 0.0
    total = round(fare + 0.50 + 1.00 + (2.50 if manhattan else 0) + tip + tolls, 2)
    passengers = rng.choices(list(PASSENGERS), list(PASSENGERS.values()))[0]
    return _Trip(pickup, dropoff, passengers, distance, pickup_point, dropoff_point, fare, total)


def _spoil(trip: _Trip, kind: str, n: int) -> list[str]:
    """The fields of ``trip`` made impossible in the way ``kind`` names."""
    fields = trip.fields()
    variant = n // len(DEFECT_KINDS)
    if kind == "outside_service_area":
        if variant % 2 == 0:
            lon, lat = FAR_AWAY[variant // 2 % len(FAR_AWAY)]
            fields[6:8] = f"{lon:.6f}", f"{lat:.6f}"
        else:  # latitude and longitude swapped
            fields[4:6] = fields[5], fields[4]
    elif kind == "non_positive_distance":
        fields[3] = "0.00" if variant % 2 == 0 else f"{-trip.distance:.2f}"
    elif kind == "dropoff_before_pickup":
        fields[0], fields[1] = fields[1], fields[0]
    elif kind == "missing_coordinates":
        if variant % 3 == 2:
            fields[4:6] = "0.0", "0.0"  # how the old feeds wrote "no GPS fix"
        else:
            start = 4 if variant % 3 == 0 else 6
            fields[start : start + 2] = "", ""
    elif kind == "bad_pickup_datetime":
        fields[0] = BAD_DATETIMES[variant % len(BAD_DATETIMES)]
    elif kind == "negative_total":
        fields[9] = f"{-trip.total:.2f}"
    elif kind == "bad_passenger_count":
        fields[2] = BAD_PASSENGERS[variant % len(BAD_PASSENGERS)]
    else:
        raise ValueError(f"unknown defect {kind!r}")
    return fields


def _malformed(body: list[tuple[str, str]], rng: random.Random, n: int) -> str:
    """A line with the wrong number of fields: cut short, one field too many, or noise."""
    fields = rng.choice(body)[0].split(",") if body else list(COLUMNS)
    variant = n % 3
    if variant == 0:
        return ",".join(fields[: rng.randint(2, 8)])
    if variant == 1:
        return ",".join([*fields, "N"])
    return "### transmission error ###"


# --- command line ------------------------------------------------------------------------------------


def s3_client_for(endpoint: str | None, conn_id: str = "lakehouse_s3") -> Any:
    """The S3 client of the Airflow connection ``conn_id``, or one for ``endpoint`` (credentials from the usual
    AWS environment variables or files, e.g. ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``)."""
    if not endpoint:
        from include.landing.s3 import s3_client

        return s3_client(conn_id)
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))


def drop_file(client: Any, trip_file: TripFile, bucket: str = "landing", prefix: str = LANDING_PREFIX) -> dict:
    """Upload ``trip_file`` to ``s3://<bucket>/<prefix><name>``; returns its description with the key and ETag."""
    from include.landing.s3 import upload_file

    key = prefix + trip_file.name
    with tempfile.TemporaryDirectory(prefix="trips-drop-") as folder:
        upload_file(client, trip_file.write(folder), bucket, key)
    head = client.head_object(Bucket=bucket, Key=key)
    return {
        "uri": f"s3://{bucket}/{key}",
        "key": key,
        "etag": head["ETag"].strip('"'),
        **trip_file.describe(),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m include.samples.trips", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for command, helptext in (
        ("drop", "upload one generated file into s3://<bucket>/<prefix>"),
        ("write", "write one generated file into a local folder"),
    ):
        sub = commands.add_parser(command, help=helptext)
        sub.add_argument("--rows", type=int, default=1000, help="data lines after the header (default 1000)")
        sub.add_argument("--seed", type=int, help="random seed (default: the current Unix time, so drops differ)")
        sub.add_argument("--name", help="file name (default trips_<start day>_<seed>.csv)")
        sub.add_argument("--start", type=date.fromisoformat, help="first pickup day, UTC (default: yesterday)")
        sub.add_argument("--days", type=int, default=1, help="days of pickups in the file")
        if command == "drop":
            sub.add_argument("--endpoint", help="S3 endpoint URL (default: the Airflow connection's)")
            sub.add_argument("--conn-id", default="lakehouse_s3", help="Airflow connection of the S3 store")
            sub.add_argument("--bucket", default="landing")
            sub.add_argument("--prefix", default=LANDING_PREFIX)
        else:
            sub.add_argument("--out", type=Path, required=True, help="destination folder")
    return parser


def main(argv: Sequence[str] | None = None) -> dict:
    """``drop``: upload one file to the landing bucket; ``write``: write it locally. Prints what was written."""
    args = _parser().parse_args(argv)
    now = datetime.now(UTC)
    seed = args.seed if args.seed is not None else int(now.timestamp())
    first_day = args.start or (now - timedelta(days=1)).date()
    options = TripOptions(start=datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC), days=args.days)
    trip_file = generate_trip_file(args.rows, seed, options, args.name)
    if args.command == "drop":
        client = s3_client_for(args.endpoint, args.conn_id)
        result = {**drop_file(client, trip_file, args.bucket, args.prefix), "seed": seed}
    else:
        result = {"path": str(trip_file.write(args.out)), **trip_file.describe(), "seed": seed}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    main()
