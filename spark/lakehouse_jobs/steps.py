"""Named steps of a job: the Spark jobs a step runs carry its name, and its wall time is logged.

The name is Spark's job description, so the Spark UI and the event log (``SPARK_EVENT_LOG_DIR``, read by
``bench/``) group the work by step instead of by ``count at NativeMethodAccessorImpl.java:0``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


@contextmanager
def step(spark, what: str) -> Iterator[None]:
    """Run the block as the step ``what`` (``tweets bronze: write rejects``); a nested step restores the outer name."""
    context = spark.sparkContext
    outer = context.getLocalProperty("spark.job.description")
    context.setJobDescription(what)
    started = time.perf_counter()
    try:
        yield
    finally:
        context.setLocalProperty("spark.job.description", outer)
        log.info("%s: %.2f s", what, time.perf_counter() - started)
