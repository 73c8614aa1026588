"""Write-audit-publish on Iceberg branches: a run's tables are written to a branch, audited, then fast-forwarded.

A run (say bronze of tweets for ds 2026-01-05) writes each of its tables to the branch ``wap_tweets_bronze_20260105``
of that table (``ALTER TABLE ... CREATE OR REPLACE BRANCH`` from ``main``, then writes to ``<table>.branch_<name>``).
Nothing a reader of ``main`` sees changes while the run writes and audits. When the audit passes, ``main`` of each
table is fast-forwarded to its branch (``CALL lake.system.fast_forward``), one table after the other, and the
branches are dropped; the run summary (``gold.pipeline_runs``) is written last. A failed audit leaves ``main`` as it
was and keeps the branches, named in the error, for inspection (``SELECT ... FROM lake.<table>.branch_<name>``).

What a reader of ``main`` sees, at every moment of a bronze run over tables T1..Tn (bronze parts, then rejects):

1. while the run writes and audits its branches: the previous state of every table, and the previous summary;
2. between the fast-forward of Ti and that of Ti+1 (the window: the JDBC catalog commits one table at a time, it
   has no multi-table transaction): T1..Ti hold the new slice, Ti+1..Tn the previous one, and the summary is still
   the previous one. A crash here leaves exactly that, and the branches of the run;
3. after the last fast-forward, before the summary: every table new, the summary previous;
4. after the summary: everything new, the summary saying ``published``, ``rejected`` (the reject-ratio gate
   refused the slice: only the rejects were published) or ``failed_audit`` (nothing was published).

A retry completes a half-published run: it recomputes the slice, replaces each branch (from ``main`` as it is now),
writes and audits again, and fast-forwards only the tables whose branch slice differs from ``main``'s. A table a
crashed run already fast-forwarded is then left as it is, the others are published, and the end state is that of a
clean run. A re-run of a published run finds every branch slice equal to ``main`` and changes no table (the summary
is left alone when it says the same). The retry rewrites the branch rather than fast-forwarding the one it finds:
the audit checks counts and keys, not that the branch holds what this run would classify (the raw slice may have
been reloaded since), so publishing a found branch could publish a stale one.

Gold runs do the same over their gold tables, audited against ``tables.toml``: no repeated key within a slice, no
null in a column not declared nullable. Tweets and rentals write one slice per table (``publish_gold``); trips,
users and products also write older slices (trips takes the trips of a re-read file out of the slices that held
them and rebuilds their cells, users merges a returning user out of its previous slice, products takes a re-read
file's readings out of older master slices): ``GoldRun`` writes all of it to the run's branch, remembers the slices
each table was written in, audits those and fast-forwards the tables where any of them differs. A reader of ``main``
sees the previous state of every gold table until the first fast-forward, then the window of point 2.

Still committed straight to ``main``, each idempotent on retry: raw (the slice, then ``ops.processed_files``: a crash
between the two leaves the file pending, and the retry reads it again and replaces its rows), ``ops.slice_changes``
(recorded before the gold writes they announce, so a retry still announces them) and the run summary (last).

A fast-forward needs ``main`` to be an ancestor of the branch: a commit to ``main`` of the same table between the
branch's creation and its fast-forward (another run of the same domain, which the DAGs' ``max_active_runs=1`` rules
out) makes it fail with ``Cannot fast-forward: main is not an ancestor``; the run fails naming the branch, and its
retry starts from the new ``main``. Iceberg's cherry-pick does not help there: it refuses a static overwrite.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from lakehouse_jobs.errors import one_line
from lakehouse_jobs.iceberg import ensure_table, qualified, read_slice, replace_slice

log = logging.getLogger(__name__)

MAIN = "main"


class AuditFailed(RuntimeError):
    """The audit of a run's branch found a problem: ``main`` was left as it was, the branch kept for inspection."""


def branch_name(domain: str, layer: str, ds: str) -> str:
    """The branch of one run: ``wap_<domain>_<layer>_<yyyymmdd>``."""
    return f"wap_{domain}_{layer}_{ds.replace('-', '')}"


def _refs(spark, table: str) -> dict[str, int]:
    rows = spark.sql(f"SELECT name, snapshot_id FROM {qualified(table)}.refs").collect()
    return {r["name"]: r["snapshot_id"] for r in rows}


def start_branch(spark, table: str, schema, branch: str, partitioned_by: Sequence[str] = ("ds",)) -> None:
    """Create ``table`` when missing and (re)create ``branch`` from its ``main``, dropping what an earlier try left."""
    name = ensure_table(spark, table, schema, partitioned_by)
    if MAIN in _refs(spark, table):
        spark.sql(f"ALTER TABLE {name} CREATE OR REPLACE BRANCH {branch}")
        return
    # No snapshot on main yet (a new table, or one whose first run the gate refused): Iceberg cannot replace a branch
    # from it ("main has no snapshot"), so drop what an earlier try left and create the branch anew.
    spark.sql(f"ALTER TABLE {name} DROP BRANCH IF EXISTS {branch}")
    spark.sql(f"ALTER TABLE {name} CREATE BRANCH {branch}")


def has_branch(spark, table: str, branch: str) -> bool:
    """Whether ``table`` exists and has ``branch``."""
    return spark.catalog.tableExists(qualified(table)) and branch in _refs(spark, table)


def fast_forward(spark, table: str, branch: str) -> None:
    """Move ``main`` of ``table`` to ``branch`` (a no-op when it is there already)."""
    namespace_table = qualified(table).split(".", 1)[1]
    spark.sql(f"CALL lake.system.fast_forward('{namespace_table}', '{MAIN}', '{branch}')").collect()
    log.info("fast-forwarded %s main to %s", table, branch)


def drop_branch(spark, table: str, branch: str) -> None:
    spark.sql(f"ALTER TABLE {qualified(table)} DROP BRANCH IF EXISTS {branch}")


def fingerprint(rows) -> object:
    """A multiset fingerprint of ``rows``: the sum of a 64-bit hash of each row (order-blind, counts repeats).

    One pass, no shuffle: two slices with different rows have equal fingerprints with a chance of about 2^-64.
    """
    from pyspark.sql import functions as F

    row_hash = F.xxhash64(*[F.col(f"`{c}`") for c in rows.columns]).cast("decimal(38,0)")
    return rows.agg(F.sum(row_hash)).first()[0]


def _days(days: Iterable[str]):
    from pyspark.sql import functions as F

    return F.col("ds").isin([F.lit(d).cast("date") for d in sorted(set(days))])


def read_days(spark, table: str, days: Iterable[str], *, branch: str | None = None):
    """The rows of the slices ``days`` of ``table`` (of its ``branch``, by default of ``main``)."""
    return spark.table(qualified(table, branch)).where(_days(days))


def same_slices(spark, table: str, branch: str, days: Iterable[str]) -> bool:
    """Whether the slices ``days`` hold the same rows (as a multiset) on ``branch`` as on ``main``.

    The row counts come from Iceberg's metadata; only slices of equal size are read, for their ``fingerprint``.
    """
    days = list(days)
    new, old = read_days(spark, table, days, branch=branch), read_days(spark, table, days)
    return new.count() == old.count() and fingerprint(new) == fingerprint(old)


def publish(spark, tables: Sequence[str] | Mapping[str, Iterable[str]], branch: str, ds: str) -> list[str]:
    """Fast-forward ``main`` of each table whose slice ``ds`` differs on ``branch``, then drop the branches.

    ``tables`` may map each table to the slices the run wrote (compared instead of ``ds`` alone). Returns the
    tables fast-forwarded. See the module docstring for what a reader sees meanwhile.
    """
    written = tables if isinstance(tables, Mapping) else {t: [ds] for t in tables}
    changed = [t for t, days in written.items() if not same_slices(spark, t, branch, days)]
    for table in changed:
        fast_forward(spark, table, branch)
    for table in written:
        drop_branch(spark, table, branch)
    log.info("published %s of %s (unchanged: %s)", branch, changed, [t for t in written if t not in changed])
    return changed


def gold_problems(spark, table: str, declared, branch: str, days: str | Iterable[str]) -> list[str]:
    """What is wrong with the slices ``days`` of ``table`` on ``branch`` against its declaration (``tables.toml``).

    A repeated key (the declared ``key`` within a slice) or a null in a column not declared nullable; one
    aggregation.
    """
    from pyspark.sql import functions as F

    if declared is None:
        return [f"{table} is not declared in tables.toml"]
    rows = read_days(spark, table, [days] if isinstance(days, str) else days, branch=branch)
    required = [c.name for c in declared.columns if not c.nullable]
    key = [k for k in dict.fromkeys(("ds", *declared.key)) if k in rows.columns] if declared.key else []
    figures = rows.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_distinct(*[F.col(f"`{k}`") for k in key]).alias("keys") if key else F.lit(1),
        *[F.sum(F.col(f"`{c}`").isNull().cast("long")).alias(f"null_{c}") for c in required],
    ).first()
    problems = []
    if key and figures["rows"] and figures["keys"] != figures["rows"]:
        problems.append(f"{table}: {figures['rows'] - figures['keys']} repeated keys ({', '.join(declared.key)})")
    problems += [f"{table}: {figures[f'null_{c}']} nulls in {c}" for c in required if figures[f"null_{c}"]]
    return problems


def declared_gold(tables: Iterable[str]) -> dict:
    """``{table: declarations.Table}`` of ``tables`` (``<namespace>.<table>``) from ``tables.toml``."""
    from lakehouse_jobs.declarations import load

    declarations = load()
    return {t: declarations.table(t.split(".", 1)[1]) for t in tables}


class GoldRun:
    """Write-audit-publish of a gold run that writes more than its own slice of each table.

    Trips takes the trips of a re-read file out of older slices and rebuilds their cells; users merges changes into
    whatever slice a user was in; products removes superseded rows of older master slices. Every such write goes to
    the run's branch (``wap_<domain>_gold_<yyyymmdd>``) of its table, and each table remembers the slices written.
    ``publish`` audits those slices against ``tables.toml``, then fast-forwards the tables whose written slices
    differ from ``main``'s (a re-run, or the retry of a half-published run, leaves the others alone).

    Usage::

        run = GoldRun(spark, "trips", ds, {GOLD_TRIPS: GOLD_TRIPS_SCHEMA, ...})
        run.replace_slice(df, GOLD_TRIPS, ds)       # or: spark.sql(f"DELETE FROM {run.name(GOLD_TRIPS)} ...")
        run.touch(GOLD_TRIPS, older_days)           # after a statement that wrote other slices
        counts = run.publish()
    """

    def __init__(self, spark, domain: str, ds: str, schemas: Mapping[str, object], declared=None) -> None:
        self.spark, self.ds, self.schemas = spark, ds, dict(schemas)
        self.branch = branch_name(domain, "gold", ds)
        self.declared = declared if declared is not None else declared_gold(self.schemas)
        self.written: dict[str, set[str]] = {table: {ds} for table in self.schemas}
        for table, schema in self.schemas.items():
            start_branch(spark, table, schema, self.branch)

    def name(self, table: str) -> str:
        """The qualified name of ``table``'s branch, for SQL (``lake.<namespace>.<table>.branch_<branch>``)."""
        return qualified(table, self.branch)

    def table(self, table: str):
        """Every row of ``table`` on the branch: what this run has written so far over ``main``."""
        return self.spark.table(self.name(table))

    def read_slice(self, table: str, day: str):
        return read_slice(self.spark, table, day, branch=self.branch)

    def replace_slice(self, df, table: str, day: str) -> None:
        """Replace slice ``day`` of ``table`` on the branch with ``df``."""
        replace_slice(df, table, self.schemas[table], day, branch=self.branch)
        self.touch(table, [day])

    def touch(self, table: str, days: Iterable[object]) -> None:
        """Record that the run wrote slices ``days`` (dates or ISO strings) of ``table`` on the branch."""
        self.written[table].update(str(day) for day in days)

    def publish(self) -> dict[str, int]:
        """Audit the written slices, fast-forward ``main`` where they differ, drop the branches.

        Returns the rows of slice ``ds`` of each table on ``main`` afterwards. A failed audit raises ``AuditFailed``
        naming the branch and what was wrong; ``main`` of every table is then as it was.
        """
        problems = [
            problem
            for table, days in self.written.items()
            for problem in gold_problems(self.spark, table, self.declared.get(table), self.branch, days)
        ]
        if problems:
            raise AuditFailed(f"audit of branch {self.branch} failed, main left as it was: {'; '.join(problems)}")
        publish(self.spark, {t: sorted(days) for t, days in self.written.items()}, self.branch, self.ds)
        return {table: read_slice(self.spark, table, self.ds).count() for table in self.schemas}


def publish_gold(spark, outputs, ds: str, *, domain: str, declared=None) -> dict[str, int]:
    """Write-audit-publish of a gold run whose slices are complete in themselves (one ``GoldRun`` slice each).

    Args:
        outputs: ``{table: (df, schema)}``, the run's slice ``ds`` of each table.
        domain: the domain, for the branch name (``wap_<domain>_gold_<yyyymmdd>``).
        declared: ``{table: declarations.Table}`` to audit against (default: ``tables.toml``'s gold tables).

    Returns the rows each slice of ``main`` holds afterwards. A failed audit raises ``AuditFailed`` naming the
    branch and what was wrong; ``main`` of every table is then as it was. Readers see what the module docstring says
    (the window is between two fast-forwards); a retry rewrites the branches and publishes what differs.
    """
    run = GoldRun(spark, domain, ds, {table: schema for table, (_, schema) in outputs.items()}, declared)
    for table, (df, _) in outputs.items():
        run.replace_slice(df, table, ds)
    return run.publish()


# --- commit conflicts on shared tables ------------------------------------------------------------------------------

# What Iceberg raises when another writer committed to the same table first and the commit cannot be re-applied
# as is (a MERGE's conflict validation), or gave up re-applying it (commit.retry.num-retries).
CONFLICTS = ("ValidationException", "CommitFailedException", "CommitStateUnknownException", "Found conflicting files")


def is_conflict(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}"
    return any(marker in text for marker in CONFLICTS)


def retry_conflicts(
    action: Callable[[], object], *, what: str, attempts: int = 6, base_s: float = 0.5, max_s: float = 8.0
) -> object:
    """Run ``action``, re-running it on an Iceberg commit conflict with bounded, jittered exponential backoff.

    The whole action is re-run (a MERGE re-reads the table), so it must be idempotent. Tenacity, which the Airflow
    side uses, is not in the Spark image; this is the same policy in a few lines. The last conflict is raised.
    """
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:
            if not is_conflict(exc) or attempt == attempts:
                raise
            jitter = 0.5 + random.random() / 2  # noqa: S311 - spreads the writers' retries, not a secret
            pause = min(max_s, base_s * 2 ** (attempt - 1)) * jitter
            reason = one_line(exc)[:300]
            log.warning("%s: commit conflict (%d of %d), retry in %.2fs: %s", what, attempt, attempts, pause, reason)
            time.sleep(pause)
    raise AssertionError("unreachable")
