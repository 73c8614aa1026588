"""Deterministic generator of product master Parquet drops, with schema drift, bad rows and repeated versions."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

LANDING_PREFIX = "products/"

# category -> (lowest, highest list price in currency units, nouns of its products)
CATEGORIES: dict[str, tuple[float, float, tuple[str, ...]]] = {
    "Electronics": (9.0, 1500.0, ("Headphones", "Speaker", "Charger", "Monitor", "Keyboard", "Webcam")),
    "Home & Kitchen": (4.0, 400.0, ("Kettle", "Pan", "Knife Set", "Blender", "Lamp", "Towel Set")),
    "Books": (5.0, 60.0, ("Cookbook", "Novel", "Atlas", "Field Guide", "Notebook")),
    "Toys": (3.0, 150.0, ("Puzzle", "Building Set", "Plush Bear", "Race Track", "Board Game")),
    "Sports & Outdoors": (6.0, 900.0, ("Backpack", "Tent", "Yoga Mat", "Bike Helmet", "Water Bottle")),
    "Beauty": (2.5, 120.0, ("Shampoo", "Face Cream", "Perfume", "Hair Dryer", "Lip Balm")),
    "Garden": (3.0, 700.0, ("Hose", "Planter", "Lawn Mower", "Pruning Shears", "Seed Mix")),
    "Grocery": (0.5, 40.0, ("Coffee Beans", "Olive Oil", "Pasta", "Green Tea", "Dark Chocolate")),
    "Fashion": (5.0, 350.0, ("Sneakers", "Rain Jacket", "Scarf", "Jeans", "Wool Socks")),
    "Office": (1.0, 500.0, ("Desk Chair", "Stapler", "Pen Set", "Desk Organizer", "Label Printer")),
    "Pet Supplies": (2.0, 250.0, ("Dog Bed", "Cat Tree", "Leash", "Pet Fountain", "Chew Toy")),
    "Automotive": (4.0, 600.0, ("Dash Cam", "Car Vacuum", "Jump Starter", "Seat Cover", "Tyre Inflator")),
}
BRANDS = (
    "Nordwind", "Acme", "Bluepeak", "Ferro", "Halcyon", "Kestrel", "Lumo", "Mistral", "Novaline", "Orbis",
    "Pinecrest", "Quanta", "Riverton", "Solace", "Tundra", "Umbra", "Vireo", "Westbrook", "Yarrow", "Zephyr",
)  # fmt: skip
ADJECTIVES = ("Classic", "Compact", "Pro", "Eco", "Ultra", "Smart", "Essential", "Deluxe", "Travel", "Urban")
COLORS = ("black", "white", "grey", "red", "blue", "green", "beige", "navy", "silver", "orange")
# ISO 4217 codes the feed uses, by weight; bronze knows these (and a few more) as valid.
CURRENCIES: dict[str, int] = {"EUR": 55, "USD": 20, "GBP": 10, "CHF": 5, "SEK": 5, "PLN": 5}
UNKNOWN_CURRENCIES = ("XXX", "EURO", "€", "")

# Each defect turns one row into a row bronze must refuse; cycled so every kind shows up in small files.
BAD_ROW_KINDS = (
    "null_id", "negative_price", "unknown_currency", "blank_id", "null_updated_at", "nan_price", "null_price",
)  # fmt: skip

TIMESTAMP = pa.timestamp("ms", tz="UTC")


def schema_for(version: int) -> pa.Schema:
    """Arrow schema of a drop of schema ``version`` (1, 2 or 3).

    Version 2 widens ``price`` from float32 to float64 and adds ``stock_quantity`` (int32); version 3 widens
    ``stock_quantity`` to int64 and adds ``ean``.
    """
    if version not in (1, 2, 3):
        raise ValueError(f"schema version must be 1, 2 or 3, got {version}")
    fields = [
        ("product_id", pa.string()),
        ("name", pa.string()),
        ("category", pa.string()),
        ("brand", pa.string()),
        ("price", pa.float32() if version == 1 else pa.float64()),
        ("currency", pa.string()),
        ("updated_at", TIMESTAMP),
        ("color", pa.string()),
        ("weight_kg", pa.float32()),
    ]
    if version >= 2:
        fields.append(("stock_quantity", pa.int32() if version == 2 else pa.int64()))
    if version >= 3:
        fields.append(("ean", pa.string()))
    return pa.schema(fields)


@dataclass(frozen=True)
class ProductOptions:
    """Shape of the generated drops.

    Attributes:
        products: distinct product ids over all files (default: half the rows); each file introduces its share
            of new ids and fills its other rows with new versions of ids introduced earlier.
        start: ``updated_at`` of the first file's rows is within ``[start, start + file_interval)``, the next
            file's within the following interval, and so on: a later file holds later versions.
        file_interval: time covered by one file.
        bad_ratio: share of rows bronze must reject.
        duplicate_ratio: share of rows that repeat another row of the same file (same id and ``updated_at``).
        missing_ratio: share of missing values in each optional attribute (color, weight, stock, ean).
    """

    products: int | None = None
    start: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    file_interval: timedelta = timedelta(hours=1)
    bad_ratio: float = 0.03
    duplicate_ratio: float = 0.02
    missing_ratio: float = 0.1


def file_name(index: int, options: ProductOptions | None = None) -> str:
    """Name of drop ``index``: its interval's start and the index, so names sort in drop order."""
    opts = options or ProductOptions()
    moment = opts.start + index * opts.file_interval
    return f"products_{moment:%Y%m%dT%H%M%S}_{index:05d}.parquet"


def schema_version(index: int, files: int) -> int:
    """The first third of the files has schema 1, the second third 2, the rest 3."""
    return 1 + min(2, 3 * index // max(files, 1))


def generate_product_files(
    out_dir: str | os.PathLike[str], files: int, rows: int, seed: int = 7, options: ProductOptions | None = None
) -> list[Path]:
    """Write ``files`` Parquet drops of ``rows`` rows each into ``out_dir``; the same arguments give the same bytes.

    Args:
        out_dir: destination folder (created when missing).
        files: number of files.
        rows: rows per file.
        seed: seed of the random generator.
        options: ids, times and defect ratios; defaults to ``ProductOptions()``.

    Returns:
        The written files, in drop order.

    Raises:
        ValueError: on a negative size or out-of-range options.
    """
    opts = options or ProductOptions()
    products = _validate(files, rows, opts)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    catalogue = _Catalogue(products, seed)
    written = []
    for index in range(files):
        table = build_file(index, files, rows, seed, opts, catalogue)
        path = folder / file_name(index, opts)
        partial = path.with_name(path.name + ".part")
        pq.write_table(table, partial, compression="snappy")
        os.replace(partial, path)  # a reader never sees half a file
        written.append(path)
    logger.info("wrote %d product files of %d rows (%d products, seed %d) to %s", files, rows, products, seed, folder)
    return written


def _validate(files: int, rows: int, opts: ProductOptions) -> int:
    if files < 0 or rows < 0:
        raise ValueError(f"files and rows must be >= 0, got {files} and {rows}")
    ratios = (opts.bad_ratio, opts.duplicate_ratio)
    if min(ratios) < 0 or sum(ratios) > 0.5 or not 0 <= opts.missing_ratio <= 1:
        raise ValueError(f"defect ratios out of range: bad+duplicate {ratios}, missing {opts.missing_ratio}")
    products = opts.products if opts.products is not None else max(1, files * rows // 2)
    if products < 1 or products > max(1, files * rows):
        raise ValueError(f"products must be between 1 and files * rows, got {products}")
    return products


class _Catalogue:
    """The stable attributes of every product id, derived from the id and the seed only."""

    def __init__(self, products: int, seed: int) -> None:
        rng = np.random.default_rng([seed, 1])
        self.products = products
        categories = list(CATEGORIES)
        self.category = rng.integers(0, len(categories), products)
        self.brand = rng.integers(0, len(BRANDS), products)
        adjective = rng.integers(0, len(ADJECTIVES), products)
        noun_pick = rng.integers(0, 1 << 16, products)
        low = np.array([CATEGORIES[c][0] for c in categories])[self.category]
        high = np.array([CATEGORIES[c][1] for c in categories])[self.category]
        # Log-uniform list prices: most products are cheap, a few expensive.
        self.base_price = np.exp(rng.uniform(np.log(low), np.log(high)))
        self.currency = rng.choice(list(CURRENCIES), products, p=_weights(CURRENCIES))
        self.color = rng.integers(0, len(COLORS), products)
        self.weight_kg = np.round(rng.gamma(2.0, 0.8, products) + 0.05, 2)
        self.ean = rng.integers(10**12, 10**13, products)
        names = []
        for i in range(products):
            nouns = CATEGORIES[categories[self.category[i]]][2]
            names.append(f"{BRANDS[self.brand[i]]} {ADJECTIVES[adjective[i]]} {nouns[noun_pick[i] % len(nouns)]}")
        self.name = np.array(names, dtype=object)
        self.category_name = np.array(categories, dtype=object)[self.category]
        self.brand_name = np.array(BRANDS, dtype=object)[self.brand]

    def product_id(self, idx: np.ndarray) -> np.ndarray:
        return np.char.add("PRD-", np.char.zfill((idx + 1).astype(str), 7)).astype(object)


def _weights(weights: dict[str, int]) -> np.ndarray:
    values = np.array(list(weights.values()), dtype=float)
    return values / values.sum()


def build_file(
    index: int, files: int, rows: int, seed: int, opts: ProductOptions, catalogue: _Catalogue | None = None
) -> pa.Table:
    """The rows of drop ``index`` of ``files`` as an Arrow table of the drop's schema version."""
    products = _validate(files, rows, opts)
    catalogue = catalogue or _Catalogue(products, seed)
    rng = np.random.default_rng([seed, 2, index])
    lo, hi = products * index // files, products * (index + 1) // files
    new_ids = np.arange(lo, hi)[:rows]
    updates = rng.integers(0, max(hi, 1), rows - len(new_ids)) if hi else np.zeros(0, dtype=np.int64)
    idx = rng.permutation(np.concatenate([new_ids, updates]).astype(np.int64))
    interval_ms = int(opts.file_interval.total_seconds() * 1000)
    start_ms = int((opts.start + index * opts.file_interval).timestamp() * 1000)
    updated_ms = start_ms + rng.integers(0, max(interval_ms, 1), rows)
    # Price moves by -10% .. +10% in 5% steps from one file to the next; shelf stock is drawn per row.
    step = (idx * 7 + index) % 5 - 2
    price = np.round(catalogue.base_price[idx] * (1 + 0.05 * step), 2)
    columns: dict[str, Any] = {
        "product_id": catalogue.product_id(idx),
        "name": catalogue.name[idx],
        "category": catalogue.category_name[idx],
        "brand": catalogue.brand_name[idx],
        "price": price,
        "currency": catalogue.currency[idx].astype(object),
        "updated_at": updated_ms,
        "color": np.array(COLORS, dtype=object)[catalogue.color[idx]],
        "weight_kg": catalogue.weight_kg[idx],
        "stock_quantity": rng.integers(0, 500, rows),
        "ean": catalogue.ean[idx].astype(str).astype(object),
    }
    _repeat_rows(columns, rng, round(rows * opts.duplicate_ratio))
    missing = {name: rng.random(rows) < opts.missing_ratio for name in ("color", "weight_kg", "stock_quantity", "ean")}
    nulls = {name: np.zeros(rows, dtype=bool) for name in columns}
    nulls.update(missing)
    _spoil_rows(columns, nulls, rng, round(rows * opts.bad_ratio), index)
    schema = schema_for(schema_version(index, files))
    arrays = [_array(columns[f.name], nulls[f.name], f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _repeat_rows(columns: dict[str, Any], rng: np.random.Generator, count: int) -> None:
    """Overwrite ``count`` rows with copies of other rows of the file: the feed re-sent them."""
    rows = len(columns["product_id"])
    if count == 0 or rows < 2:
        return
    targets = rng.choice(rows, size=count, replace=False)
    sources = (targets + 1 + rng.integers(0, rows - 1, count)) % rows
    for values in columns.values():
        values[targets] = values[sources]


def _spoil_rows(
    columns: dict[str, Any], nulls: dict[str, np.ndarray], rng: np.random.Generator, count: int, index: int
) -> None:
    rows = len(columns["product_id"])
    if count == 0:
        return
    for n, pos in enumerate(rng.choice(rows, size=count, replace=False)):
        kind = BAD_ROW_KINDS[(n + index) % len(BAD_ROW_KINDS)]
        if kind == "null_id":
            nulls["product_id"][pos] = True
        elif kind == "blank_id":
            columns["product_id"][pos] = "  "
        elif kind == "negative_price":
            columns["price"][pos] = -columns["price"][pos] or -1.0
        elif kind == "unknown_currency":
            columns["currency"][pos] = UNKNOWN_CURRENCIES[n % len(UNKNOWN_CURRENCIES)]
        elif kind == "null_updated_at":
            nulls["updated_at"][pos] = True
        elif kind == "nan_price":
            columns["price"][pos] = np.nan
        else:
            nulls["price"][pos] = True


def _array(values: np.ndarray, mask: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(arrow_type):
        return pa.array(values.astype(np.int64), pa.int64(), mask=mask).cast(arrow_type)
    if pa.types.is_floating(arrow_type) or pa.types.is_integer(arrow_type):
        # float32 holds the decimal price only approximately, as a real feed's float32 column would.
        return pa.array(values.astype(arrow_type.to_pandas_dtype()), arrow_type, mask=mask)
    return pa.array(values, arrow_type, mask=mask)


def upload_files(
    client: Any, paths: Iterable[str | os.PathLike[str]], bucket: str = "landing", prefix: str = LANDING_PREFIX
) -> list[str]:
    """Drop local files into ``s3://<bucket>/<prefix><file name>``; returns the keys written.

    Args:
        client: a boto3 S3 client (``include.landing.s3.s3_client()`` for the Airflow connection).
        paths: local files.
        bucket: the landing bucket.
        prefix: key prefix of the products drops.
    """
    from include.landing.s3 import upload_file

    keys = []
    for path in paths:
        key = prefix + Path(path).name
        upload_file(client, path, bucket, key)
        keys.append(key)
    return keys


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m include.samples.products --files N --rows R --seed S --out DIR [--upload]``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, required=True)
    parser.add_argument("--rows", type=int, required=True, help="rows per file")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True, help="destination folder")
    parser.add_argument("--products", type=int, help="distinct product ids (default: half the rows)")
    parser.add_argument("--start", type=datetime.fromisoformat, default=ProductOptions.start, help="ISO-8601, UTC")
    parser.add_argument("--upload", action="store_true", help="drop the files into the landing bucket")
    parser.add_argument("--conn-id", default="lakehouse_s3", help="Airflow connection of the S3 store (--upload)")
    parser.add_argument("--bucket", default="landing")
    parser.add_argument("--prefix", default=LANDING_PREFIX)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    start = args.start if args.start.tzinfo else args.start.replace(tzinfo=UTC)
    paths = generate_product_files(
        args.out, args.files, args.rows, args.seed, ProductOptions(products=args.products, start=start)
    )
    if args.upload:
        from include.landing.s3 import s3_client

        keys = upload_files(s3_client(args.conn_id), paths, args.bucket, args.prefix)
        logger.info("dropped %d files under s3://%s/%s", len(keys), args.bucket, args.prefix)


if __name__ == "__main__":
    main()
