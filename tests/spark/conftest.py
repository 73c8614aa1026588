"""Fixtures shared by the Spark tests."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture()
def throwaway_bronze(spark):
    """``make(prefix, domain_prefix)``: bronze/rejects targets of their own and a domain of its own, dropped after.

    The domain keeps the test's ``gold.pipeline_runs`` rows apart from every other test's.
    """
    from pyspark.sql import types as T

    from lakehouse_jobs.bronze import Target

    made = []

    def make(prefix: str, domain_prefix: str):
        suffix = uuid.uuid4().hex[:8]
        bronze = Target(
            f"bronze.{prefix}{suffix}",
            T.StructType([T.StructField("ds", T.DateType(), False), T.StructField("value", T.StringType())]),
        )
        rejects = Target(
            f"bronze.{prefix}{suffix}_rejects",
            T.StructType(
                [
                    T.StructField("ds", T.DateType(), False),
                    T.StructField("reason", T.StringType(), False),
                    T.StructField("value", T.StringType()),
                ]
            ),
        )
        made.append((bronze, rejects, f"{domain_prefix}{suffix}"))
        return made[-1]

    yield make
    for bronze, rejects, domain in made:
        for target in (bronze, rejects):
            spark.sql(f"DROP TABLE IF EXISTS lake.{target.table}")
        if spark.catalog.tableExists("lake.gold.pipeline_runs"):
            spark.sql(f"DELETE FROM lake.gold.pipeline_runs WHERE domain = '{domain}'")
