"""A static guard: no SQL the TiDB loader or the API sends uses a construct only MariaDB (the test stand-in) accepts.

MariaDB runs these tests, so SQL that MariaDB accepts and TiDB refuses would pass them and fail in production. Every
string literal of the modules that talk to TiDB is checked (f-strings with their placeholders as ``?``), except
docstrings, which describe rather than send, and constants whose name ends in ``_MARIADB``: SQL the code sends only
after it found a MariaDB server.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
# API modules whose SQL goes to PostgreSQL, not TiDB (the ingestion events): PostgreSQL's RETURNING and IF NOT EXISTS
# are right there. test_postgres_modules_never_reach_tidb keeps this list honest.
POSTGRES_ONLY = {ROOT / "include/api/events.py", ROOT / "include/api/ingest.py"}
MODULES = sorted({ROOT / "include/serving/tidb.py", ROOT / "include/serving/loads.py",
                  *(ROOT / "include/api").glob("*.py")} - POSTGRES_ONLY)  # fmt: skip
# MariaDB-only SQL, each with why TiDB fails it.
FORBIDDEN = {
    "RETURNING (INSERT/DELETE ... RETURNING: MariaDB only)": re.compile(r"\bRETURNING\b"),
    "sequences (NEXTVAL, NEXT VALUE FOR, LASTVAL, CREATE SEQUENCE: MariaDB's syntax)": re.compile(
        r"\bNEXTVAL\s*\(|\bNEXT\s+VALUE\s+FOR\b|\bLASTVAL\s*\(|\bCREATE\s+SEQUENCE\b", re.IGNORECASE
    ),
    "max_statement_time (MariaDB's statement limit; TiDB has max_execution_time)": re.compile(
        r"max_statement_time", re.IGNORECASE
    ),
    "IF [NOT] EXISTS on an index (MariaDB's extension)": re.compile(
        r"\b(?:ADD|CREATE)\s+(?:UNIQUE\s+)?(?:INDEX|KEY)\s+IF\s+NOT\s+EXISTS\b|\bDROP\s+(?:INDEX|KEY)\s+IF\s+EXISTS\b",
        re.IGNORECASE,
    ),
    "ADD COLUMN IF NOT EXISTS (MariaDB's extension)": re.compile(r"\bADD\s+COLUMN\s+IF\s+NOT\s+EXISTS\b", re.I),
    "CREATE OR REPLACE TABLE (MariaDB only)": re.compile(r"\bCREATE\s+OR\s+REPLACE\s+TABLE\b", re.IGNORECASE),
    "SET STATEMENT ... FOR (MariaDB only)": re.compile(r"\bSET\s+STATEMENT\b", re.IGNORECASE),
    "LIMIT ROWS EXAMINED (MariaDB only)": re.compile(r"\bROWS\s+EXAMINED\b", re.IGNORECASE),
    "ANALYZE ... PERSISTENT FOR (MariaDB's engine-independent statistics)": re.compile(r"\bPERSISTENT\s+FOR\b", re.I),
    "system-versioned tables (MariaDB only)": re.compile(r"\bSYSTEM\s+VERSIONING\b|\bFOR\s+SYSTEM_TIME\b", re.I),
    "DELETE ... LIMIT (re-scans TiDB's MVCC tombstones batch after batch; delete by key range)": re.compile(
        r"^\s*DELETE\b.*\bLIMIT\b", re.IGNORECASE | re.DOTALL
    ),
}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _mariadb_only(tree: ast.AST) -> set[int]:
    """The string nodes assigned to names ending in ``_MARIADB``."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id.endswith("_MARIADB") for t in targets) and node.value:
                ids |= {id(sub) for sub in ast.walk(node.value)}
    return ids


def _text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "?" for part in node.values)
    return None


def sql_strings(path: Path) -> list[tuple[int, str]]:
    """Every string literal of ``path`` that could be sent to TiDB, with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree) | _mariadb_only(tree)
    inside_fstrings = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    found = []
    for node in ast.walk(tree):
        if id(node) in skip or id(node) in inside_fstrings:
            continue
        text = _text(node)
        if text is not None:
            found.append((node.lineno, text))
    return found


def violations(strings: list[tuple[int, str]]) -> list[str]:
    return [f"line {line}: {what}: {text.strip()[:100]!r}" for line, text in strings
            for what, pattern in FORBIDDEN.items() if pattern.search(text)]  # fmt: skip


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_mariadb_only_sql(path):
    assert violations(sql_strings(path)) == []


def test_postgres_modules_never_reach_tidb():
    for path in POSTGRES_ONLY:
        if path.exists():
            text = path.read_text(encoding="utf-8")
            # Neither the TiDB pool (include.api.db, app.state.db) nor the loader.
            assert not re.search(r"include\.api\.db|state\.db\b|include\.serving\.tidb", text), path


def test_the_guard_reads_the_sql_the_code_sends():
    loader = " ".join(text for _, text in sql_strings(ROOT / "include/serving/tidb.py"))
    api = " ".join(text for path in MODULES if "api" in path.parts for _, text in sql_strings(path))
    for expected in ("LOAD DATA LOCAL INFILE", "ON DUPLICATE KEY UPDATE", "DELETE FROM ?", "CREATE OR REPLACE VIEW",
                     "ANALYZE TABLE {table} INDEX"):  # fmt: skip
        assert expected in loader
    for expected in ("SET SESSION max_execution_time", "SELECT ds FROM ?", ") AS parts GROUP BY trip_date"):
        assert expected in api
    # ...and skips what MariaDB alone receives.
    assert (
        "max_statement_time" not in api and "SET SESSION max_statement_time" in (ROOT / "include/api/db.py").read_text()
    )


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t (a) VALUES (1) RETURNING id",
        "SELECT NEXTVAL(s)",
        "SELECT NEXT VALUE FOR s",
        "SET SESSION max_statement_time = 5",
        "ALTER TABLE t ADD INDEX IF NOT EXISTS i (a)",
        "CREATE INDEX IF NOT EXISTS i ON t (a)",
        "ALTER TABLE t ADD COLUMN IF NOT EXISTS c INT",
        "CREATE OR REPLACE TABLE t (a INT)",
        "SET STATEMENT max_statement_time=1 FOR SELECT 1",
        "DELETE FROM t WHERE ds = %s LIMIT 10000",
        "ANALYZE TABLE t PERSISTENT FOR ALL",
    ],
)
def test_the_guard_catches_mariadb_only_sql(sql):
    assert violations([(1, sql)]) != []


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE IF NOT EXISTS t (a INT, KEY i (a))",
        "ALTER TABLE t ADD INDEX i (a)",
        "DELETE FROM t WHERE ds = %s AND _load_id = %s AND _row >= %s AND _row < %s",
        "SELECT ds FROM t ORDER BY ds DESC LIMIT 1",
        "ANALYZE TABLE t INDEX a, b",
    ],
)
def test_the_guard_lets_tidb_sql_pass(sql):
    assert violations([(1, sql)]) == []
