"""A class-data-sharing archive for the local Spark JVMs: the tests' and ``make run``'s jobs start in half the time.

Every local Spark job is a new JVM that loads and verifies some 15,000 classes of Spark, Hadoop, Iceberg and the AWS
SDK before it does anything, and the test suite starts a few hundred of them on two cores. A dynamic CDS archive
(JDK 13+, ``-XX:ArchiveClassesAtExit``) keeps those classes parsed and verified in a file that later JVMs map
(``-XX:SharedArchiveFile``). ``python -m devtools.spark_cds`` makes it: one training JVM runs the trips and products
pipelines (raw, bronze and gold: CSV and Parquet over S3A, the JDBC catalog, MERGE, write-audit-publish branches) on
a few hundred generated rows against moto and a throwaway catalog database, and writes the archive when it exits.

The archive is only valid for the JDK and the exact class path it was made with (the JVM checks each jar's size and
modification time, and ignores a mismatched archive without a word, running as without it), so it is keyed by both
and remade by ``devtools/setup.sh`` when either changes. The class path must not contain a non-empty directory, which
is why local runs pass ``spark/conf/spark-defaults.conf`` as ``--properties-file`` instead of putting ``spark/conf``
on it (``lakehouse_jobs.session.use_project_defaults``). Results never depend on it: the JVM loads the same classes
from the same jars either way. The Spark image does not use it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from devtools import local_stack

ARCHIVE = local_stack.ROOT / ".jars" / "spark-cds.jsa"
TRAINING_DS = "2024-01-03"


def archive_key() -> str:
    """What the archive depends on: the JVM's version and every jar of the class path, by path, size and mtime."""
    import pyspark

    version = subprocess.run(["java", "-version"], capture_output=True, text=True, check=True).stderr
    jars = sorted(Path(pyspark.__file__).parent.joinpath("jars").glob("*.jar"))
    jars += [Path(p) for p in local_stack.jar_list().split(",") if p]
    lines = [version] + [f"{p} {p.stat().st_size} {p.stat().st_mtime_ns}" for p in jars]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _key_file(archive: Path) -> Path:
    return archive.with_suffix(".key")


def jvm_option(archive: Path = ARCHIVE) -> str:
    """``-XX:SharedArchiveFile=…`` when a current archive exists, else an empty string."""
    key = _key_file(archive)
    if archive.is_file() and key.is_file() and key.read_text().strip() == archive_key():
        return f"-XX:SharedArchiveFile={archive}"
    return ""


def without_archive(jvm_options: str) -> str:
    """``jvm_options`` without the archive option (for a JVM elsewhere, such as a container, which lacks the file)."""
    return " ".join(o for o in jvm_options.split() if not o.startswith("-XX:SharedArchiveFile="))


def _train(ds: str) -> None:
    """In the training JVM: the trips and products jobs, one after the other, in one session (as the CLI runs them)."""
    from lakehouse_jobs.__main__ import parse, resolve
    from lakehouse_jobs.session import JobEnv, build_session

    env = JobEnv.from_env()
    spark = build_session("cds-training", env)
    jvm = spark.sparkContext._gateway.proc  # the launcher's process, which is the driver JVM (spark-class execs it)
    try:
        for domain in ("trips", "products"):
            for layer in ("raw", "bronze", "gold"):
                job, options = resolve(parse([domain, layer, "--ds", ds]), env)
                print(f"[spark-cds] {domain} {layer}: {job.run(spark, ds, **options)}", flush=True)
    finally:
        spark.stop()
    # The JVM writes the archive as it exits, which it does when its stdin closes; wait for that, not for Python.
    jvm.stdin.close()
    jvm.wait(timeout=600)


def build(archive: Path = ARCHIVE, *, force: bool = False) -> Path:
    """Make the archive unless a current one exists; return its path."""
    key = archive_key()
    if not force and jvm_option(archive):
        print(f"[spark-cds] {archive} is current", flush=True)
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    catalog_db = f"lakehouse_cds_{uuid.uuid4().hex[:8]}"
    partial = archive.with_suffix(".jsa.partial")
    partial.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp, local_stack.moto_s3(Path(tmp) / "moto.log") as endpoint:
        local_stack.recreate_database(catalog_db)
        try:
            env = {
                **os.environ,
                **local_stack.job_env(endpoint, catalog_db),
                "AWS_ACCESS_KEY_ID": local_stack.S3_KEY,  # for the sample generators' uploads
                "AWS_SECRET_ACCESS_KEY": local_stack.S3_KEY,
                "PYTHONPATH": os.pathsep.join([str(local_stack.ROOT / "spark"), str(local_stack.ROOT)]),
                # -Xlog:cds=error: not a warning for each of the thousands of classes it cannot archive
                "SPARK_SUBMIT_OPTS": f"{os.environ.get('SPARK_SUBMIT_OPTS', '')} "
                f"-XX:ArchiveClassesAtExit={partial} -Xlog:cds=error",
            }
            drops = [
                ["devtools.samples.trips", "drop", "--rows", "400", "--seed", "1", "--start", "2024-01-01"],
                ["devtools.samples.products", "drop", "--hours", "3", "--seed", "1", "--start", "2024-01-01 00:00:00"],
            ]
            for drop in drops:
                subprocess.run(
                    [sys.executable, "-m", *drop, "--endpoint", endpoint],
                    env=env,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
            subprocess.run(
                [sys.executable, "-m", "devtools.spark_cds", "train", "--ds", TRAINING_DS], env=env, check=True
            )
        finally:
            local_stack.drop_database(catalog_db)
    if not partial.is_file():
        raise RuntimeError(f"the training JVM exited without writing {partial}")
    partial.replace(archive)
    _key_file(archive).write_text(key + "\n")
    print(f"[spark-cds] wrote {archive} ({archive.stat().st_size / 2**20:.0f} MiB)", flush=True)
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.spark_cds", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    make = commands.add_parser("build", help="make the archive unless a current one exists (the default)")
    make.add_argument("--force", action="store_true", help="make it even if a current one exists")
    train = commands.add_parser("train", help="(internal) the training JVM's jobs")
    train.add_argument("--ds", default=TRAINING_DS)
    commands.add_parser("option", help="print the JVM option that uses the archive, if it is current")
    args = parser.parse_args(argv)
    if args.command == "train":
        _train(args.ds)
    elif args.command == "option":
        print(jvm_option())
    else:
        build(force=getattr(args, "force", False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
