"""Deterministic trip files in the feed's format (``region,origin_coord,destination_coord,datetime,datasource``).

``python -m devtools.samples.trips write --rows 100000 --out /tmp/trips`` writes one file; ``drop`` uploads it to
``landing/trips/``. The same arguments always give the same bytes.
"""

# A file is a header and `rows` data lines. Each data line is drawn in turn: a valid trip, an exact repeat of a
# recent valid trip (`duplicate`, sometimes written with other WKT spacing: still the same trip), or one of the
# labelled defects below. Lines are produced one at a time (`iter_lines`), so a file of any size is written in
# constant memory; `generate_trip_file` keeps the lines, for tests.
#
# Trips are drawn per region (its own centre, spread and weight, the datasources active there, and a few hot spots
# most trips start or end near, so similar trips exist), at realistic hours (morning and evening peaks) and days
# (fewer trips at weekends). Coordinates are written as Python's shortest round-trip repr, as the brief's sample
# shows (`POINT (14.4973794438195 50.00136875782316)`), so a reader parsing them gets the generator's floats.

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from devtools.samples.landing import feed_parser, s3_client_for

HEADER = "region,origin_coord,destination_coord,datetime,datasource"
LANDING_PREFIX = "trips/"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
HEADER_KIND, TRIP, DUPLICATE = "header", "trip", "duplicate"


@dataclass(frozen=True)
class Region:
    """Where a region's trips happen: its centre, spread (degrees of latitude), weight, datasources, hot spots."""

    longitude: float
    latitude: float
    spread: float
    weight: int
    datasources: tuple[tuple[str, int], ...]
    hot_spots: tuple[tuple[float, float], ...] = ()


REGIONS: dict[str, Region] = {
    "Prague": Region(
        14.4378, 50.0755, 0.04, 5,
        (("funny_car", 4), ("cheap_mobile", 3), ("baba_car", 2), ("pt_search_app", 1)),
        ((14.4355, 50.0833), (14.2632, 50.1008), (14.4213, 50.0870)),
    ),
    "Turin": Region(
        7.6869, 45.0703, 0.03, 3,
        (("baba_car", 4), ("pt_search_app", 2), ("bad_diesel_vehicles", 1)),
        ((7.6782, 45.0622), (7.6650, 45.1070)),
    ),
    "Hamburg": Region(
        9.9937, 53.5511, 0.05, 4,
        (("cheap_mobile", 3), ("funny_car", 2), ("bad_diesel_vehicles", 2)),
        ((10.0067, 53.5530), (9.9884, 53.6304), (9.9356, 53.5458)),
    ),
    "Lisbon": Region(
        -9.1393, 38.7223, 0.035, 2,
        (("pt_search_app", 3), ("baba_car", 1)),
        ((-9.1406, 38.7143), (-9.1290, 38.7813)),
    ),
}  # fmt: skip
# Trips per hour of day (UTC), with morning and evening peaks; and per ISO weekday (Monday first).
HOURLY_WEIGHTS = (2, 1, 1, 1, 1, 3, 7, 12, 14, 9, 7, 7, 8, 7, 7, 8, 10, 13, 12, 9, 7, 5, 4, 3)
WEEKDAY_WEIGHTS = (10, 10, 10, 10, 11, 7, 5)
HOT_SPOT_SHARE = 0.6  # trips starting (and, separately, ending) near a hot spot
HOT_SPOT_JITTER = 0.002  # degrees, ~200 m

# Defects, each labelled with what it is; `count` of a line is the reason the bronze job must give.
DEFECT_KINDS = (
    "malformed_origin",  # bad_origin_coord
    "malformed_destination",  # bad_destination_coord
    "origin_out_of_range",  # origin_out_of_range
    "destination_out_of_range",  # destination_out_of_range
    "swapped_datetime_datasource",  # bad_datetime (the datetime field holds the datasource)
    "swapped_region_origin",  # bad_region (the region field holds a WKT point)
    "missing_field",  # wrong_column_count (a field left out)
    "extra_field",  # wrong_column_count
    "bad_datetime",  # bad_datetime
    "empty_region",  # missing_region
    "empty_datasource",  # missing_datasource
    "repeated_header",  # repeated_header (files concatenated)
    "blank_line",  # blank_line
    "repeated_defect",  # the same reason as the defect it repeats: a rejected line repeated is no duplicate
)
MALFORMED_WKT = ("POINT {lon} {lat}", "POINT ({lon})", "POINT ({lon} {lat}", "PONT ({lon} {lat})", "POINT (x {lat})")
OUT_OF_RANGE = ((200.5, 50.0), (14.4, 95.25), (-180.5, 45.0), (7.68, -90.01))
BAD_DATETIMES = (
    "2026-13-01 10:00:00", "2026-02-30 08:15:00", "2026-11-18T10:00:00", "18/11/2026 10:00", "", "2026-11-18 25:00:00",
)  # fmt: skip


@dataclass(frozen=True)
class TripOptions:
    """What a generated file covers, and how often each kind of bad line occurs.

    Attributes:
        start: the first day of the trips (UTC midnight, time-zone aware).
        days: days of trips from ``start``.
        duplicate_ratio: share of data lines repeating a recent valid trip.
        defect_ratio: share of data lines that are defects (spread evenly over ``DEFECT_KINDS``).
        regions: the regions drawn from (default all of ``REGIONS``).
    """

    start: datetime = datetime(2026, 11, 16, tzinfo=UTC)
    days: int = 7
    duplicate_ratio: float = 0.02
    defect_ratio: float = 0.03
    regions: tuple[str, ...] = field(default_factory=lambda: tuple(REGIONS))


@dataclass(frozen=True)
class TripLine:
    """One line of a generated file: its 1-based number, its text (no newline) and its kind.

    ``kind`` is ``header``, ``trip``, ``duplicate`` (of line ``duplicate_of``) or one of ``DEFECT_KINDS``
    (``repeated_defect`` lines carry the kind of the line they repeat in ``repeats``).
    """

    number: int
    text: str
    kind: str
    duplicate_of: int | None = None
    repeats: str | None = None


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
        return {
            "name": self.name,
            "bytes": len(self.content),
            "lines": len(self.lines),
            "trips": kinds[TRIP],
            "duplicates": kinds[DUPLICATE],
            "defects": {kind: kinds[kind] for kind in DEFECT_KINDS if kinds[kind]},
        }

    def write(self, folder: str | Path) -> Path:
        """Write the file into ``folder`` (created when missing); returns its path."""
        path = Path(folder) / self.name
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        partial.write_bytes(self.content)
        partial.replace(path)  # a reader never sees half a file
        return path


def _check(rows: int, opts: TripOptions) -> None:
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    if min(opts.duplicate_ratio, opts.defect_ratio) < 0 or opts.duplicate_ratio + opts.defect_ratio > 0.5:
        raise ValueError("duplicate_ratio and defect_ratio must be >= 0 and add up to at most 0.5")
    if opts.days < 1:
        raise ValueError(f"days must be >= 1, got {opts.days}")
    if opts.start.tzinfo is None:
        raise ValueError("start must be time-zone aware (UTC)")
    unknown = set(opts.regions) - set(REGIONS)
    if unknown or not opts.regions:
        raise ValueError(f"regions must be some of {sorted(REGIONS)}, got {opts.regions}")


class _Drawer:
    """Draws valid trips (as field lists) from one random generator."""

    def __init__(self, rng: random.Random, opts: TripOptions) -> None:
        self.rng, self.opts = rng, opts
        self.names = list(opts.regions)
        self.weights = [REGIONS[n].weight for n in self.names]
        first = opts.start.replace(hour=0, minute=0, second=0, microsecond=0)
        self.days = [first + timedelta(days=d) for d in range(opts.days)]
        self.day_weights = [WEEKDAY_WEIGHTS[day.weekday()] for day in self.days]

    def _point(self, region: Region) -> tuple[float, float]:
        rng = self.rng
        if region.hot_spots and rng.random() < HOT_SPOT_SHARE:
            lon, lat = rng.choice(region.hot_spots)
            spread = HOT_SPOT_JITTER
        else:
            lon, lat, spread = region.longitude, region.latitude, region.spread
        # A degree of longitude is shorter than one of latitude away from the equator: widen it to stay round.
        return rng.gauss(lon, spread * 1.5), rng.gauss(lat, spread)

    def fields(self) -> list[str]:
        rng = self.rng
        name = rng.choices(self.names, self.weights)[0]
        region = REGIONS[name]
        day = rng.choices(self.days, self.day_weights)[0]
        hour = rng.choices(range(24), HOURLY_WEIGHTS)[0]
        moment = day + timedelta(hours=hour, seconds=rng.randrange(3600))
        source = rng.choices([s for s, _ in region.datasources], [w for _, w in region.datasources])[0]
        return [
            name,
            point_text(*self._point(region)),
            point_text(*self._point(region)),
            moment.strftime(TIME_FORMAT),
            source,
        ]


def point_text(lon: float, lat: float, compact: bool = False) -> str:
    """A WKT point as the feed writes it (``compact``: without the optional space, still the same point)."""
    return f"POINT({lon!r} {lat!r})" if compact else f"POINT ({lon!r} {lat!r})"


def _replace(fields: list[str], index: int, text: str) -> list[str]:
    return [*fields[:index], text, *fields[index + 1 :]]


def _bad_point(fields: list[str], index: int, n: int) -> list[str]:
    lon, lat = (float(v) for v in fields[index][fields[index].index("(") + 1 : -1].split())
    return _replace(fields, index, MALFORMED_WKT[n % len(MALFORMED_WKT)].format(lon=repr(lon), lat=repr(lat)))


def _far_point(fields: list[str], index: int, n: int) -> list[str]:
    return _replace(fields, index, point_text(*OUT_OF_RANGE[n % len(OUT_OF_RANGE)]))


# How each defect spoils a valid trip's fields (``n``: how many of that kind came before, to vary them).
_SPOILERS = {
    "malformed_origin": lambda f, n, rng: _bad_point(f, 1, n),
    "malformed_destination": lambda f, n, rng: _bad_point(f, 2, n),
    "origin_out_of_range": lambda f, n, rng: _far_point(f, 1, n),
    "destination_out_of_range": lambda f, n, rng: _far_point(f, 2, n),
    "swapped_datetime_datasource": lambda f, n, rng: [*f[:3], f[4], f[3]],
    "swapped_region_origin": lambda f, n, rng: [f[1], f[0], *f[2:]],
    "missing_field": lambda f, n, rng: [v for i, v in enumerate(f) if i != 1 + n % 4],
    "extra_field": lambda f, n, rng: [*f, "x"],
    "bad_datetime": lambda f, n, rng: _replace(f, 3, BAD_DATETIMES[n % len(BAD_DATETIMES)]),
    "empty_region": lambda f, n, rng: _replace(f, 0, ""),
    "empty_datasource": lambda f, n, rng: _replace(f, 4, ""),
}


def _spoil(fields: list[str], kind: str, n: int, rng: random.Random) -> str:
    """The line of ``fields`` made bad in the way ``kind`` names."""
    if kind == "repeated_header":
        return HEADER
    if kind == "blank_line":
        return ""
    return ",".join(_SPOILERS[kind](fields, n, rng))


def iter_lines(rows: int, seed: int = 7, options: TripOptions | None = None) -> Iterator[TripLine]:
    """Every line of a file of ``rows`` data lines after the header, one at a time (constant memory).

    Args:
        rows: data lines (trips, duplicates and defects together).
        seed: seed of the random generator.
        options: days, regions and ratios; defaults to ``TripOptions()``.

    Raises:
        ValueError: on a negative size or out-of-range options.
    """
    opts = options or TripOptions()
    _check(rows, opts)
    rng = random.Random(f"trips-{seed}")
    drawer = _Drawer(rng, opts)
    recent: deque[tuple[int, list[str]]] = deque(maxlen=500)  # (line, fields) of recent valid trips
    last_defect: tuple[str, str] | None = None  # (kind, text) of the latest rejectable defect
    seen = Counter()
    yield TripLine(1, HEADER, HEADER_KIND)
    for number in range(2, rows + 2):
        draw = rng.random()
        if draw < opts.duplicate_ratio and recent:
            line, fields = rng.choice(recent)
            compact = seen[DUPLICATE] % 2 == 1
            if compact:  # the same trip with the WKT's optional space left out
                fields = [fields[0], *(_compact(f) for f in fields[1:3]), *fields[3:]]
            seen[DUPLICATE] += 1
            yield TripLine(number, ",".join(fields), DUPLICATE, duplicate_of=line)
        elif draw < opts.duplicate_ratio + opts.defect_ratio:
            kind = DEFECT_KINDS[sum(seen[k] for k in DEFECT_KINDS) % len(DEFECT_KINDS)]
            if kind == "repeated_defect" and last_defect is not None:
                seen[kind] += 1
                yield TripLine(number, last_defect[1], kind, repeats=last_defect[0])
                continue
            kind = "malformed_origin" if kind == "repeated_defect" else kind
            text = _spoil(drawer.fields(), kind, seen[kind], rng)
            seen[kind] += 1
            if kind not in ("repeated_header", "blank_line"):
                last_defect = (kind, text)
            yield TripLine(number, text, kind)
        else:
            fields = drawer.fields()
            recent.append((number, fields))
            yield TripLine(number, ",".join(fields), TRIP)


def _compact(point: str) -> str:
    return point.replace("POINT (", "POINT(", 1)


def default_name(seed: int, options: TripOptions | None = None) -> str:
    """``trips_<first day>_<seed>.csv``: one name per seed, sorting by the day the trips start."""
    opts = options or TripOptions()
    return f"trips_{opts.start:%Y%m%d}_{seed}.csv"


def generate_trip_file(
    rows: int, seed: int = 7, options: TripOptions | None = None, name: str | None = None
) -> TripFile:
    """Generate a file of ``rows`` data lines after the header, kept in memory; the same arguments, the same bytes.

    Args:
        rows: data lines (trips, duplicates and defects together).
        seed: seed of the random generator.
        options: days, regions and ratios; defaults to ``TripOptions()``.
        name: the file name; default ``default_name(seed, options)``.
    """
    return TripFile(name or default_name(seed, options), tuple(iter_lines(rows, seed, options)))


def write_trip_file(path: str | Path, rows: int, seed: int = 7, options: TripOptions | None = None) -> dict:
    """Stream a generated file to ``path`` (any size, constant memory); returns the lines of each kind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kinds: Counter = Counter()
    partial = path.with_name(path.name + ".part")
    with partial.open("w", encoding="utf-8", newline="\n", buffering=1 << 20) as out:
        for line in iter_lines(rows, seed, options):
            kinds[line.kind] += 1
            out.write(line.text + "\n")
    partial.replace(path)
    return dict(kinds)


# --- command line ------------------------------------------------------------------------------------


def drop_file(client: Any, trip_file: TripFile, bucket: str = "landing", prefix: str = LANDING_PREFIX) -> dict:
    """Upload ``trip_file`` to ``s3://<bucket>/<prefix><name>``; returns its description with the key and ETag."""
    from include.landing.s3 import upload_file

    key = prefix + trip_file.name
    with tempfile.TemporaryDirectory(prefix="trips-drop-") as folder:
        upload_file(client, trip_file.write(folder), bucket, key)
    head = client.head_object(Bucket=bucket, Key=key)
    return {"uri": f"s3://{bucket}/{key}", "key": key, "etag": head["ETag"].strip('"'), **trip_file.describe()}


def _parser() -> argparse.ArgumentParser:
    def options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--rows", type=int, default=1000, help="data lines after the header (default 1000)")
        sub.add_argument("--seed", type=int, help="random seed (default: the current Unix time, so drops differ)")
        sub.add_argument("--name", help="file name (default trips_<first day>_<seed>.csv)")
        sub.add_argument("--start", type=date.fromisoformat, help="first day of trips, UTC (default: a week ago)")
        sub.add_argument("--days", type=int, default=7, help="days of trips in the file")

    helps = {
        "drop": "upload one generated file into s3://<bucket>/<prefix>",
        "write": "write one generated file into a local folder (streamed: any size)",
    }
    return feed_parser("python -m devtools.samples.trips", __doc__, LANDING_PREFIX, helps, options)


def main(argv: Sequence[str] | None = None) -> dict:
    """``drop``: upload one file to the landing bucket; ``write``: write it locally. Prints what was written."""
    args = _parser().parse_args(argv)
    now = datetime.now(UTC)
    seed = args.seed if args.seed is not None else int(now.timestamp())
    first_day = args.start or (now - timedelta(days=7)).date()
    options = TripOptions(start=datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC), days=args.days)
    name = args.name or default_name(seed, options)
    if args.command == "drop":
        trip_file = generate_trip_file(args.rows, seed, options, name)
        result = {**drop_file(s3_client_for(args.endpoint, args.conn_id), trip_file, args.bucket, args.prefix)}
    else:
        path = args.out / name
        kinds = write_trip_file(path, args.rows, seed, options)
        result = {"path": str(path), "lines": sum(kinds.values()), "kinds": kinds}
    result["seed"] = seed
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    main()
