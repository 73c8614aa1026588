"""Benchmark: the product master end to end, Parquet drops in S3 -> raw -> bronze -> gold -> PostgreSQL.

Generates ``--rows`` product rows in ``--files`` Parquet drops (schema drift, bad rows, re-sent rows; by default
every product id once, so the master holds about 95% of the rows), drops them in the landing bucket (moto's S3
server standing in for MinIO), runs the three Spark jobs exactly as the DAG's local runner does (one
``python -m lakehouse_jobs products <layer>`` process each, JVM start included), then serves the gold slice to
PostgreSQL with the serve DAG's loader (PyIceberg Arrow batches -> ``load_slice_postgres``: COPY + partition swap).
The same slice is then written by Spark's JDBC writer (the source project's first approach), with its defaults
and with batched inserts rewritten by the driver, from a DataFrame read from the same Iceberg table.

    python bench/products_end_to_end.py                    # 5,000,000 rows
    python bench/products_end_to_end.py --rows 1000000

Needs the local PostgreSQL (127.0.0.1:5432, user postgres); creates throwaway databases and drops them.
The Iceberg warehouse is a local folder by default (``--warehouse s3`` puts it in moto too, which then
measures moto's Python server more than the jobs).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "spark"))

from include import local_stack  # noqa: E402

DS = "2026-11-20"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


@dataclass
class Stage:
    name: str
    seconds: float
    rows: int
    note: str = ""

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def timed(action: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def run_layer(layer: str, env: dict[str, str], log_dir: Path) -> None:
    """One Spark job as the DAG's local runner starts it: a fresh ``python -m lakehouse_jobs`` process."""
    with open(log_dir / f"{layer}.log", "w") as log:
        proc = subprocess.run(
            [sys.executable, "-m", "lakehouse_jobs", "products", layer, "--ds", DS],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if proc.returncode:
        tail = (log_dir / f"{layer}.log").read_text().strip().splitlines()[-3:]
        raise RuntimeError(f"products {layer} failed: {' | '.join(tail)}")


def create_database(prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    local_stack.recreate_database(name)
    return name


def serve_postgres(catalog, database: str) -> tuple[float, int]:
    """The serve DAG's PostgreSQL task body on the gold slice: PyIceberg read + COPY + swap, streamed."""
    import psycopg2

    from include.serving.postgres import load_slice_postgres
    from include.serving.source import read_slice

    conn = psycopg2.connect(dbname=database, **PG)
    try:
        seconds, result = timed(lambda: load_slice_postgres(conn, "product_master", DS, *_slice(read_slice, catalog)))
    finally:
        conn.close()
    return seconds, result.rows


def _slice(read_slice, catalog) -> tuple:
    gold = read_slice("gold.product_master", DS, catalog=catalog)
    return gold.schema, gold.snapshot_id, gold.batches


def spark_jdbc(env: dict[str, str], database: str) -> list[Stage]:
    """Spark's JDBC writer on the same slice, read from the same Iceberg table (session start not timed)."""
    from lakehouse_jobs.session import JobEnv, build_session

    spark = build_session("bench-products-jdbc", JobEnv.from_env(env))
    stages = []
    try:
        frame = spark.table("lake.gold.product_master").where(f"ds = DATE'{DS}'")
        url = f"jdbc:postgresql://{PG['host']}:{PG['port']}/{database}"
        variants = [
            ("Spark df.write.jdbc (defaults)", {}, "batchsize 1000, one INSERT per row in each batch"),
            (
                "Spark df.write.jdbc (tuned)",
                {"batchsize": "10000", "url": url + "?reWriteBatchedInserts=true"},
                "batchsize 10000, reWriteBatchedInserts=true",
            ),
        ]
        for n, (name, options, note) in enumerate(variants):
            properties = {"user": PG["user"], "password": "", "driver": "org.postgresql.Driver"}
            target_url = options.pop("url", url)
            properties.update(options)
            seconds, _ = timed(
                lambda u=target_url, t=f"jdbc_{n}", p=properties: frame.write.jdbc(u, t, mode="overwrite", properties=p)
            )
            rows = _count(database, f"jdbc_{n}")
            stages.append(Stage(name, seconds, rows, note))
    finally:
        spark.stop()
    return stages


def _count(database: str, table: str) -> int:
    import psycopg2

    conn = psycopg2.connect(dbname=database, **PG)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table}")
            return cur.fetchone()[0]
    finally:
        conn.close()


def report(stages: list[Stage], master_rows: int) -> None:
    print(f"\n{'stage':<34} {'seconds':>9} {'rows':>11} {'rows/s':>11}  note")
    for s in stages:
        print(f"{s.name:<34} {s.seconds:>9.1f} {s.rows:>11,} {s.rows_per_s:>11,.0f}  {s.note}")
    end_to_end = [s for s in stages if s.name.startswith(("land", "spark", "postgres"))]
    total = sum(s.seconds for s in end_to_end)
    print(f"{'end to end (land -> PostgreSQL)':<34} {total:>9.1f} {master_rows:>11,} {master_rows / total:>11,.0f}")
    by = {s.name: s for s in stages}
    loader = by["postgres: load_slice_postgres"].rows_per_s
    for name in ("Spark df.write.jdbc (defaults)", "Spark df.write.jdbc (tuned)"):
        print(f"PostgreSQL loader vs {name[6:]:<27} {loader / by[name].rows_per_s:>6.2f}x throughput")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="landed product rows (default 5,000,000)")
    parser.add_argument("--files", type=int, default=20, help="Parquet drops (default 20)")
    parser.add_argument("--products", type=int, help="distinct product ids (default: --rows, one version each)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--driver-memory", default=os.environ.get("BENCH_MEM", "4g"))
    parser.add_argument("--warehouse", choices=("file", "s3"), default="file")
    parser.add_argument("--log-dir", type=Path, help="keep the Spark jobs' logs here (default: a temp folder)")
    args = parser.parse_args(argv)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from include.samples.products import ProductOptions, generate_product_files, upload_files

    rows_per_file = -(-args.rows // args.files)
    stages: list[Stage] = []
    print(f"{args.rows:,} rows in {args.files} files, {os.cpu_count()} CPUs, driver memory {args.driver_memory}")
    with tempfile.TemporaryDirectory(prefix="bench-products-") as work, local_stack.moto_s3() as endpoint:
        work_dir = Path(work)
        log_dir = args.log_dir or work_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        catalog_db = create_database("lakehouse_bench_products")
        analytics_db = create_database("analytics_bench_products")
        try:
            options = ProductOptions(products=args.products or rows_per_file * args.files)
            seconds, paths = timed(
                lambda: generate_product_files(work_dir / "drops", args.files, rows_per_file, args.seed, options)
            )
            landed_rows = rows_per_file * args.files
            size = sum(p.stat().st_size for p in paths)
            stages.append(
                Stage("generate (not in end to end)", seconds, landed_rows, f"{size / 2**20:.0f} MiB Parquet")
            )
            client = local_stack.s3_client(endpoint)
            seconds, _ = timed(lambda: upload_files(client, paths))
            stages.append(Stage("land: upload to landing/products/", seconds, landed_rows, "moto S3"))

            env = local_stack.job_env(endpoint, catalog_db, driver_memory=args.driver_memory)
            if args.warehouse == "file":
                env["LAKEHOUSE_WAREHOUSE"] = f"file://{work_dir}/warehouse"
            for layer in ("raw", "bronze", "gold"):
                seconds, _ = timed(lambda layer=layer: run_layer(layer, env, log_dir))
                stages.append(Stage(f"spark {layer}", seconds, landed_rows, "own JVM, as the DAG runs it"))

            catalog = local_stack.pyiceberg_catalog(endpoint, catalog_db)
            if args.warehouse == "file":
                from pyiceberg.catalog.sql import SqlCatalog

                catalog = SqlCatalog("lake", uri=catalog.properties["uri"], warehouse=env["LAKEHOUSE_WAREHOUSE"])
            master_rows = len(
                catalog.load_table("gold.product_master").scan(selected_fields=("product_id",)).to_arrow()
            )
            seconds, served = serve_postgres(catalog, analytics_db)
            assert served == master_rows, (served, master_rows)
            stages.append(Stage("postgres: load_slice_postgres", seconds, served, "PyIceberg batches -> COPY + swap"))
            stages.extend(spark_jdbc(env, analytics_db))
            assert all(s.rows == master_rows for s in stages if s.name.startswith("Spark df")), stages
        finally:
            local_stack.drop_database(catalog_db)
            local_stack.drop_database(analytics_db)
    print(f"product master: {master_rows:,} rows (slice ds={DS})")
    report(stages, master_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
