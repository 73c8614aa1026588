"""The table declarations of ``spark/lakehouse_jobs/tables.toml``, read once for the Airflow side and the REST API.

The Spark image owns the declaration (its build context is ``spark/``); the Airflow image copies the whole project,
so the same file is read here through the same stdlib-only reader, ``lakehouse_jobs.declarations``, without pyspark.
Where ``lakehouse_jobs`` is not installed (the Airflow image), ``spark/`` is put on the path for it.
"""

from __future__ import annotations

import sys
from pathlib import Path

SPARK_DIR = Path(__file__).resolve().parents[1] / "spark"

try:
    from lakehouse_jobs import declarations
except ModuleNotFoundError:
    sys.path.append(str(SPARK_DIR))
    from lakehouse_jobs import declarations

DECLARED: declarations.Declarations = declarations.load()
