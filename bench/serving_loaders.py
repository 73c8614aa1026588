"""Benchmark the serving loaders against psql \\copy, Spark JDBC, LOAD DATA LOCAL INFILE and pandas to_sql.

Run from the project root with the local PostgreSQL (127.0.0.1:5432, user postgres) and MariaDB (127.0.0.1:3306,
root) up: ``.venv/bin/python bench/serving_loaders.py --rows 1000000``. It creates throwaway databases and drops
them afterwards. The table is gold-shaped (one ``ds`` slice: ints, decimals, timestamps, text), generated
deterministically as Arrow batches; each method loads the same rows into an empty table of the same types.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from include.serving.loads import mysql_type, postgres_type, utc_naive  # noqa: E402
from include.serving.postgres import load_slice_postgres  # noqa: E402
from include.serving.tidb import load_slice_tidb  # noqa: E402

DS = dt.date(2026, 11, 20)
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MY = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
# The columns of a gold-shaped slice; the loaders' own type mapping gives the SQL tables' DDL.
COLUMNS = {
    "ds": pa.date32(),
    "hour_start": pa.timestamp("us", tz="UTC"),
    "tweet_id": pa.int64(),
    "lang": pa.string(),
    "country_code": pa.string(),
    "tweets": pa.int64(),
    "revenue": pa.decimal128(12, 2),
    "share": pa.float64(),
    "note": pa.string(),
}
SCHEMA = pa.schema(COLUMNS)
MYSQL_TYPES = ", ".join(f"{f.name} {mysql_type(f.type)}" for f in SCHEMA)
SPARK_DDL = (
    "ds date, hour_start timestamp, tweet_id bigint, lang string, country_code string, tweets bigint,"
    " revenue decimal(12,2), share double, note string"
)
MYSQL_CSV = "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n'"
WORDS = np.array(
    ["alpha", "beta", 'quo"te', "comma,here", "tab\there", "new\nline", "back\\slash", "ünï", "日本", "ok"]
)
LANGS = np.array(["en", "es", "fr", "de", "pt", "ja", "und", "it", "ru", "ar"])


def generate(rows: int, batch_rows: int = 65_536) -> list[pa.RecordBatch]:
    """Deterministic gold-shaped batches (a fixed seed), one ``ds`` slice."""
    rng = np.random.default_rng(20261120)
    start = int(dt.datetime(2026, 11, 20, tzinfo=dt.UTC).timestamp() * 1_000_000)
    out = []
    for offset in range(0, rows, batch_rows):
        n = min(batch_rows, rows - offset)
        cents = np.zeros((n, 2), dtype=np.int64)  # decimal128: low and high 64-bit words, little-endian
        cents[:, 0] = rng.integers(-(10**9), 10**11, n)
        cents[:, 1] = np.where(cents[:, 0] < 0, -1, 0)  # two's complement sign extension
        countries = np.array(["US", "GB", "IN", "BR", "FR"])[rng.integers(0, 5, n)]
        notes = np.char.add(np.char.add(WORDS[rng.integers(0, 10, n)], " "), WORDS[rng.integers(0, 10, n)])
        columns = [
            pa.array(np.full(n, (DS - dt.date(1970, 1, 1)).days, dtype=np.int32), pa.date32()),
            pa.array(start + rng.integers(0, 86_400_000_000, n), pa.timestamp("us", tz="UTC")),
            pa.array(np.arange(offset, offset + n, dtype=np.int64) + 1_245_681_120_845_565_952),
            pa.array(LANGS[rng.integers(0, 10, n)]),
            pa.array(countries, mask=rng.random(n) < 0.1),
            pa.array(rng.integers(0, 100_000, n)),
            pa.Array.from_buffers(pa.decimal128(12, 2), n, [None, pa.py_buffer(cents.tobytes())]),
            pa.array(rng.random(n)),
            pa.array(notes),
        ]
        out.append(pa.record_batch(columns, schema=SCHEMA))
    return out


@dataclass
class Timing:
    target: str
    method: str
    rows: int
    seconds: float
    note: str = ""

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def write_csv(path: Path, batches: list[pa.RecordBatch], *, mysql: bool) -> None:
    """The same rows as a CSV file (not timed): PostgreSQL's CSV, or MySQL's (NULL word, naive UTC DATETIME)."""
    options = pacsv.WriteOptions(include_header=False, null_string="NULL" if mysql else "")
    with open(path, "wb") as sink:
        for batch in batches:
            pacsv.write_csv(utc_naive(batch, bool_as_int=True) if mysql else batch, sink, options)


def run(cmd: list[str], **kwargs) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode:
        raise RuntimeError(f"{cmd[0]} failed ({done.returncode}): {done.stderr.strip()}")


class Postgres:
    def __init__(self) -> None:
        import psycopg2

        self.name = f"bench_serving_{uuid.uuid4().hex[:8]}"
        self.admin = psycopg2.connect(dbname="postgres", **PG)
        self.admin.autocommit = True
        self.sql("CREATE DATABASE " + self.name)
        self.conn = psycopg2.connect(dbname=self.name, **PG)
        self.conn.autocommit = True
        self.ddl = ", ".join(f"{f.name} {postgres_type(f.type)}" for f in SCHEMA)

    def sql(self, statement: str, conn=None) -> list[tuple]:
        with (conn or self.admin).cursor() as cur:
            cur.execute(statement)
            return cur.fetchall() if cur.description else []

    def count(self, table: str) -> int:
        self.sql("CHECKPOINT", self.conn)
        return self.sql(f"SELECT count(*) FROM {table}", self.conn)[0][0]

    def drop(self) -> None:
        self.conn.close()
        self.sql(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        self.admin.close()


class MariaDB:
    def __init__(self) -> None:
        import pymysql

        self.name = f"bench_serving_{uuid.uuid4().hex[:8]}"
        self.conn = pymysql.connect(**MY, autocommit=True, local_infile=True, charset="utf8mb4")
        self.sql(f"CREATE DATABASE {self.name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")

    def sql(self, statement: str) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(statement)
            return list(cur.fetchall())

    def count(self, table: str) -> int:
        return self.sql(f"SELECT count(*) FROM {self.name}.{table}")[0][0]

    def drop(self) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {self.name}")
        self.conn.close()


def bench_postgres(batches: list[pa.RecordBatch], rows: int, csv: Path, to_sql_rows: int) -> list[Timing]:
    db = Postgres()
    out = []
    try:
        write_csv(csv, batches, mysql=False)
        db.sql(f"CREATE TABLE bench_copy ({db.ddl})", db.conn)
        db.sql("CHECKPOINT")
        copy = rf"\copy bench_copy FROM '{csv}' WITH (FORMAT csv)"
        seconds = timed(lambda: run(["psql", "-h", PG["host"], "-U", PG["user"], "-d", db.name, "-c", copy]))
        assert db.count("bench_copy") == rows
        out.append(Timing("postgresql", "psql \\copy (CSV file)", rows, seconds))

        import psycopg2

        conn = psycopg2.connect(dbname=db.name, **PG)
        seconds = timed(lambda: load_slice_postgres(conn, "bench", DS, SCHEMA, 1, iter(batches)))
        assert db.count("gold.bench") == rows
        out.append(Timing("postgresql", "load_slice_postgres", rows, seconds))
        seconds = timed(lambda: load_slice_postgres(conn, "bench", DS, SCHEMA, 2, iter(batches)))
        out.append(
            Timing("postgresql", "load_slice_postgres, replacing", rows, seconds, "info: swap out a loaded slice")
        )
        conn.close()

        out.append(bench_spark_jdbc(db, batches, rows))
        url = f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{db.name}"
        out.append(bench_to_sql("postgresql", url, batches, to_sql_rows, rows))
    finally:
        db.drop()
    return out


def bench_spark_jdbc(db: Postgres, batches: list[pa.RecordBatch], rows: int) -> Timing:
    """Spark's JDBC writer with its defaults, from a cached DataFrame of the same rows (caching not timed)."""
    from pyspark.sql import SparkSession

    jars = ",".join(str(p) for p in sorted((ROOT / ".jars").glob("*.jar")))
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("bench-serving")
        .config("spark.jars", jars)
        .config("spark.driver.memory", "3g")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    try:
        spark.sparkContext.setLogLevel("ERROR")
        frame = spark.createDataFrame(pa.Table.from_batches(batches).to_pandas(), schema=SPARK_DDL).cache()
        assert frame.count() == rows
        db.sql(f"CREATE TABLE bench_spark ({db.ddl})", db.conn)
        url = f"jdbc:postgresql://{PG['host']}:{PG['port']}/{db.name}"
        properties = {"user": PG["user"], "password": "", "driver": "org.postgresql.Driver"}
        db.sql("CHECKPOINT")
        seconds = timed(lambda: frame.write.jdbc(url, "bench_spark", mode="append", properties=properties))
        assert db.count("bench_spark") == rows
        return Timing("postgresql", "Spark df.write.jdbc", rows, seconds, "defaults: batchsize 1000, 2 partitions")
    finally:
        spark.stop()


def bench_to_sql(target: str, url: str, batches: list[pa.RecordBatch], subset: int, rows: int) -> Timing:
    """pandas to_sql with its defaults through SQLAlchemy, on the first ``subset`` rows."""
    import sqlalchemy

    subset = min(subset, rows)
    frame = pa.Table.from_batches(batches).slice(0, subset).to_pandas()
    engine = sqlalchemy.create_engine(url)
    try:
        seconds = timed(lambda: frame.to_sql("bench_to_sql", engine, index=False, if_exists="append"))
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT count(*) FROM bench_to_sql")).scalar() == subset
    finally:
        engine.dispose()
    note = f"timed on {subset:,} rows, rows/s extrapolated" if subset < rows else ""
    return Timing(target, "pandas to_sql", subset, seconds, note)


def bench_mysql(batches: list[pa.RecordBatch], rows: int, csv: Path, to_sql_rows: int) -> list[Timing]:
    db = MariaDB()
    out = []
    try:
        write_csv(csv, batches, mysql=True)
        db.sql(f"CREATE TABLE {db.name}.bench_load_data ({MYSQL_TYPES}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        load = f"LOAD DATA LOCAL INFILE '{csv}' INTO TABLE bench_load_data CHARACTER SET utf8mb4 {MYSQL_CSV}"
        client = ["mariadb", "-h", MY["host"], "-P", str(MY["port"]), "-u", MY["user"], "--local-infile=1", db.name]
        seconds = timed(lambda: run([*client, "-e", load]))
        assert db.count("bench_load_data") == rows
        out.append(Timing("mysql (MariaDB)", "LOAD DATA LOCAL INFILE (CSV file)", rows, seconds))

        import pymysql

        conn = pymysql.connect(**MY, autocommit=True, local_infile=True, charset="utf8mb4")
        seconds = timed(lambda: load_slice_tidb(conn, "bench", DS, SCHEMA, 1, iter(batches), database=db.name))
        assert db.count("bench") == rows
        out.append(Timing("mysql (MariaDB)", "load_slice_tidb", rows, seconds))
        seconds = timed(lambda: load_slice_tidb(conn, "bench", DS, SCHEMA, 2, iter(batches), database=db.name))
        out.append(
            Timing("mysql (MariaDB)", "load_slice_tidb, replacing", rows, seconds, "info: incl. deleting the old rows")
        )
        conn.close()

        url = f"mysql+pymysql://{MY['user']}@{MY['host']}:{MY['port']}/{db.name}?charset=utf8mb4"
        out.append(bench_to_sql("mysql (MariaDB)", url, batches, to_sql_rows, rows))
    finally:
        db.drop()
    return out


def report(timings: list[Timing]) -> bool:
    print(f"{'target':<17} {'method':<36} {'rows':>10} {'seconds':>9} {'rows/s':>11}  note")
    for t in timings:
        print(f"{t.target:<17} {t.method:<36} {t.rows:>10,} {t.seconds:>9.2f} {t.rows_per_s:>11,.0f}  {t.note}")
    by = {t.method: t.rows_per_s for t in timings}
    checks = [
        ("PostgreSQL loader vs psql \\copy", by["load_slice_postgres"] / by["psql \\copy (CSV file)"], 0.8),
        ("PostgreSQL loader vs Spark JDBC", by["load_slice_postgres"] / by["Spark df.write.jdbc"], 10),
        ("PostgreSQL loader vs to_sql", by["load_slice_postgres"] / by_target(timings, "postgresql"), None),
        ("MySQL loader vs LOAD DATA", by["load_slice_tidb"] / by["LOAD DATA LOCAL INFILE (CSV file)"], 0.7),
        ("MySQL loader vs to_sql", by["load_slice_tidb"] / by_target(timings, "mysql (MariaDB)"), 5),
    ]
    print()
    ok = True
    for name, ratio, target in checks:
        verdict = ""
        if target is not None:
            verdict = f"  (target >= {target:g}x: {'met' if ratio >= target else 'MISSED'})"
            ok = ok and ratio >= target
        print(f"{name:<36} {ratio:>8.2f}x throughput{verdict}")
    return ok


def by_target(timings: list[Timing], target: str) -> float:
    return next(t.rows_per_s for t in timings if t.target == target and t.method == "pandas to_sql")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the slice (default 1,000,000)")
    parser.add_argument("--to-sql-rows", type=int, default=100_000, help="rows pandas to_sql is timed on")
    args = parser.parse_args(argv)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    batches = generate(args.rows)
    print(
        f"{args.rows:,} rows, {pa.Table.from_batches(batches).nbytes / 2**20:.0f} MiB in Arrow, {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as directory:
        timings = bench_postgres(batches, args.rows, Path(directory) / "pg.csv", args.to_sql_rows)
        timings += bench_mysql(batches, args.rows, Path(directory) / "my.csv", args.to_sql_rows)
    return 0 if report(timings) else 1


if __name__ == "__main__":
    sys.exit(main())
