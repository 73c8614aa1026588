"""Run the tweets pipeline without Docker and print the gold tables.

Generates a sample TSV, serves it over HTTP on localhost, starts moto as the S3 stand-in and a fresh Iceberg
catalog database, then runs the `tweets` DAG through Airflow (`dag.test()`) with the local Spark runner:
the same land task and Spark command lines as in `astro dev start`, without containers.

    make run                      # 200,000 lines, ds 2020-03-30
    make run ARGS="--lines 2000000 --ds 2020-04-01"
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

from include import local_stack  # noqa: E402

CATALOG_DB = "lakehouse_local_run"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=200_000, help="sample lines after the header")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ds", type=dt.date.fromisoformat, default=dt.date(2020, 3, 30), help="the run's date")
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
    from include.samples.tweets import generate_tweets_tsv

    print(f"generating {args.lines:,} tweet lines (seed {args.seed}) into {sample}")
    generate_tweets_tsv(sample, args.lines, seed=args.seed)

    from include.samples.http_server import serve_directory

    local_stack.recreate_database(CATALOG_DB)
    airflow_home = Path(tempfile.mkdtemp(prefix="airflow-", dir=args.workdir))
    with local_stack.moto_s3(args.workdir / "moto.log") as endpoint, serve_directory(source_dir) as base_url:
        os.environ.update(local_stack.airflow_env(airflow_home, endpoint, CATALOG_DB))
        os.environ["SPARK_EXTRA_JARS"] = local_stack.jar_list()
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
        print_table(catalog, "gold.tweets_per_hour", ds, "hour_start", limit=12)
        counts = {t: catalog.load_table(t).scan().to_arrow().num_rows for t in ("raw.tweets", "bronze.tweets")}
        rejects = catalog.load_table("bronze.tweets_rejects").scan().to_arrow()
        print(f"\nraw lines {counts['raw.tweets']:,}; bronze tweets {counts['bronze.tweets']:,}; rejects by reason:")
        for reason in sorted(rejects.group_by("reason").aggregate([("reason", "count")]).to_pylist(), key=str):
            print(f"  {reason['reason']:>20} {reason['reason_count']:>8,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
