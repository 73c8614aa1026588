"""Run the tweets pipeline without Docker and print the gold tables.

Generates a sample TSV, serves it over HTTP on localhost, starts moto as the S3 stand-in and a fresh Iceberg
catalog database, then runs the `tweets` DAG through Airflow (`dag.test()`) with the local Spark runner:
the same land task and Spark command lines as in `astro dev start`, without containers.

    make run                      # 200,000 lines, ds 2020-03-30
    make run ARGS="--lines 2000000 --ds 2020-04-01"
    make run ARGS="--serve"       # then the serve DAG: PostgreSQL `analytics`, MariaDB `lakehouse` (for `make api`),
                                  # dbt marts, Metabase provisioning against the local fake
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools import local_stack, spark_cds  # noqa: E402

CATALOG_DB = "lakehouse_local_run"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=200_000, help="sample lines after the header")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ds", type=dt.date.fromisoformat, default=dt.date(2020, 3, 30), help="the run's date")
    parser.add_argument("--serve", action="store_true", help="also run the serve DAG into the local databases")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".artifacts" / "run", help="sample data and logs")
    return parser.parse_args(argv)


def print_table(catalog, table: str, ds: str, order_by: str, limit: int | None = None) -> None:
    from pyiceberg.expressions import EqualTo

    rows = catalog.load_table(table).scan(row_filter=EqualTo("ds", ds)).to_arrow().sort_by(order_by).to_pylist()
    print(f"\n{table}  (ds={ds}, {len(rows)} rows{f', first {limit}' if limit and len(rows) > limit else ''})")
    if not rows:
        return
    columns = [c for c in rows[0] if c not in ("ds", "_loaded_at")]
    print("  " + " | ".join(f"{c:>25}" for c in columns))
    for row in rows[:limit]:
        print("  " + " | ".join(f"{str(row[c]):>25}" for c in columns))


def main(argv=None) -> int:
    args = parse_args(argv)
    ds = args.ds.isoformat()
    args.workdir.mkdir(parents=True, exist_ok=True)
    source_dir = args.workdir / "source"
    sample = source_dir / "full_dataset.tsv"
    from devtools.samples.tweets import generate_tweets_tsv

    print(f"generating {args.lines:,} tweet lines (seed {args.seed}) into {sample}")
    generate_tweets_tsv(sample, args.lines, seed=args.seed)

    from devtools.samples.http_server import serve_directory

    local_stack.recreate_database(CATALOG_DB)
    airflow_home = Path(tempfile.mkdtemp(prefix="airflow-", dir=args.workdir))
    with local_stack.moto_s3(args.workdir / "moto.log") as endpoint, serve_directory(source_dir) as base_url:
        os.environ.update(local_stack.airflow_env(airflow_home, endpoint, CATALOG_DB))
        os.environ["SPARK_EXTRA_JARS"] = local_stack.jar_list()
        # The class-data archive `make setup` made, if current: each Spark task's JVM starts in about half the time.
        os.environ["SPARK_SUBMIT_OPTS"] = f"{os.environ.get('SPARK_SUBMIT_OPTS', '')} {spark_cds.jvm_option()}".strip()
        import subprocess

        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
        from airflow.dag_processing.dagbag import DagBag

        dag = DagBag(dag_folder=str(ROOT / "dags" / "tweets.py")).dags["tweets"]
        logical_date = dt.datetime.combine(args.ds, dt.time(), tzinfo=dt.UTC)
        run = dag.test(logical_date=logical_date, run_conf={"source_url": f"{base_url}/{sample.name}"})
        states = {ti.task_id: ti.state for ti in run.get_task_instances()}
        print(f"\ntweets DAG run {run.run_id}: {run.state}; tasks: {states}")
        if run.state != "success" or set(states) != set(dag.task_ids):
            return 1
        catalog = local_stack.pyiceberg_catalog(endpoint, CATALOG_DB)
        print_table(catalog, "gold.tweets_per_day", ds, "day")
        print_table(catalog, "gold.tweets_by_language", ds, "lang")
        print_table(catalog, "gold.tweets_by_country", ds, "country_code")
        print_table(catalog, "gold.tweets_per_hour", ds, "hour_start", limit=12)
        counts = {t: catalog.load_table(t).scan().to_arrow().num_rows for t in ("raw.tweets", "bronze.tweets")}
        rejects = catalog.load_table("bronze.tweets_rejects").scan().to_arrow()
        print(f"\nraw lines {counts['raw.tweets']:,}; bronze tweets {counts['bronze.tweets']:,}; rejects by reason:")
        for reason in sorted(rejects.group_by("reason").aggregate([("reason", "count")]).to_pylist(), key=str):
            print(f"  {reason['reason']:>20} {reason['reason_count']:>8,}")
        if args.serve:
            return serve(logical_date, ds)
    return 0


def serve(logical_date: dt.datetime, ds: str) -> int:
    """Run the serve DAG for ``ds`` into the local PostgreSQL ``analytics`` and MariaDB ``lakehouse`` databases."""
    import json

    import psycopg2
    import pymysql
    from airflow.dag_processing.dagbag import DagBag

    from devtools.fake_metabase import ADMIN_EMAIL, ADMIN_PASSWORD, FakeMetabase

    pg = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    pg.autocommit = True
    with pg.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = 'analytics'")
        if not cur.fetchone():
            cur.execute("CREATE DATABASE analytics")
    pg.close()
    local_stack.create_extensions("analytics", *local_stack.ANALYTICS_EXTENSIONS)
    maria = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    with maria.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS lakehouse")
    fake = FakeMetabase().start()
    host, port = fake.url.removeprefix("http://").split(":")
    os.environ.update(
        {
            "AIRFLOW_CONN_ANALYTICS_POSTGRES": json.dumps(
                # Trust authentication ignores the password; Cosmos' profile mapping requires one.
                {
                    "conn_type": "postgres",
                    "host": "127.0.0.1",
                    "login": "postgres",
                    "password": "unused",
                    "schema": "analytics",
                    "port": 5432,
                }
            ),
            "AIRFLOW_CONN_TIDB": json.dumps(
                {"conn_type": "mysql", "host": "127.0.0.1", "port": 3306, "login": "root", "schema": "lakehouse"}
            ),
            "AIRFLOW_CONN_METABASE": json.dumps(
                {"conn_type": "http", "host": host, "port": int(port), "login": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            ),
        }
    )
    try:
        dag = DagBag(dag_folder=str(ROOT / "dags" / "serve.py")).dags["serve"]
        run = dag.test(logical_date=logical_date, run_conf={"ds": ds})
    finally:
        fake.stop()
    print(f"\nserve DAG run {run.run_id}: {run.state}")
    with maria.cursor() as cur:
        cur.execute("SELECT table_name, ds, `rows`, snapshot_id FROM lakehouse._lakehouse_loads ORDER BY 1")
        for table, slice_ds, rows, snapshot in cur.fetchall():
            print(f"  MariaDB lakehouse.{table:<22} ds={slice_ds} rows={rows:>6} snapshot={snapshot}")
    maria.close()
    print(f"  Metabase (fake): dashboards {sorted(d['name'] for d in fake.dashboards.values())}")
    return 0 if run.state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
