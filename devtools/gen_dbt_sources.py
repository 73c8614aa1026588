"""Write the dbt source of the served gold tables from their declaration (spark/lakehouse_jobs/tables.toml).

``python -m devtools.gen_dbt_sources`` rewrites include/dbt/models/staging/_gold__sources.yml; ``--check`` only
says whether the committed file is current (exit 1 when not). Each table gets its description, its columns' (the
Iceberg columns, ``_loaded_at`` and the PostGIS points the PostgreSQL loader adds), and a freshness on
``_loaded_at`` by its domain's cadence.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "include" / "dbt" / "models" / "staging" / "_gold__sources.yml"
HEADER = (
    "# generated from spark/lakehouse_jobs/tables.toml by devtools/gen_dbt_sources.py; do not edit\n"
    "# (python -m devtools.gen_dbt_sources). The serving load log, not a gold table, is in __sources.yml.\n"
)
SOURCE_DESCRIPTION = (
    "The gold layer as served into PostgreSQL by the serve DAG: one table per Iceberg gold table, each row carrying "
    "the `ds` slice it came from and `_loaded_at`."
)


def _declared() -> Any:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from include.tables import DECLARED

    return DECLARED


def _duration(pair: tuple[int, str]) -> dict[str, Any]:
    count, period = pair
    return {"count": count, "period": period}


def _table(table: Any, declared: Any) -> dict[str, Any]:
    freshness = declared.domains[table.domain].freshness
    columns = [{"name": c.name, "description": c.description} for c in (*table.columns, declared.shared["_loaded_at"])]
    columns += [
        {
            "name": p.name,
            "description": f"geometry(Point, {p.srid}) generated from {p.longitude}/{p.latitude} (GiST-indexed).",
        }
        for p in table.points
    ]
    return {
        "name": table.name,
        "description": table.description,
        "config": {
            "loaded_at_field": "_loaded_at",
            "freshness": {
                "warn_after": _duration(freshness.warn_after),
                "error_after": _duration(freshness.error_after),
            },
        },
        "columns": columns,
    }


def render(declared: Any = None) -> str:
    """The text of ``_gold__sources.yml`` for ``declared`` (by default the project's declarations)."""
    declared = declared or _declared()
    document = {
        "version": 2,
        "sources": [
            {
                "name": "gold",
                "description": SOURCE_DESCRIPTION,
                "schema": "gold",
                "tables": [_table(table, declared) for table in declared.gold],
            }
        ],
    }
    return HEADER + yaml.safe_dump(document, sort_keys=False, width=116, allow_unicode=True)


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) the generated sources file; 1 when ``--check`` finds it stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file differs")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = SOURCES.read_text() if SOURCES.exists() else ""
        if current != text:
            print(f"{SOURCES.relative_to(ROOT)} is stale: run python -m devtools.gen_dbt_sources", file=sys.stderr)
            return 1
        return 0
    SOURCES.write_text(text)
    print(f"wrote {SOURCES.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
