"""What the products pipeline must produce from the generated hourly files, computed with plain Python (pyarrow).

The rules are the issue's, written independently of the jobs; the products DAG test and the backfill test check
gold against them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from pathlib import Path

REQUIRED = ("department_name", "sensor_serial", "create_at", "product_name", "product_expire")
SANE = (dt.datetime(2000, 1, 1), dt.datetime(2100, 1, 1))
HORIZONS = (1, 7, 30, 90)


def reject_reason(row: dict, columns: set[str]) -> str | None:
    """Why bronze must refuse a reading, by the issue's rules, written independently of the job."""
    if not set(REQUIRED) <= columns:
        return "missing_column"
    for column, reason in (
        ("department_name", "missing_department"),
        ("sensor_serial", "missing_sensor_serial"),
        ("product_name", "missing_product_name"),
    ):
        if row[column] is None or not row[column].strip():
            return reason
    created, expires = row["create_at"], row["product_expire"]
    if created is None:
        return "missing_create_at"
    if expires is None:
        return "missing_product_expire"
    if not all(SANE[0] <= t < SANE[1] for t in (created, expires)):
        return "timestamp_out_of_range"
    if expires < created:
        return "expire_before_create"
    return None


def expected_from_files(files: dict[str, Path]) -> dict:
    """Rejects by reason, duplicates and the distinct readings (key -> expiry) of the files (key -> local path)."""
    import pyarrow.parquet as pq

    rejects, readings, duplicates, raw = Counter(), {}, 0, 0
    for key in sorted(files):
        table = pq.read_table(files[key])
        for row in table.to_pylist():
            raw += 1
            reason = reject_reason(row, set(table.column_names))
            if reason:
                rejects[reason] += 1
                continue
            reading = (row["department_name"].strip(), row["sensor_serial"].strip(), row["product_name"].strip())
            reading += (row["create_at"],)
            if reading in readings:
                duplicates += 1
                continue
            readings[reading] = row["product_expire"]
    return {"raw": raw, "rejects": rejects, "duplicates": duplicates, "readings": readings}


def expected_by_department(readings: dict) -> dict:
    """(department, day) -> (products, sensors, readings)."""
    groups = defaultdict(list)
    for dept, serial, product, created in readings:
        groups[(dept, created.date())].append((serial, product))
    return {k: (len({p for _, p in v}), len({s for s, _ in v}), len(v)) for k, v in groups.items()}


def expected_shelf_life(readings: dict) -> dict:
    """Whole days of shelf life -> (readings, distinct department products)."""
    groups = defaultdict(list)
    for (dept, _, product, created), expires in readings.items():
        groups[math.floor((expires - created).total_seconds() / 86_400)].append((dept, product))
    return {days: (len(v), len(set(v))) for days, v in groups.items()}


def expected_expiring(readings: dict) -> dict:
    """(department, N) -> (products, readings) whose latest reading per sensor expires within N days of the feed's
    latest hour."""
    as_of = max(created for *_, created in readings)
    latest = {}
    for (dept, serial, product, created), expires in readings.items():
        if (dept, serial, product) not in latest or created > latest[(dept, serial, product)][0]:
            latest[(dept, serial, product)] = (created, expires)
    out = {}
    for n in HORIZONS:
        for dept in {d for d, _, _ in latest}:
            due = [
                p
                for (d, _, p), (_, e) in latest.items()
                if d == dept and 0 <= (e - as_of).total_seconds() <= n * 86_400
            ]
            out[(dept, n)] = (len(set(due)), len(due))
    return out


def as_of(readings: dict, day: dt.date) -> dict:
    """The readings created before the end of ``day``: what a day's aggregates count."""
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    return {key: expires for key, expires in readings.items() if key[3] < end}
