"""Benchmark: the tweets Spark jobs (raw -> bronze -> gold) against DuckDB doing the same work on one machine.

Both engines read the same generated TSV, keep every line with its line number (raw), classify, type and
de-duplicate it (bronze + rejects), and build the three gold aggregates, writing each layer as Parquet
(Spark: Iceberg tables in a local warehouse behind the JDBC catalog; DuckDB: Parquet files). Each engine runs
in its own process; the parent samples the peak resident memory of that process tree.

    python bench/tweets_spark_vs_duckdb.py                 # 10,000,000 lines
    python bench/tweets_spark_vs_duckdb.py --lines 1000000

Target (issue 2): Spark's throughput >= 1/3 of DuckDB's, Spark's peak memory < 6 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import GIB, run_measured  # noqa: E402
from bench._eventlog import format_profile, sql_time_by_description  # noqa: E402
from devtools import local_stack  # noqa: E402

DS = "2020-03-30"
ENGINES = ("duckdb", "spark", "simple-spark")
CATALOG_DB = "lakehouse_bench"

# DuckDB's version of the bronze rules in lakehouse_jobs.tweets.classify.
DUCKDB_SQL = r"""
CREATE TABLE raw AS
SELECT DATE '{ds}' AS ds, line, '{src}' AS _source_file, row_number() OVER () AS _line_number,
       now() AS _loaded_at
FROM read_csv('{src}', columns={{'line': 'VARCHAR'}}, delim='\x01', quote='', escape='', header=false,
              auto_detect=false, strict_mode=false, null_padding=false);
COPY raw TO '{out}/raw.parquet' (FORMAT parquet, COMPRESSION zstd);

CREATE TABLE parsed AS
WITH f AS (
  SELECT *, string_split(line, chr(9)) AS p FROM raw
), t AS (
  SELECT *, len(p) AS n, trim(p[1]) AS id_text, trim(p[2]) AS d, trim(p[3]) AS tm,
         nullif(lower(trim(p[4])), '') AS lang, nullif(upper(trim(p[5])), '') AS country_code
  FROM f
), c AS (
  SELECT *,
    CASE WHEN regexp_full_match(id_text, '[0-9]{{1,19}}') THEN TRY_CAST(id_text AS BIGINT) END AS tweet_id,
    CASE WHEN regexp_full_match(d, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}')
          AND regexp_full_match(tm, '[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}')
         THEN try_strptime(d || ' ' || tm, '%Y-%m-%d %H:%M:%S') END AS created_at
  FROM t
)
SELECT *,
  CASE WHEN _line_number = 1 AND line = '{header}' THEN NULL
       WHEN line IS NULL OR trim(line) = '' THEN 'blank_line'
       WHEN line = '{header}' THEN 'repeated_header'
       WHEN n <> 5 THEN 'wrong_column_count'
       WHEN tweet_id IS NULL THEN 'bad_tweet_id'
       WHEN created_at IS NULL THEN 'bad_timestamp' END AS reason,
  _line_number = 1 AND line = '{header}' AS is_header
FROM c;

COPY (SELECT ds, reason, line, _source_file, _line_number, _loaded_at FROM parsed WHERE reason IS NOT NULL)
  TO '{out}/rejects.parquet' (FORMAT parquet, COMPRESSION zstd);
CREATE TABLE bronze AS
SELECT ds, tweet_id, created_at, lang, country_code, _source_file, _line_number, _loaded_at
FROM parsed WHERE reason IS NULL AND NOT is_header
QUALIFY row_number() OVER (PARTITION BY tweet_id ORDER BY _source_file, _line_number) = 1;
COPY bronze TO '{out}/bronze.parquet' (FORMAT parquet, COMPRESSION zstd);

COPY (SELECT ds, date_trunc('hour', created_at) AS hour_start, count(*) AS tweets FROM bronze GROUP BY ALL)
  TO '{out}/per_hour.parquet' (FORMAT parquet);
COPY (SELECT ds, CAST(created_at AS DATE) AS day, count(*) AS tweets FROM bronze GROUP BY ALL)
  TO '{out}/per_day.parquet' (FORMAT parquet);
COPY (SELECT ds, coalesce(lang, 'und') AS lang, count(*) AS tweets FROM bronze GROUP BY ALL)
  TO '{out}/by_language.parquet' (FORMAT parquet);
"""


def run_duckdb(source: Path, out: Path) -> dict:
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    header = "tweet_id\tdate\ttime\tlang\tcountry_code".replace("\t", "' || chr(9) || '")
    sql = DUCKDB_SQL.format(ds=DS, src=source, out=out, header=header)
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET threads = 2; SET preserve_insertion_order = true; SET TimeZone = 'UTC'")
    con.execute(sql)
    seconds = time.perf_counter() - started
    counts = dict(con.execute("SELECT coalesce(reason, 'ok'), count(*) FROM parsed GROUP BY 1").fetchall())
    bronze = con.execute("SELECT count(*) FROM bronze").fetchone()[0]
    return {"seconds": seconds, "bronze": bronze, "rejects": sum(v for k, v in counts.items() if k != "ok")}


def run_spark(source: Path, out: Path) -> dict:
    from lakehouse_jobs import tweets
    from lakehouse_jobs.session import JobEnv, build_session
    from lakehouse_jobs.steps import step

    env = JobEnv.from_env(
        {
            **local_stack.job_env("http://127.0.0.1:1", CATALOG_DB, driver_memory=os.environ.get("BENCH_MEM", "4g")),
            "LAKEHOUSE_WAREHOUSE": f"file://{out}/warehouse",
        }
    )
    event_log = out / "eventlog"
    event_log.mkdir(parents=True, exist_ok=True)
    os.environ["SPARK_EVENT_LOG_DIR"] = f"file://{event_log}"
    started = time.perf_counter()
    spark = build_session("bench-tweets", env)
    session_s = time.perf_counter() - started
    layers = {}
    for layer, job in (
        ("raw", lambda: tweets.run_raw(spark, DS, source=f"file://{source}")),
        ("bronze", lambda: tweets.run_bronze(spark, DS)),
        ("gold", lambda: tweets.run_gold(spark, DS)),
    ):
        t0 = time.perf_counter()
        with step(spark, f"tweets {layer}"):
            result = job()
        layers[layer] = time.perf_counter() - t0
        if layer == "bronze":
            bronze, rejects = result.accepted, result.rejects
    spark.stop()
    return {
        "seconds": sum(layers.values()),
        "session_s": session_s,
        "layers": layers,
        "bronze": bronze,
        "rejects": rejects,
        "profile": sql_time_by_description(event_log),
    }


def run_simple_spark(source: Path, out: Path) -> dict:
    """The replaced project's Spark job: read the TSV with its header, write it as Parquet, count per hour and day.

    No validation, no de-duplication, no raw layer, no Iceberg: the floor of what Spark costs on this file.
    """
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[*]")
        .config("spark.driver.memory", os.environ.get("BENCH_MEM", "4g"))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    session_s = time.perf_counter() - started
    t0 = time.perf_counter()
    tweets = spark.read.csv(str(source), sep="\t", header=True)
    tweets.write.mode("overwrite").parquet(str(out / "tweets.parquet"))
    stored = spark.read.parquet(str(out / "tweets.parquet"))
    created = F.to_timestamp(F.concat_ws(" ", "date", "time"))
    hours = stored.groupBy(F.date_trunc("hour", created).alias("hour")).count()
    hours.write.mode("overwrite").parquet(str(out / "per_hour.parquet"))
    days = stored.groupBy(F.to_date(created).alias("day")).count()
    days.write.mode("overwrite").parquet(str(out / "per_day.parquet"))
    seconds = time.perf_counter() - t0
    rows = stored.count()
    spark.stop()
    return {"seconds": seconds, "session_s": session_s, "rows": rows}


def measure(engine: str, source: Path, out: Path) -> dict:
    result_file = out / f"{engine}.json"
    cmd = [sys.executable, __file__, "--engine", engine, "--source", str(source), "--out", str(out)]
    _, peak = run_measured(cmd, out / f"{engine}.log")
    return {**json.loads(result_file.read_text()), "peak_rss": peak}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=ROOT / ".artifacts" / "bench-tweets")
    parser.add_argument("--engine", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.engine:  # child process: one engine, result as JSON
        run = {"spark": run_spark, "duckdb": run_duckdb, "simple-spark": run_simple_spark}[args.engine]
        result = run(args.source, args.out / args.engine)
        (args.out / f"{args.engine}.json").write_text(json.dumps(result))
        return 0

    from devtools.samples.tweets import generate_tweets_tsv

    args.workdir.mkdir(parents=True, exist_ok=True)
    source = args.workdir / f"tweets_{args.lines}_{args.seed}.tsv"
    if not source.exists():
        print(f"generating {args.lines:,} lines -> {source}")
        generate_tweets_tsv(source, args.lines, seed=args.seed)
    for engine in ENGINES:
        shutil.rmtree(args.workdir / engine, ignore_errors=True)
    local_stack.recreate_database(CATALOG_DB)

    results = {engine: measure(engine, source, args.workdir) for engine in ENGINES}
    simple = results.pop("simple-spark")
    lines = args.lines + 1
    print(f"\ninput: {lines:,} lines, {source.stat().st_size / 1e6:,.0f} MB, 2 cores")
    print(f"{'engine':<8}{'seconds':>10}{'rows/s':>14}{'peak RSS':>12}{'bronze':>12}{'rejects':>10}")
    for engine, r in results.items():
        print(
            f"{engine:<8}{r['seconds']:>10.1f}{lines / r['seconds']:>14,.0f}{r['peak_rss'] / GIB:>10.2f}Gi"
            f"{r['bronze']:>12,}{r['rejects']:>10,}"
        )
    spark, duck = results["spark"], results["duckdb"]
    jvm = spark["session_s"]
    print(f"\nspark layers, in one session (each alone, as a DAG task runs it, adds the JVM start: {jvm:.1f}s):")
    for layer, seconds in spark["layers"].items():
        print(f"  {layer:<8}{seconds:>7.1f}s   alone {seconds + jvm:>6.1f}s")
    print("\nwhere Spark's time went (SQL executions by step; the rest of a step is driver work and commits):")
    print(format_profile(spark["profile"]))
    ratio = duck["seconds"] / spark["seconds"]
    print(f"\nratio spark/duckdb throughput: {ratio:.2f} (target >= 0.33: {'met' if ratio >= 1 / 3 else 'MISSED'})")
    versus_simple = spark["seconds"] / simple["seconds"]
    print(
        f"simple Spark (TSV -> Parquet, counts per hour and day; no checks, no Iceberg): {simple['seconds']:.1f}s "
        f"(+ {simple['session_s']:.1f}s session start); the pipeline takes {versus_simple:.2f}x as long "
        f"(target <= 2: {'met' if versus_simple <= 2 else 'MISSED'})"
    )
    memory_ok = spark["peak_rss"] < 6 * GIB
    print(f"spark peak memory: {spark['peak_rss'] / GIB:.2f} GiB (target < 6: {'met' if memory_ok else 'MISSED'})")
    same = (spark["bronze"], spark["rejects"]) == (duck["bronze"], duck["rejects"])
    print(f"same bronze/reject counts in both engines: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
