"""A year of hourly product files: this pipeline (landing -> analytics.gold.product_master) against the methods of the
project it replaces and `psql \\copy`, on the same files and the same PostgreSQL.

Measured, in one run:

- this pipeline: the products raw, bronze and gold Spark jobs (``python -m lakehouse_jobs``, as the local runner
  runs them) reading the files from landing in S3 (moto), then the serving loader of gold.product_master into
  PostgreSQL; each stage's seconds, rows/s and peak memory (resident, process tree);
- the replaced project's two methods, as its README describes them: Spark reads all the Parquet files and writes
  ``product.product_master`` over JDBC; Spark writes CSV chunks, then psycopg2 ``COPY`` loads them one file at a
  time; both read the files from local disk, as that project does;
- ``psql \\copy`` of the same rows from one CSV file, the floor (the CSV's writing not timed).

Run ``source .env.local && .venv/bin/python bench/products_year.py --hours 168`` for a week; the default is a
year (8,760 files, about 17 M rows).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "spark")]

from bench._common import peak_rss, run_measured  # noqa: E402
from devtools import local_stack  # noqa: E402

DS = "2026-11-20"
PG = {"host": local_stack.PG_HOST, "port": local_stack.PG_PORT, "user": local_stack.PG_USER}
TARGET_DDL = (
    "department_name text, sensor_serial text, create_at timestamp, product_name text, product_expire timestamp"
)
COLUMNS = "department_name, sensor_serial, create_at, product_name, product_expire"


# --- the files -----------------------------------------------------------------------------------------------


def _write_hours(args: tuple[str, int, int, int]) -> int:
    from devtools.samples.products import FeedOptions, attachments, file_name, hour_frame, write_frame

    folder, first, count, seed = args
    options = FeedOptions()
    links = attachments(seed, options)
    rows = 0
    for index in range(first, first + count):
        frame = hour_frame(index, seed, options, links)
        write_frame(frame, Path(folder) / file_name(options.start + dt.timedelta(hours=index)))
        rows += len(frame)
    return rows


def generate(folder: Path, hours: int, seed: int, workers: int) -> int:
    """Write the hourly files (the real feed's shape and defect rate) with ``workers`` processes; returns rows."""
    chunk = max(1, -(-hours // (workers * 8)))
    jobs = [(str(folder), first, min(chunk, hours - first), seed) for first in range(0, hours, chunk)]
    with ProcessPoolExecutor(workers) as pool:
        return sum(pool.map(_write_hours, jobs))


def upload(s3, folder: Path, prefix: str = "products/") -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda p: s3.upload_file(str(p), "landing", prefix + p.name), sorted(folder.iterdir())))


# --- measuring -------------------------------------------------------------------------------------------------


def in_process(action, *args) -> tuple[float, int, object]:
    """Time ``action(*args)`` in this process; seconds, peak resident memory of this process tree, result."""
    started = time.perf_counter()
    with peak_rss(os.getpid()) as peak:
        result = action(*args)
    return time.perf_counter() - started, peak[0], result


# --- this pipeline ---------------------------------------------------------------------------------------------


def pipeline(env: dict, s3_endpoint: str, catalog_db: str, analytics: str, work: Path) -> list[dict]:
    """raw, bronze, gold through the job CLI, then the PostgreSQL serving loader: one timing per stage."""
    stages = []
    job_env = {**os.environ, **env, "PYTHONPATH": str(ROOT / "spark")}
    for layer, options in (("raw", []), ("bronze", ["--max-reject-ratio", "0.1"]), ("gold", [])):
        cmd = [sys.executable, "-m", "lakehouse_jobs", "products", layer, "--ds", DS, *options]
        seconds, peak = run_measured(cmd, work / f"{layer}.log", job_env)
        stages.append({"stage": f"spark {layer}", "seconds": seconds, "peak_rss": peak})
    seconds, peak, rows = in_process(serve, s3_endpoint, catalog_db, analytics)
    stages.append({"stage": "serve PostgreSQL", "seconds": seconds, "peak_rss": peak, "rows": rows})
    return stages


def serve(s3_endpoint: str, catalog_db: str, analytics: str) -> int:
    import psycopg2

    from include.serving.postgres import load_slice_postgres
    from include.serving.source import read_slice

    catalog = local_stack.pyiceberg_catalog(s3_endpoint, catalog_db)
    data = read_slice("gold.product_master", DS, catalog=catalog)
    conn = psycopg2.connect(dbname=analytics, **PG)
    try:
        return load_slice_postgres(conn, "product_master", DS, data.schema, data.snapshot_id, data.batches).rows
    finally:
        conn.close()


# --- the replaced project's methods and the floor ---------------------------------------------------------------


def spark_session():
    from pyspark.sql import SparkSession

    jars = ",".join(str(p) for p in sorted((ROOT / ".jars").glob("*.jar")))
    return (
        SparkSession.builder.master("local[*]")
        .appName("bench-products-baselines")
        .config("spark.jars", jars)
        .config("spark.driver.memory", "3g")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


def _sql(dbname: str, *statements: str) -> list[tuple]:
    import psycopg2

    conn = psycopg2.connect(dbname=dbname, **PG)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def spark_jdbc(folder: Path, dbname: str) -> int:
    """Spark reads every Parquet file and appends them to product.product_master over JDBC (defaults)."""
    _sql(dbname, "CREATE SCHEMA IF NOT EXISTS product", f"CREATE TABLE product.product_master ({TARGET_DDL})")
    spark = spark_session()
    try:
        frame = spark.read.parquet(str(folder)).select(*COLUMNS.split(", "))
        url = f"jdbc:postgresql://{PG['host']}:{PG['port']}/{dbname}"
        properties = {"user": PG["user"], "password": "", "driver": "org.postgresql.Driver"}
        frame.write.jdbc(url, "product.product_master", mode="append", properties=properties)
    finally:
        spark.stop()
    return _sql(dbname, "SELECT count(*) FROM product.product_master")[0][0]


def spark_csv_copy(folder: Path, work: Path, dbname: str) -> int:
    """Spark writes CSV chunks; psycopg2 COPY loads each chunk file into product.product_master."""
    import psycopg2

    _sql(dbname, "CREATE SCHEMA IF NOT EXISTS product", f"CREATE TABLE product.product_master ({TARGET_DDL})")
    out = work / "csv-chunks"
    spark = spark_session()
    try:
        spark.read.parquet(str(folder)).select(*COLUMNS.split(", ")).write.csv(str(out), mode="overwrite")
    finally:
        spark.stop()
    conn = psycopg2.connect(dbname=dbname, **PG)
    try:
        for chunk in sorted(out.glob("part-*.csv")):
            with conn.cursor() as cur, open(chunk) as source:
                cur.copy_expert(f"COPY product.product_master ({COLUMNS}) FROM STDIN WITH (FORMAT csv)", source)
            conn.commit()
    finally:
        conn.close()
    shutil.rmtree(out, ignore_errors=True)
    return _sql(dbname, "SELECT count(*) FROM product.product_master")[0][0]


def write_csv(folder: Path, path: Path) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.dataset as ds

    table = ds.dataset(str(folder), format="parquet").to_table(columns=COLUMNS.split(", "))
    pacsv.write_csv(table, path, pacsv.WriteOptions(include_header=False))


def psql_copy(csv: Path, dbname: str) -> int:
    _sql(dbname, "CREATE SCHEMA IF NOT EXISTS product", f"CREATE TABLE product.product_master ({TARGET_DDL})")
    command = f"\\copy product.product_master ({COLUMNS}) FROM '{csv}' WITH (FORMAT csv)"
    subprocess.run(
        ["psql", "-h", PG["host"], "-p", str(PG["port"]), "-U", PG["user"], "-d", dbname, "-v", "ON_ERROR_STOP=1",
         "-c", command],
        check=True, capture_output=True,
    )  # fmt: skip
    return _sql(dbname, "SELECT count(*) FROM product.product_master")[0][0]


def baseline(name: str, action, *args) -> dict:
    dbname = f"bench_products_{uuid.uuid4().hex[:8]}"
    local_stack.recreate_database(dbname)
    try:
        seconds, peak, rows = in_process(action, *args, dbname)
    finally:
        local_stack.drop_database(dbname)
    return {"method": name, "seconds": seconds, "peak_rss": peak, "rows": rows}


# --- report ----------------------------------------------------------------------------------------------------


def report(hours: int, rows: int, stages: list[dict], baselines: list[dict]) -> dict:
    total = sum(s["seconds"] for s in stages)
    print(f"\n{hours} hourly files, {rows:,} rows")
    print(f"{'this pipeline, stage':<34}{'seconds':>10}{'rows/s':>12}{'peak MiB':>10}")
    for s in stages:
        print(f"  {s['stage']:<32}{s['seconds']:>10.1f}{rows / s['seconds']:>12,.0f}{s['peak_rss'] / 2**20:>10,.0f}")
    print(f"  {'landing -> analytics.gold':<32}{total:>10.1f}{rows / total:>12,.0f}")
    print(f"{'method':<34}{'seconds':>10}{'rows/s':>12}{'peak MiB':>10}{'pipeline / it':>15}")
    for b in baselines:
        ratio = total / b["seconds"]
        line = f"  {b['method']:<32}{b['seconds']:>10.1f}{b['rows'] / b['seconds']:>12,.0f}"
        print(f"{line}{b['peak_rss'] / 2**20:>10,.0f}{ratio:>14.2f}x")
    faster = min((b for b in baselines if b["method"] != "psql \\copy (floor)"), key=lambda b: b["seconds"])
    year = total * 8_760 / hours
    print(f"pipeline vs the faster replaced method ({faster['method']}): {total / faster['seconds']:.2f}x its time")
    print(f"pipeline scaled linearly to 8,760 files: {year / 60:.1f} min (target <= 10 min)")
    return {"hours": hours, "rows": rows, "stages": stages, "baselines": baselines, "pipeline_seconds": total}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=int, default=8_760, help="hourly files (default a year: 8760)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2, help="processes generating the files")
    parser.add_argument("--skip-baselines", action="store_true", help="measure this pipeline only")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (the files, each job's log)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-products-"))
    files = work / "files"
    files.mkdir()
    started = time.perf_counter()
    rows = generate(files, args.hours, args.seed, args.workers)
    print(f"generated {args.hours} files, {rows:,} rows in {time.perf_counter() - started:.0f}s under {files}")
    catalog_db, analytics = (f"bench_products_{kind}_{uuid.uuid4().hex[:6]}" for kind in ("catalog", "analytics"))
    try:
        with local_stack.moto_s3(work / "moto.log") as endpoint:
            local_stack.recreate_database(catalog_db)
            local_stack.recreate_database(analytics)
            upload(local_stack.s3_client(endpoint), files)
            env = local_stack.job_env(endpoint, catalog_db, driver_memory="3g")
            stages = pipeline(env, endpoint, catalog_db, analytics, work)
        baselines = []
        if not args.skip_baselines:
            baselines.append(baseline("Spark read -> JDBC write", spark_jdbc, files))
            baselines.append(baseline("Spark -> CSV chunks -> COPY", spark_csv_copy, files, work))
            write_csv(files, work / "all.csv")
            baselines.append(baseline("psql \\copy (floor)", psql_copy, work / "all.csv"))
        figures = report(args.hours, rows, stages, baselines) if baselines else {"stages": stages}
        if not baselines:
            print(json.dumps(stages, indent=2))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2, default=str))
    finally:
        for name in (catalog_db, analytics):
            local_stack.drop_database(name)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
