"""Where a Spark application's time went, from its event log (``spark.eventLog``, see ``SPARK_EVENT_LOG_DIR``).

Each SQL execution carries the job description of the step that ran it (lakehouse_jobs.steps); executions are
summed per description. What a step spends outside any execution (catalog commits, planning, the driver's Python)
is its logged wall time minus this.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path


def sql_time_by_description(event_log_dir: Path) -> dict[str, tuple[int, float]]:
    """``{description: (executions, seconds)}`` over every event log file under ``event_log_dir``."""
    started: dict[int, tuple[str, int]] = {}
    totals: dict[str, list] = defaultdict(lambda: [0, 0.0])
    for path in sorted(event_log_dir.iterdir()):
        with open(path) as events:
            for line in events:
                if "SparkListenerSQLExecution" not in line[:120]:
                    continue
                event = json.loads(line)
                kind = event["Event"].rsplit(".", 1)[-1]
                if kind == "SparkListenerSQLExecutionStart":
                    started[event["executionId"]] = (event.get("description") or "?", event["time"])
                elif kind == "SparkListenerSQLExecutionEnd" and event["executionId"] in started:
                    what, t0 = started.pop(event["executionId"])
                    totals[what][0] += 1
                    totals[what][1] += (event["time"] - t0) / 1000
    return {k: (n, s) for k, (n, s) in totals.items()}


def format_profile(profile: dict[str, tuple[int, float]], width: int = 48) -> str:
    """The profile as a table, slowest first."""
    rows = [f"{'step (Spark job description)':<{width}}{'SQL runs':>9}{'seconds':>9}"]
    for what, (n, seconds) in sorted(profile.items(), key=lambda kv: -kv[1][1]):
        rows.append(f"{what[:width]:<{width}}{n:>9}{seconds:>9.1f}")
    return "\n".join(rows)
