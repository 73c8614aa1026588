"""Benchmark: the trips pipeline at scale, and the weekly-average question on large served tables.

Two parts, each printing its figures:

    python bench/trips_scale.py pipeline --sizes 1000000 10000000     # land -> raw -> bronze -> gold, rows/s
    python bench/trips_scale.py serve --rows 100000000                 # PostgreSQL/PostGIS and MariaDB (as TiDB)

``pipeline`` generates a feed file of N lines (devtools/samples/trips.py, defects and duplicates included), lands
it in a local landing folder, and runs the Spark jobs raw, bronze and gold (a local warehouse behind the JDBC
catalog) in a child process whose process tree's peak resident memory is sampled; it prints the rows/s of each
stage per size, and the cost per row of the largest size against the smallest (target: within 1.2x).

``serve`` writes N gold-shaped trips (the generator's regions, a year of days) straight into PostgreSQL (COPY into a
``gold.trips``-shaped table with the PostGIS origin point and its GiST index) and MariaDB (LOAD DATA into a table
with the TiDB loader's box indexes), then asks the weekly-average question for 200 random boxes (from a city block
to a whole region) and for every region over random ranges: p50/p95/p99 latency in each database, and every answer
of a sample checked exact against a brute-force count over the generated rows (target: p99 <= 1 s, exact).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "spark"))

from bench._common import GIB, run_measured  # noqa: E402
from devtools import local_stack  # noqa: E402

DS = "2026-11-20"
CATALOG_DB = "lakehouse_bench_trips"
SERVE_DB = "lakehouse_bench_trips_serve"
FIRST_DAY = dt.date(2026, 1, 1)


# --- pipeline ----------------------------------------------------------------------------------------------------


def run_pipeline(landing: Path, warehouse: Path) -> dict:
    """Child process: raw, bronze, gold of the trips jobs on the landed file; seconds per stage."""
    from lakehouse_jobs import trips
    from lakehouse_jobs.session import JobEnv, build_session

    env = JobEnv.from_env(
        {
            **local_stack.job_env("http://127.0.0.1:1", CATALOG_DB, driver_memory=os.environ.get("BENCH_MEM", "4g")),
            "LAKEHOUSE_WAREHOUSE": f"file://{warehouse}",
        }
    )
    spark = build_session("bench-trips", env)
    stages = {}
    t0 = time.perf_counter()
    raw = trips.run_raw(spark, DS, prefix=f"file://{landing}/")
    stages["raw"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    recon = trips.run_bronze(spark, DS, max_reject_ratio=1.0)
    stages["bronze"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    gold = trips.run_gold(spark, DS)
    stages["gold"] = time.perf_counter() - t0
    spark.stop()
    return {"stages": stages, "lines": raw["new_lines"], "accepted": recon.accepted, "gold": gold}


def pipeline(sizes: list[int], workdir: Path) -> int:
    from devtools.samples.trips import TripOptions, write_trip_file

    results = {}
    for size in sizes:
        run_dir = workdir / f"pipeline-{size}"
        shutil.rmtree(run_dir, ignore_errors=True)
        landing = run_dir / "landing" / "trips"
        t0 = time.perf_counter()
        write_trip_file(landing / f"trips_{size}.csv", size, seed=7, options=TripOptions(days=28))
        generate_s = time.perf_counter() - t0
        local_stack.recreate_database(CATALOG_DB)
        out = run_dir / "result.json"
        cmd = [sys.executable, __file__, "_child", str(landing), str(run_dir / "warehouse"), str(out)]
        _, peak = run_measured(cmd, run_dir / "spark.log")
        results[size] = {**json.loads(out.read_text()), "peak_rss": peak, "generate_s": generate_s}
    print(f"\n{'lines':>12}{'stage':>8}{'seconds':>10}{'rows/s':>12}{'us/row':>9}{'peak RSS':>10}")
    for r in results.values():
        for stage, seconds in r["stages"].items():
            rate = r["lines"] / seconds
            print(f"{r['lines']:>12,}{stage:>8}{seconds:>10.1f}{rate:>12,.0f}{1e6 / rate:>9.2f}")
        total = sum(r["stages"].values())
        print(f"{r['lines']:>12,}{'all':>8}{total:>10.1f}{r['lines'] / total:>12,.0f}"
              f"{1e6 * total / r['lines']:>9.2f}{r['peak_rss'] / GIB:>8.2f}Gi")  # fmt: skip
    small, large = min(results), max(results)
    if small != large:
        cost = [sum(results[s]["stages"].values()) / results[s]["lines"] for s in (small, large)]
        ratio = cost[1] / cost[0]
        verdict = "met" if ratio <= 1.2 else "MISSED"
        print(f"cost per row at {large:,} / at {small:,}: {ratio:.2f} (target <= 1.2: {verdict})")
    return 0


# --- serve -------------------------------------------------------------------------------------------------------


def gold_rows(count: int, seed: int):
    """Gold-shaped trips: (region, origin lon, origin lat, trip_date), drawn around the generator's regions."""
    from devtools.samples.trips import REGIONS

    rng = random.Random(seed)
    names = list(REGIONS)
    weights = [REGIONS[n].weight for n in names]
    for _ in range(count):
        name = rng.choices(names, weights)[0]
        region = REGIONS[name]
        lon = round(rng.gauss(region.longitude, region.spread * 1.5), 6)
        lat = round(rng.gauss(region.latitude, region.spread), 6)
        yield name, lon, lat, FIRST_DAY + dt.timedelta(days=rng.randrange(365))


def _write_tsv(path: Path, count: int, seed: int) -> None:
    with path.open("w", buffering=1 << 20) as out:
        for name, lon, lat, day in gold_rows(count, seed):
            out.write(f"{name}\t{lon}\t{lat}\t{day.isoformat()}\n")


def load_postgres(tsv: Path) -> float:
    import psycopg2

    local_stack.recreate_database(SERVE_DB, extensions=("postgis",))
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=SERVE_DB)
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(
            "CREATE SCHEMA gold; CREATE TABLE gold.trips (region text, origin_longitude double precision,"
            " origin_latitude double precision, trip_date date, origin_geom geometry(Point, 4326) GENERATED ALWAYS AS"
            " (ST_SetSRID(ST_MakePoint(origin_longitude, origin_latitude), 4326)) STORED)"
        )
        with tsv.open() as source:
            cur.copy_expert("COPY gold.trips (region, origin_longitude, origin_latitude, trip_date) FROM STDIN", source)
        cur.execute("CREATE INDEX ON gold.trips USING gist (origin_geom)")
        cur.execute("CREATE INDEX ON gold.trips (region, trip_date)")
        cur.execute("CREATE INDEX ON gold.trips (trip_date)")
        cur.execute("ANALYZE gold.trips")
    conn.commit()
    conn.close()
    return time.perf_counter() - t0


def load_mariadb(tsv: Path) -> float:
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", local_infile=True, autocommit=True)
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{SERVE_DB}`")
        cur.execute(f"CREATE DATABASE `{SERVE_DB}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        cur.execute(
            f"CREATE TABLE `{SERVE_DB}`.trips (id BIGINT AUTO_INCREMENT PRIMARY KEY, region VARCHAR(255),"
            " origin_longitude DOUBLE, origin_latitude DOUBLE, trip_date DATE,"
            " KEY trip_date_origin (trip_date, origin_longitude, origin_latitude),"
            " KEY origin_date (origin_longitude, origin_latitude, trip_date), KEY region_date (region, trip_date))"
        )
        cur.execute(
            f"LOAD DATA LOCAL INFILE '{tsv}' INTO TABLE `{SERVE_DB}`.trips"
            " (region, origin_longitude, origin_latitude, trip_date)"
        )
        cur.execute(f"ANALYZE TABLE `{SERVE_DB}`.trips")
    conn.close()
    return time.perf_counter() - t0


POSTGIS_WEEKLY = """
WITH weeks AS (
    SELECT w::date AS week_start,
           least(w::date + 6, %(to)s::date) - greatest(w::date, %(from)s::date) + 1 AS days
    FROM generate_series(date_trunc('week', %(from)s::date), %(to)s::date, interval '7 days') AS w
), counts AS (
    SELECT date_trunc('week', trip_date)::date AS week_start, count(*) AS trips
    FROM gold.trips
    WHERE trip_date BETWEEN %(from)s AND %(to)s AND {area}
    GROUP BY 1
)
SELECT w.week_start, w.days, coalesce(c.trips, 0), round(coalesce(c.trips, 0)::numeric / w.days, 4)
FROM weeks AS w LEFT JOIN counts AS c USING (week_start) ORDER BY 1
"""
POSTGIS_AREA = {
    "box": "ST_Intersects(origin_geom, ST_MakeEnvelope(%(min_lon)s, %(min_lat)s, %(max_lon)s, %(max_lat)s, 4326))",
    "region": "region = %(region)s",
}


def questions(count: int, seed: int) -> list[dict]:
    """``count`` random boxes (a city block to a whole region) and every region, each over a random range."""
    from devtools.samples.trips import REGIONS

    rng = random.Random(seed)
    asked = []
    for i in range(count + len(REGIONS)):
        start = FIRST_DAY + dt.timedelta(days=rng.randrange(300))
        end = start + dt.timedelta(days=rng.randrange(7, 120))
        if i >= count:
            asked.append({"region": list(REGIONS)[i - count], "from": start, "to": end})
            continue
        region = REGIONS[rng.choice(list(REGIONS))]
        half = 10 ** rng.uniform(-2.7, -0.7)  # ~0.002 to ~0.2 degrees: a block to a region
        lon, lat = rng.gauss(region.longitude, region.spread), rng.gauss(region.latitude, region.spread)
        box = {"min_lon": lon - half, "max_lon": lon + half, "min_lat": lat - half / 1.5, "max_lat": lat + half / 1.5}
        asked.append({**box, "from": start, "to": end})
    return asked


def brute_force(rows, asked: list[dict]) -> list[dict[dt.date, int]]:
    """Per question, trips per ISO week (Monday) with at least one, counted row by row in one pass."""
    counts: list[dict[dt.date, int]] = [{} for _ in asked]
    for region, lon, lat, day in rows:
        monday = None
        for q, found in zip(asked, counts, strict=True):
            if not q["from"] <= day <= q["to"]:
                continue
            if "region" in q:
                inside = region == q["region"]
            else:
                inside = q["min_lon"] <= lon <= q["max_lon"] and q["min_lat"] <= lat <= q["max_lat"]
            if inside:
                monday = monday or day - dt.timedelta(days=day.weekday())
                found[monday] = found.get(monday, 0) + 1
    return counts


def _timed(cur, sql: str, params: dict) -> tuple[float, dict[dt.date, int]]:
    t0 = time.perf_counter()
    cur.execute(sql, params)
    rows = cur.fetchall()
    return time.perf_counter() - t0, {row[0]: int(row[2]) for row in rows if int(row[2])}


def serve(rows: int, boxes: int, checked: int, workdir: Path, seed: int) -> int:
    import psycopg2
    import pymysql

    from include.api.queries import BoundingBox, Region, weekly_average_query

    workdir.mkdir(parents=True, exist_ok=True)
    tsv = workdir / f"gold_trips_{rows}_{seed}.tsv"
    if not tsv.exists():
        t0 = time.perf_counter()
        _write_tsv(tsv, rows, seed)
        print(f"generated {rows:,} gold-shaped trips in {time.perf_counter() - t0:.0f}s")
    pg_load, my_load = load_postgres(tsv), load_mariadb(tsv)
    print(f"loaded {rows:,} rows: PostgreSQL {pg_load:.0f}s ({rows / pg_load:,.0f} rows/s, with indexes),"
          f" MariaDB {my_load:.0f}s ({rows / my_load:,.0f} rows/s)")  # fmt: skip
    asked = questions(boxes, seed)
    pg = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=SERVE_DB)
    my = pymysql.connect(host="127.0.0.1", port=3306, user="root", database=SERVE_DB)
    latency = {"postgres": {"box": [], "region": []}, "mariadb": {"box": [], "region": []}}
    answers = []
    with pg.cursor() as pcur, my.cursor() as mcur:
        for q in asked:
            kind = "region" if "region" in q else "box"
            if kind == "region":
                area = Region(q["region"])
            else:
                area = BoundingBox(q["min_lon"], q["min_lat"], q["max_lon"], q["max_lat"])
            sql, params = weekly_average_query(area, q["from"], q["to"])
            pg_s, pg_counts = _timed(pcur, POSTGIS_WEEKLY.format(area=POSTGIS_AREA[kind]), {**q})
            my_s, my_counts = _timed(mcur, sql, params)
            latency["postgres"][kind].append(pg_s)
            latency["mariadb"][kind].append(my_s)
            answers.append((q, pg_counts, my_counts))
    pg.close()
    my.close()
    print(f"\nweekly average over {rows:,} trips: {boxes} boxes and {len(asked) - boxes} regions, random ranges")
    print(f"{'database':<10}{'area':<8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    worst = 0.0
    for database, kinds in latency.items():
        for kind, values in kinds.items():
            cuts = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
            worst = max(worst, cuts[98])
            print(f"{database:<10}{kind:<8}{cuts[49] * 1e3:>9.1f}{cuts[94] * 1e3:>9.1f}{cuts[98] * 1e3:>9.1f}")
    sample = random.Random(seed).sample(answers, min(checked, len(answers)))
    truth = brute_force(gold_rows(rows, seed), [q for q, _, _ in sample])
    exact = sum(
        1 for (_, pg_counts, my_counts), want in zip(sample, truth, strict=True) if pg_counts == my_counts == want
    )
    print(f"answers exact against a brute-force count: {exact} of {len(sample)} sampled")
    print(f"p99 <= 1 s: {'met' if worst <= 1.0 else 'MISSED'} (worst p99 {worst * 1e3:.0f} ms)")
    return 0 if exact == len(sample) else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("pipeline", help="rows/s of raw, bronze and gold per size, and peak memory")
    run.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    queries = commands.add_parser("serve", help="the weekly-average question on N served trips")
    queries.add_argument("--rows", type=int, default=100_000_000)
    queries.add_argument("--boxes", type=int, default=200)
    queries.add_argument("--checked", type=int, default=20, help="answers checked against a brute-force count")
    queries.add_argument("--seed", type=int, default=11)
    for sub in (run, queries):
        sub.add_argument("--workdir", type=Path, default=ROOT / ".artifacts" / "bench-trips")
    child = commands.add_parser("_child")
    child.add_argument("landing", type=Path)
    child.add_argument("warehouse", type=Path)
    child.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "_child":
        args.out.write_text(json.dumps(run_pipeline(args.landing, args.warehouse), default=str))
        return 0
    if args.command == "pipeline":
        return pipeline(args.sizes, args.workdir)
    return serve(args.rows, args.boxes, args.checked, args.workdir, args.seed)


if __name__ == "__main__":
    sys.exit(main())
