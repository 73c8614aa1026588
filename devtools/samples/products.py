"""Deterministic generator of the products feed: hourly pandas-written Parquet files named after their hour."""

# The feed, as the sensors write it: one file per hour named `YYYY-MM-DD HH-MM-SS.parquet` (spaces in the name),
# written by pandas with pyarrow (so the schema metadata carries pandas' RangeIndex entry), columns
# department_name, sensor_serial, create_at (µs, no zone; the file's hour), product_name, product_expire (no zone,
# 87-89 days after creation). 100 departments; a sensor serial is attached to one to three products of its
# department; no exact duplicate rows in a clean file.
#
# Every hour is generated from (seed, hour index) alone, so any hour can be made on its own, in any order, in
# parallel. Defects are a small share of rows (missing department/serial/product, expiry before creation, a
# 1970 clock, a row repeated in the file), optionally a file without `product_expire`, schema drift (a column
# added later, then widened from float32 to float64), identical re-drops and corrected files (same name, new
# content).

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from devtools.samples.landing import feed_parser, s3_client_for

logger = logging.getLogger(__name__)

LANDING_PREFIX = "products/"
NAME_FORMAT = "%Y-%m-%d %H-%M-%S"
COLUMNS = ("department_name", "sensor_serial", "create_at", "product_name", "product_expire")
DRIFT_COLUMN = "shelf_temperature"  # added by the sensors' later firmware; float32 first, float64 later

AREAS = (
    "Fresh Produce", "Dairy", "Bakery", "Butchery", "Seafood", "Deli", "Frozen Foods", "Beverages", "Snacks",
    "Cereals", "Canned Goods", "Condiments", "Baking Supplies", "Pasta & Rice", "Health Foods", "Baby Care",
    "Personal Care", "Household", "Pet Food", "Confectionery", "Wine & Spirits", "Ready Meals", "Organic",
    "World Foods", "Flowers",
)  # fmt: skip
ZONES = ("North", "South", "East", "West")
PRODUCTS = (
    "Whole Milk 1L", "Skimmed Milk 1L", "Greek Yogurt 500g", "Cheddar 200g", "Butter 250g", "Eggs 12 pack",
    "Sourdough Loaf", "Baguette", "Croissant 4 pack", "Chicken Breast 500g", "Beef Mince 500g", "Salmon Fillet",
    "Prawns 200g", "Ham Slices", "Hummus 200g", "Frozen Peas 1kg", "Ice Cream 1L", "Orange Juice 1L",
    "Sparkling Water 6x1.5L", "Cola 2L", "Potato Crisps", "Salted Peanuts", "Corn Flakes", "Oat Porridge",
    "Chopped Tomatoes", "Baked Beans", "Tuna Chunks", "Ketchup", "Mayonnaise", "Plain Flour 1kg", "Caster Sugar",
    "Spaghetti 500g", "Basmati Rice 1kg", "Granola Bars", "Baby Formula", "Nappies Size 3", "Shampoo 400ml",
    "Toothpaste", "Washing Up Liquid", "Kitchen Roll", "Dog Food 2kg", "Cat Litter", "Dark Chocolate 100g",
    "Jelly Beans", "Red Wine 75cl", "Lager 4 pack", "Lasagne Ready Meal", "Organic Bananas", "Avocados 2 pack",
    "Tulips Bunch", "Crème Fraîche 200ml", "Jalapeño Dip", "Rosé 75cl",
)  # fmt: skip
# Row defects, cycled so every kind shows up even in small runs.
DEFECTS = ("missing_department", "blank_serial", "missing_product", "expire_before_create", "clock_1970", "repeat")


@dataclass(frozen=True)
class FeedOptions:
    """Shape of the generated feed.

    Attributes:
        start: the first hour (zone-less, like the feed).
        departments: departments (100 in the real feed).
        sensors_per_department: sensors in each department.
        products_per_department: distinct product names in each department.
        presence: share of (sensor, product) attachments reporting in a given hour.
        defect_rate: share of rows spoiled with one of ``DEFECTS``.
        missing_column_every: every n-th hour's file lacks ``product_expire`` (0: never).
        drift_from_hour: from this hour on files carry ``shelf_temperature`` (float32), from twice this hour as
            float64 (None: never).
    """

    start: datetime = datetime(2024, 1, 1)
    departments: int = 100
    sensors_per_department: int = 10
    products_per_department: int = 16
    presence: float = 0.98
    defect_rate: float = 0.001
    missing_column_every: int = 0
    drift_from_hour: int | None = None


@dataclass(frozen=True)
class Attachments:
    """Which sensor reports which product in which department: parallel arrays, one entry per attachment."""

    department: np.ndarray
    serial: np.ndarray
    product: np.ndarray


def file_name(hour: datetime) -> str:
    """The feed's name of the file of ``hour``: ``2024-01-01 00-00-00.parquet``."""
    return hour.strftime(NAME_FORMAT) + ".parquet"


def departments(count: int) -> list[str]:
    """``count`` distinct department names (area and store zone), the same for every seed."""
    names = [f"{area} {zone}" for zone in ZONES for area in AREAS]
    names += [f"Department {i:03d}" for i in range(len(names), count)]
    return names[:count]


def attachments(seed: int, options: FeedOptions) -> Attachments:
    """Each department's sensors, each attached to one to three of the department's products."""
    rng = np.random.default_rng([seed, 0])
    dept, serial, product = [], [], []
    for name in departments(options.departments):
        catalogue = rng.choice(len(PRODUCTS), size=min(options.products_per_department, len(PRODUCTS)), replace=False)
        for _ in range(options.sensors_per_department):
            code = f"SN-{int(rng.integers(16**8)):08X}"
            for item in rng.choice(catalogue, size=int(rng.integers(1, 4)), replace=False):
                dept.append(name)
                serial.append(code)
                product.append(PRODUCTS[item])
    return Attachments(np.array(dept, dtype=object), np.array(serial, dtype=object), np.array(product, dtype=object))


def hour_frame(index: int, seed: int, options: FeedOptions, links: Attachments | None = None):
    """The pandas DataFrame of the file of hour ``index`` (0 = ``options.start``), defects included."""
    import pandas as pd

    links = links or attachments(seed, options)
    rng = np.random.default_rng([seed, 1, index])
    hour = options.start + timedelta(hours=index)
    chosen = np.flatnonzero(rng.random(len(links.serial)) < options.presence)
    rows = len(chosen)
    created = np.full(rows, np.datetime64(hour, "us"))
    # 87 to 89 days, to the second.
    shelf = rng.integers(87 * 86_400, 89 * 86_400 + 1, size=rows).astype("timedelta64[s]").astype("timedelta64[us]")
    frame = pd.DataFrame(
        {
            "department_name": links.department[chosen],
            "sensor_serial": links.serial[chosen],
            "create_at": created,
            "product_name": links.product[chosen],
            "product_expire": created + shelf,
        }
    )
    frame = _spoil(frame, rng, options.defect_rate, index)
    if options.drift_from_hour is not None and index >= options.drift_from_hour:
        wide = index >= 2 * options.drift_from_hour
        frame[DRIFT_COLUMN] = rng.normal(4.0, 1.5, len(frame)).astype("float64" if wide else "float32")
    if options.missing_column_every and index % options.missing_column_every == options.missing_column_every - 1:
        frame = frame.drop(columns=["product_expire"])
    return frame


def _spoil(frame, rng: np.random.Generator, rate: float, index: int):
    """Spoil about ``rate`` of the rows, kinds cycled from the hour's index."""
    import pandas as pd

    count = int(rng.binomial(len(frame), rate)) if rate else 0
    if not count:
        return frame
    rows = rng.choice(len(frame), size=count, replace=False)
    repeats = []
    for n, row in enumerate(rows):
        kind = DEFECTS[(index + n) % len(DEFECTS)]
        if kind == "missing_department":
            frame.iat[row, 0] = None
        elif kind == "blank_serial":
            frame.iat[row, 1] = "  "
        elif kind == "missing_product":
            frame.iat[row, 3] = None
        elif kind == "expire_before_create":
            frame.iat[row, 4] = frame.iat[row, 2] - pd.Timedelta(days=1)
        elif kind == "clock_1970":
            frame.iat[row, 2] = pd.Timestamp("1970-01-01 00:00:00")
        else:
            repeats.append(row)
    if repeats:
        frame = pd.concat([frame, frame.iloc[repeats]], ignore_index=True)
    return frame


def corrected(frame, seed: int, share: float = 0.05):
    """A corrected version of an hour's file: ``share`` of the rows get a new expiry (a day later), and the
    last row is withdrawn."""
    import pandas as pd

    rng = np.random.default_rng([seed, 2])
    fixed = frame.iloc[:-1].copy()
    if "product_expire" in fixed:
        changed = rng.random(len(fixed)) < share
        changed[0] = True
        fixed.loc[changed, "product_expire"] = fixed.loc[changed, "product_expire"] + pd.Timedelta(days=1)
    return fixed


def write_frame(frame, path: Path) -> Path:
    """Write as the sensors do: pandas with pyarrow, the RangeIndex kept as pandas metadata only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, engine="pyarrow", compression="snappy")
    return path


def hours(count: int, seed: int, options: FeedOptions, first: int = 0) -> Iterator[tuple[str, Any]]:
    """(file name, DataFrame) of hours ``first`` .. ``first + count - 1``."""
    links = attachments(seed, options)
    for index in range(first, first + count):
        yield file_name(options.start + timedelta(hours=index)), hour_frame(index, seed, options, links)


def write_feed(folder: str | Path, count: int, seed: int, options: FeedOptions | None = None) -> list[Path]:
    """Write ``count`` hourly files into ``folder``; returns their paths in hour order."""
    options = options or FeedOptions()
    return [write_frame(frame, Path(folder) / name) for name, frame in hours(count, seed, options)]


def drop_feed(
    client: Any, count: int, seed: int, options: FeedOptions | None = None, *, bucket: str = "landing", prefix: str = ""
) -> list[str]:
    """Upload ``count`` hourly files to ``s3://<bucket>/<prefix>``; returns the keys."""
    options = options or FeedOptions()
    keys = []
    with tempfile.TemporaryDirectory(prefix="products-feed-") as folder:
        for name, frame in hours(count, seed, options):
            path = write_frame(frame, Path(folder) / name)
            client.upload_file(str(path), bucket, prefix + name)
            path.unlink()
            keys.append(prefix + name)
    return keys


def _parser() -> argparse.ArgumentParser:
    def options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--hours", type=int, default=24, help="hourly files to make (default 24)")
        sub.add_argument("--seed", type=int, default=12)
        sub.add_argument("--start", type=datetime.fromisoformat, default=FeedOptions.start, help="first hour")
        sub.add_argument("--defect-rate", type=float, default=FeedOptions.defect_rate)
        sub.add_argument("--missing-column-every", type=int, default=0, help="every n-th file lacks product_expire")
        sub.add_argument("--drift-from-hour", type=int, help="files from this hour on carry an extra column")

    helps = {
        "drop": "upload hourly files into s3://<bucket>/<prefix>",
        "write": "write hourly files into a local folder",
    }
    return feed_parser("python -m devtools.samples.products", __doc__, LANDING_PREFIX, helps, options)


def main(argv: Sequence[str] | None = None) -> dict:
    """``write`` the feed into a folder or ``drop`` it into the landing bucket; prints what was made."""
    args = _parser().parse_args(argv)
    options = replace(
        FeedOptions(),
        start=args.start,
        defect_rate=args.defect_rate,
        missing_column_every=args.missing_column_every,
        drift_from_hour=args.drift_from_hour,
    )
    if args.command == "drop":
        keys = drop_feed(
            s3_client_for(args.endpoint, args.conn_id), args.hours, args.seed, options, bucket=args.bucket,
            prefix=args.prefix,
        )  # fmt: skip
        result = {"bucket": args.bucket, "files": len(keys), "first": keys[:1], "last": keys[-1:]}
    else:
        paths = write_feed(args.out, args.hours, args.seed, options)
        result = {"folder": str(args.out), "files": len(paths), "first": paths[0].name, "last": paths[-1].name}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    main()
