"""One serving load in a process of its own, for the kill tests (test helper, run as a script).

``python load_driver.py postgres|tidb <connection JSON> <table> <ds> <snapshot_id> <parquet> [--hold-after N]``
prints the server's id of its connection (PostgreSQL backend pid, MySQL thread id), then loads the Parquet file as
the slice. With ``--hold-after`` the source stalls for good once it has handed over N rows, as a slow read of the
lake does, so the load stays where it is (in the COPY, between two TiDB chunks) until the test kills the process;
with ``--hold-before-cleanup`` a TiDB load stalls once it has flipped the slice, before deleting the old version,
and with ``--freeze-in-swap`` a PostgreSQL load stalls in its swap, holding the lock on the parent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import threading
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

BATCH_ROWS = 10_000


def source(path: str, hold_after: int | None) -> Iterator[pa.RecordBatch]:
    handed = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
        if hold_after is not None and handed >= hold_after:
            threading.Event().wait()
        yield batch
        handed += batch.num_rows


def stall_before_cleanup() -> None:
    """Make the TiDB load stall for good where, the new slice flipped in, it would delete the older versions."""
    from include.serving import tidb

    delete_rows = tidb._delete_rows

    def stalled(conn, db, table, ds, condition, load_id):
        if condition == "<":
            threading.Event().wait()
        return delete_rows(conn, db, table, ds, condition, load_id)

    tidb._delete_rows = stalled


def freeze_in_swap() -> None:
    """Make the PostgreSQL load stall for good inside its swap, the parent locked, before the load-log and COMMIT.

    What a frozen or cut-off worker looks like to the server: the connection stays open, idle in the transaction.
    """
    from include.serving import postgres

    def frozen(*args, **kwargs):
        threading.Event().wait()

    postgres._record = frozen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("target", choices=("postgres", "tidb"))
    parser.add_argument("connection", type=json.loads)
    parser.add_argument("table")
    parser.add_argument("ds", type=dt.date.fromisoformat)
    parser.add_argument("snapshot_id", type=int)
    parser.add_argument("parquet")
    parser.add_argument("--hold-after", type=int)
    parser.add_argument("--hold-before-cleanup", action="store_true", help="TiDB: stall after the flip")
    parser.add_argument("--freeze-in-swap", action="store_true", help="PostgreSQL: stall holding the swap's lock")
    parser.add_argument("--options", type=json.loads, default={}, help="the loader's options, as JSON")
    args = parser.parse_args()
    if args.hold_before_cleanup:
        stall_before_cleanup()
    if args.freeze_in_swap:
        freeze_in_swap()
    schema = pq.read_schema(args.parquet)
    batches = source(args.parquet, args.hold_after)
    slice_args = (args.table, args.ds, schema, args.snapshot_id, batches)
    if args.target == "postgres":
        import psycopg2

        from include.serving.postgres import load_slice_postgres

        conn = psycopg2.connect(**args.connection, options="-c TimeZone=UTC")
        print(conn.get_backend_pid(), flush=True)
        load_slice_postgres(conn, *slice_args, **args.options)
    else:
        import pymysql

        from include.serving.tidb import SESSION_DEFAULTS, load_slice_tidb

        conn = pymysql.connect(**args.connection, autocommit=True, local_infile=True, **SESSION_DEFAULTS)
        print(conn.thread_id(), flush=True)
        load_slice_tidb(conn, *slice_args, database=args.connection["database"], key_columns=["id"], **args.options)
    conn.close()


if __name__ == "__main__":
    main()
