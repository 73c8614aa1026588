"""Write-audit-publish: a crash between two fast-forwards, a failed audit, a re-run, concurrent summaries."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

DS = "2026-01-06"  # a slice no other test writes
FIRST = [("header", "h"), ("record", "a"), ("reject", "x")]
KINDS = [("header", "h"), ("record", "a"), ("record", "b"), ("duplicate", "a"), ("reject", "y")]


@pytest.fixture()
def tables(throwaway_bronze):
    """Throwaway bronze/rejects tables and a domain name of their own (so gold.pipeline_runs rows are ours)."""
    return throwaway_bronze("wap_", "wap")


def publish(spark, tables, kinds, *, max_reject_ratio=0.5, keep_repeats=False):
    """Publish one classified row per (kind, value); ``keep_repeats`` accepts duplicates too (a broken engine)."""
    from pyspark.sql import functions as F

    from lakehouse_jobs.bronze import publish_slice

    bronze, rejects, domain = tables
    rows = [(dt.date.fromisoformat(DS), kind, value) for kind, value in kinds]
    classified = spark.createDataFrame(rows, "ds date, kind string, value string").withColumn(
        "reason", F.when(F.col("kind") == "reject", F.lit("bad_value"))
    )
    accepted = F.col("kind").isin("record", "duplicate") if keep_repeats else F.col("kind") == "record"
    return publish_slice(
        classified,
        len(kinds),
        domain=domain,
        ds=DS,
        accepted=lambda rows: rows.where(accepted).select("ds", "value"),
        rejected=lambda rows: rows.where(F.col("kind") == "reject").select("ds", "reason", "value"),
        bronze=bronze,
        rejects=rejects,
        max_reject_ratio=max_reject_ratio,
        key=("value",),
    )


def values(spark, table: str, branch: str | None = None) -> list:
    from lakehouse_jobs.iceberg import read_slice

    return sorted(r["value"] for r in read_slice(spark, table, DS, branch=branch).collect())


def refs(spark, table: str) -> dict:
    rows = spark.sql(f"SELECT name, snapshot_id FROM lake.{table}.refs").collect()
    return {r["name"]: r["snapshot_id"] for r in rows}


def summary(spark, domain: str) -> list[tuple]:
    rows = spark.table("lake.gold.pipeline_runs").where(f"domain = '{domain}'").collect()
    return [(r["raw_rows"], r["accepted"], r["duplicates"], r["rejects"], r["status"]) for r in rows]


def state(spark, tables) -> tuple:
    bronze, rejects, domain = tables
    return values(spark, bronze.table), values(spark, rejects.table), summary(spark, domain)


PUBLISHED_FIRST = (["a"], ["x"], [(2, 1, 0, 1, "published")])
PUBLISHED = (["a", "b"], ["y"], [(4, 2, 1, 1, "published")])  # written by hand from KINDS


def test_a_crash_between_two_fast_forwards_is_completed_by_the_retry(spark, tables, monkeypatch):
    from lakehouse_jobs import wap

    bronze, rejects, domain = tables
    branch = wap.branch_name(domain, "bronze", DS)
    publish(spark, tables, FIRST)
    assert state(spark, tables) == PUBLISHED_FIRST
    before = {t: refs(spark, t)["main"] for t in (bronze.table, rejects.table)}

    real, done = wap.fast_forward, []

    def crash_after_first(spark_, table, branch_):
        if done:
            raise RuntimeError("killed between two fast-forwards")
        real(spark_, table, branch_)
        done.append(table)

    monkeypatch.setattr(wap, "fast_forward", crash_after_first)
    with pytest.raises(RuntimeError, match="killed between"):
        publish(spark, tables, KINDS)
    # The window: the first table is new, the second and the summary as they were, both branches there.
    assert done == [bronze.table]
    assert values(spark, bronze.table) == ["a", "b"]
    assert refs(spark, rejects.table)["main"] == before[rejects.table]
    assert values(spark, rejects.table) == ["x"]
    assert summary(spark, domain) == PUBLISHED_FIRST[2]
    assert branch in refs(spark, bronze.table) and branch in refs(spark, rejects.table)

    monkeypatch.setattr(wap, "fast_forward", real)
    half_published = refs(spark, bronze.table)["main"]
    publish(spark, tables, KINDS)
    assert state(spark, tables) == PUBLISHED
    assert refs(spark, bronze.table)["main"] == half_published  # already published: left as it was
    assert refs(spark, rejects.table)["main"] != before[rejects.table]
    assert all(set(refs(spark, t)) == {"main"} for t in (bronze.table, rejects.table))


def test_a_failed_audit_leaves_main_as_it_was_and_the_branch_for_inspection(spark, tables):
    from lakehouse_jobs import wap

    bronze, rejects, domain = tables
    publish(spark, tables, FIRST)
    before = {t: refs(spark, t)["main"] for t in (bronze.table, rejects.table)}
    branch = wap.branch_name(domain, "bronze", DS)
    with pytest.raises(wap.AuditFailed, match=rf"branch {branch} failed.*1 keys \(value\) repeated"):
        publish(spark, tables, KINDS, keep_repeats=True)
    assert {t: refs(spark, t)["main"] for t in before} == before
    assert values(spark, bronze.table) == ["a"] and values(spark, rejects.table) == ["x"]
    assert values(spark, bronze.table, branch) == ["a", "a", "b"]  # what would have been published
    assert values(spark, rejects.table, branch) == ["y"]
    assert summary(spark, domain) == [(4, 3, 0, 1, "failed_audit")]  # the summary says what happened

    publish(spark, tables, KINDS)  # the fixed run replaces the branch and publishes
    assert state(spark, tables) == PUBLISHED
    assert set(refs(spark, bronze.table)) == {"main"}


def test_a_refused_slice_publishes_its_rejects_only_and_keeps_the_bronze_branch(spark, tables):
    from lakehouse_jobs import wap
    from lakehouse_jobs.bronze import RejectRatioExceeded

    bronze, rejects, domain = tables
    publish(spark, tables, FIRST)
    branch = wap.branch_name(domain, "bronze", DS)
    with pytest.raises(RejectRatioExceeded, match=f"refused bronze slice is on branch {branch}"):
        publish(spark, tables, KINDS, max_reject_ratio=0.1)
    assert values(spark, bronze.table) == ["a"]
    assert values(spark, bronze.table, branch) == ["a", "b"]
    assert values(spark, rejects.table) == ["y"]
    assert set(refs(spark, rejects.table)) == {"main"}
    assert summary(spark, domain) == [(4, 2, 1, 1, "rejected")]


def test_a_re_run_of_a_published_run_changes_nothing(spark, tables):
    bronze, rejects, domain = tables
    publish(spark, tables, KINDS)
    snapshots = {t: refs(spark, t) for t in (bronze.table, rejects.table, "gold.pipeline_runs")}
    publish(spark, tables, KINDS)
    assert {t: refs(spark, t) for t in snapshots} == snapshots
    assert state(spark, tables) == PUBLISHED


def test_two_runs_summing_up_at_the_same_moment_both_land(spark, tables):
    from lakehouse_jobs import ops

    domain = tables[2]
    ops.publish_run(spark, f"{domain}a", DS, raw=0, accepted=0, duplicates=0, rejects=0, status="published")
    start, errors = threading.Barrier(2), []

    def run(name: str, accepted: int) -> None:
        start.wait()
        try:
            ops.publish_run(spark, name, DS, raw=9, accepted=accepted, duplicates=0, rejects=0, status="published")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"{domain}{s}", n)) for s, n in (("a", 7), ("b", 8))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert summary(spark, f"{domain}a") == [(9, 7, 0, 0, "published")]
        assert summary(spark, f"{domain}b") == [(9, 8, 0, 0, "published")]
    finally:
        spark.sql(f"DELETE FROM lake.gold.pipeline_runs WHERE domain IN ('{domain}a', '{domain}b')")


def test_a_commit_conflict_is_retried_with_bounded_backoff(monkeypatch):
    from lakehouse_jobs import wap

    pauses, calls = [], []
    monkeypatch.setattr(wap.time, "sleep", pauses.append)

    def conflicting():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("org.apache.iceberg.exceptions.ValidationException: Found conflicting files")
        return "done"

    assert wap.retry_conflicts(conflicting, what="t") == "done"
    assert len(pauses) == 2 and all(0 < p <= 8 for p in pauses)

    def always():
        raise RuntimeError("CommitFailedException: base metadata changed")

    with pytest.raises(RuntimeError, match="CommitFailedException"):
        wap.retry_conflicts(always, what="t", attempts=4)
    assert len(pauses) == 2 + 3

    def broken():
        raise ValueError("not a conflict")

    with pytest.raises(ValueError):
        wap.retry_conflicts(broken, what="t")
    assert len(pauses) == 5


def test_a_first_run_refused_by_the_gate_does_not_block_the_next_run(spark, tables):
    # The table's very first run is refused: its bronze table has no snapshot on main, only the run's branch. The
    # next run (the source corrected) must publish, not fail on replacing a branch of a main without a snapshot.
    from lakehouse_jobs.bronze import RejectRatioExceeded

    bronze, rejects, domain = tables
    with pytest.raises(RejectRatioExceeded):
        publish(spark, tables, KINDS, max_reject_ratio=0.1)
    assert "main" not in refs(spark, bronze.table)
    with pytest.raises(RejectRatioExceeded):  # Airflow's retry of the same refused slice: refused again, clearly
        publish(spark, tables, KINDS, max_reject_ratio=0.1)
    publish(spark, tables, KINDS)  # the corrected run (here: a threshold it passes)
    assert state(spark, tables) == PUBLISHED
    assert all(set(refs(spark, t)) == {"main"} for t in (bronze.table, rejects.table))


# --- gold: every table of a run through one branch, audited against its declaration -----------------------------------


@pytest.fixture()
def gold_tables(spark):
    """Two throwaway gold tables, declared as tables.toml would: key ``k``, ``n`` required, ``note`` nullable."""
    import uuid

    from pyspark.sql import types as T

    from lakehouse_jobs.declarations import Column, Table

    suffix = uuid.uuid4().hex[:8]
    names = (f"gold.wap_gold_a_{suffix}", f"gold.wap_gold_b_{suffix}")
    columns = (Column("ds", "date", ""), Column("k", "str", ""), Column("n", "int", ""))
    columns += (Column("note", "str", "", nullable=True),)
    declared = {n: Table(n.split(".")[1], "wapgold", "", ("k",), True, columns) for n in names}
    schema = T.StructType(
        [
            T.StructField("ds", T.DateType(), False),
            T.StructField("k", T.StringType()),
            T.StructField("n", T.LongType()),
            T.StructField("note", T.StringType()),
        ]
    )
    yield names, declared, schema, f"wapgold{suffix}"
    for name in names:
        spark.sql(f"DROP TABLE IF EXISTS lake.{name}")


def gold_run(spark, gold_tables, rows_a, rows_b):
    from lakehouse_jobs.wap import publish_gold

    (a, b), declared, schema, domain = gold_tables
    day = dt.date.fromisoformat(DS)
    outputs = {
        table: (spark.createDataFrame([(day, *row) for row in rows], schema), schema)
        for table, rows in ((a, rows_a), (b, rows_b))
    }
    return publish_gold(spark, outputs, DS, domain=domain, declared=declared)


def gold_rows(spark, table, branch=None) -> list[tuple]:
    from lakehouse_jobs.iceberg import read_slice

    return sorted((r["k"], r["n"], r["note"]) for r in read_slice(spark, table, DS, branch=branch).collect())


def test_a_gold_run_is_published_only_when_every_table_passes_its_audit(spark, gold_tables):
    from lakehouse_jobs import wap

    (a, b), _, _, domain = gold_tables
    branch = wap.branch_name(domain, "gold", DS)
    first_a, first_b = [("x", 1, None)], [("y", 2, "first")]
    assert gold_run(spark, gold_tables, first_a, first_b) == {a: 1, b: 1}
    assert (gold_rows(spark, a), gold_rows(spark, b)) == (first_a, first_b)
    assert all(set(refs(spark, t)) == {"main"} for t in (a, b))  # published: no branch left
    before = {t: refs(spark, t)["main"] for t in (a, b)}

    # a's new slice is fine, b's repeats a key and lacks a required value: neither is published.
    new_a = [("x", 10, None), ("z", 3, None)]
    problems = rf"{b}: 1 repeated keys \(k\); {b}: 1 nulls in n"
    with pytest.raises(wap.AuditFailed, match=rf"branch {branch} failed.*{problems}"):
        gold_run(spark, gold_tables, new_a, [("y", 2, None), ("y", None, None)])
    assert {t: refs(spark, t)["main"] for t in (a, b)} == before
    assert (gold_rows(spark, a), gold_rows(spark, b)) == (first_a, first_b)
    assert gold_rows(spark, a, branch) == sorted(new_a)  # kept for inspection

    new_b = [("y", 4, "second")]
    assert gold_run(spark, gold_tables, new_a, new_b) == {a: 2, b: 1}  # the fixed run rewrites the branches
    assert (gold_rows(spark, a), gold_rows(spark, b)) == (sorted(new_a), new_b)
    assert all(set(refs(spark, t)) == {"main"} for t in (a, b))
    again = {t: refs(spark, t)["main"] for t in (a, b)}
    gold_run(spark, gold_tables, new_a, new_b)  # a re-run changes no table
    assert {t: refs(spark, t)["main"] for t in (a, b)} == again


def day_rows(spark, table, day, branch=None) -> list[tuple]:
    from lakehouse_jobs.iceberg import read_slice

    return sorted((r["k"], r["n"], r["note"]) for r in read_slice(spark, table, day, branch=branch).collect())


def test_a_gold_run_that_rewrites_older_slices_publishes_them_with_its_own_after_the_audit(spark, gold_tables):
    # Trips deletes the older trips of a re-read file, users merges into the slices users left: writes outside the
    # run's slice, on the run's branch, audited and published with it, or not at all.
    from lakehouse_jobs import wap

    (a, b), declared, schema, domain = gold_tables
    older = "2026-01-05"

    def run(rows_a_older, rows_a, rows_b, delete_older_x=False):
        day = {older: dt.date.fromisoformat(older), DS: dt.date.fromisoformat(DS)}
        frame = lambda d, rows: spark.createDataFrame([(day[d], *row) for row in rows], schema)  # noqa: E731
        gold = wap.GoldRun(spark, domain, DS, {a: schema, b: schema}, declared)
        if rows_a_older is not None:
            gold.replace_slice(frame(older, rows_a_older), a, older)
        if delete_older_x:
            spark.sql(f"DELETE FROM {gold.name(a)} WHERE ds = DATE '{older}' AND k = 'x'")
            gold.touch(a, [dt.date.fromisoformat(older)])
        gold.replace_slice(frame(DS, rows_a), a, DS)
        gold.replace_slice(frame(DS, rows_b), b, DS)
        return gold.publish(), gold.branch

    first_older, first_a, first_b = [("x", 1, None), ("y", 2, None)], [("z", 3, None)], [("w", 4, None)]
    assert run(first_older, first_a, first_b)[0] == {a: 1, b: 1}
    assert [day_rows(spark, a, older), day_rows(spark, a, DS)] == [first_older, first_a]
    assert day_rows(spark, b, DS) == first_b
    before = {t: refs(spark, t)["main"] for t in (a, b)}

    # The older slice loses x on the branch, but b's slice repeats a key: main of both tables stays as it was.
    with pytest.raises(wap.AuditFailed, match=rf"{b}: 1 repeated keys"):
        run(None, first_a, [("w", 4, None), ("w", 5, None)], delete_older_x=True)
    assert {t: refs(spark, t)["main"] for t in (a, b)} == before
    assert day_rows(spark, a, older) == first_older
    branch = wap.branch_name(domain, "gold", DS)
    assert day_rows(spark, a, older, branch) == [("y", 2, None)]  # kept for inspection

    # The fixed run: a's older slice changed, its own did not; b is the same as on main, so only a moves.
    published, _ = run(None, first_a, first_b, delete_older_x=True)
    assert published == {a: 1, b: 1}
    assert day_rows(spark, a, older) == [("y", 2, None)]
    assert refs(spark, b)["main"] == before[b]
    assert refs(spark, a)["main"] != before[a]
    assert all(set(refs(spark, t)) == {"main"} for t in (a, b))

    # A repeated key in a touched older slice fails the audit too.
    with pytest.raises(wap.AuditFailed, match=rf"{a}: 1 repeated keys"):
        run([("y", 2, None), ("y", 6, None)], first_a, first_b)
    assert day_rows(spark, a, older) == [("y", 2, None)]


# --- raw and ops.processed_files: two commits, and a retry that makes them agree -----------------------------------


def test_a_crash_between_the_raw_commit_and_the_processed_files_record_is_completed_by_the_retry(
    spark, tmp_path, monkeypatch
):
    # Raw's slice and ops.processed_files are separate commits. A run that dies between them leaves the file's
    # lines in raw but not recorded as processed: the retry plans it again, and its lines replace themselves.
    import uuid
    from pathlib import Path

    from pyspark.sql import types as T

    from lakehouse_jobs import landed_files
    from lakehouse_jobs.landed_files import LandedFeed, load_landed, read_processed

    suffix = uuid.uuid4().hex[:8]
    schema = T.StructType(
        [
            T.StructField("ds", T.DateType(), False),
            T.StructField("_source_file", T.StringType(), False),
            T.StructField("_line_number", T.LongType(), False),
            T.StructField("line", T.StringType()),
        ]
    )
    lines = ["first", "second", "third"]
    (tmp_path / "a b.txt").write_text("\n".join(lines) + "\n")

    def read(spark, files, ds):
        day = dt.date.fromisoformat(ds)
        rows = [
            (day, f.path, n, text)
            for f in files
            for n, text in enumerate(Path(f.path.removeprefix("file:")).read_text(encoding="utf-8").splitlines(), 1)
        ]
        return spark.createDataFrame(rows, schema), {f.path: len(lines) for f in files}

    feed = LandedFeed(f"rawcrash{suffix}", f"raw.rawcrash_{suffix}", schema, ".txt", read, "_line_number", "lines")
    real = landed_files.record_processed

    def crash(*args, **kwargs):
        raise RuntimeError("killed between the two commits")

    monkeypatch.setattr(landed_files, "record_processed", crash)
    try:
        with pytest.raises(RuntimeError, match="between the two commits"):
            load_landed(spark, feed, DS, prefix=f"file://{tmp_path}/")
        assert read_processed(spark, feed.domain) == {}  # not recorded: still pending for the sensor and the retry
        monkeypatch.setattr(landed_files, "record_processed", real)
        summary = load_landed(spark, feed, DS, prefix=f"file://{tmp_path}/")
        assert (summary["new_files"], summary["new_lines"]) == (1, len(lines))
        raw = spark.table(f"lake.{feed.raw}").collect()
        assert sorted((r["_line_number"], r["line"]) for r in raw) == list(enumerate(lines, 1))  # each line once
        (processed,) = read_processed(spark, feed.domain).values()
        assert processed.path.endswith("/a b.txt") and processed.ds == dt.date.fromisoformat(DS)
        assert load_landed(spark, feed, DS, prefix=f"file://{tmp_path}/")["new_files"] == 0  # now done
    finally:
        spark.sql(f"DROP TABLE IF EXISTS lake.{feed.raw}")
        spark.sql(f"DELETE FROM lake.ops.processed_files WHERE domain = '{feed.domain}'")


def test_a_re_read_file_leaves_the_older_bronze_slices_only_when_its_run_is_published(spark):
    # Products: a file read again replaces its rows in every older slice of bronze and of the rejects. That removal
    # is on the run's branch, so an audit that fails leaves the older slices of main as they were.
    import uuid

    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from lakehouse_jobs import wap
    from lakehouse_jobs.bronze import Target, publish_slice
    from lakehouse_jobs.iceberg import replace_slice

    suffix, older = uuid.uuid4().hex[:8], "2026-01-05"
    ds_field, lineage = T.StructField("ds", T.DateType(), False), T.StructField("_source_file", T.StringType())
    value = T.StructField("value", T.StringType())
    bronze = Target(f"bronze.wapsup_{suffix}", T.StructType([ds_field, value, lineage]))
    reason = T.StructField("reason", T.StringType(), False)
    rejects = Target(f"bronze.wapsup_{suffix}_rejects", T.StructType([ds_field, reason, value, lineage]))
    domain = f"wapsup{suffix}"
    day = {d: dt.date.fromisoformat(d) for d in (older, DS)}
    # The older run read files f and g.
    replace_slice(
        spark.createDataFrame([(day[older], "a", "f"), (day[older], "b", "g")], bronze.schema),
        bronze.table,
        bronze.schema,
        older,
    )
    refused = spark.createDataFrame([(day[older], "bad_value", "z", "f")], rejects.schema)
    replace_slice(refused, rejects.table, rejects.schema, older)

    def run(kinds, keep_repeats=False):
        rows = [(day[DS], kind, v, "f") for kind, v in kinds]
        classified = spark.createDataFrame(rows, "ds date, kind string, value string, _source_file string")
        classified = classified.withColumn("reason", F.when(F.col("kind") == "reject", F.lit("bad_value")))
        kept = F.col("kind").isin("record", "duplicate") if keep_repeats else F.col("kind") == "record"
        return publish_slice(
            classified, len(kinds), domain=domain, ds=DS,
            accepted=lambda r: r.where(kept).select("ds", "value", "_source_file"),
            rejected=lambda r: r.where(F.col("kind") == "reject").select("ds", "reason", "value", "_source_file"),
            bronze=bronze, rejects=rejects, max_reject_ratio=0.5, key=("value",), superseded=["f"],
        )  # fmt: skip

    def slice_values(target, d):
        return sorted(r["value"] for r in spark.table(f"lake.{target.table}").where(f"ds = DATE '{d}'").collect())

    kinds = [("record", "a2"), ("record", "c"), ("duplicate", "c"), ("reject", "y")]
    try:
        with pytest.raises(wap.AuditFailed):
            run(kinds, keep_repeats=True)
        assert (slice_values(bronze, older), slice_values(rejects, older)) == (["a", "b"], ["z"])  # main as it was
        branch = wap.branch_name(domain, "bronze", DS)
        assert spark.table(f"lake.{bronze.table}.branch_{branch}").where(f"ds = DATE '{older}'").count() == 1
        run(kinds)
        assert (slice_values(bronze, older), slice_values(rejects, older)) == (["b"], [])  # f's old rows are gone
        assert (slice_values(bronze, DS), slice_values(rejects, DS)) == (["a2", "c"], ["y"])
    finally:
        for target in (bronze, rejects):
            spark.sql(f"DROP TABLE IF EXISTS lake.{target.table}")
        spark.sql(f"DELETE FROM lake.gold.pipeline_runs WHERE domain = '{domain}'")
