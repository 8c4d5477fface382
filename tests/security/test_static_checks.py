"""The static guards stay on: ruff's bandit rules (S) run over the code with no blanket
ignore hiding a finding, S608 really flags SQL built from strings, every raw SQL site in the
code binds its values instead of formatting them in, and every vulnerability the audit
ignores is explained in SECURITY.md."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())
RUFF = Path(sys.executable).parent / "ruff"

# Reviewed: what tests may do that production code may not (hard-coded test passwords,
# localhost URLs, the pseudo-random numbers of property tests, running our own tools).
TEST_IGNORES = {"S105", "S106", "S310", "S311", "S603", "S607"}


def test_the_bandit_rules_are_selected_and_no_blanket_ignore_hides_them() -> None:
    lint = PYPROJECT["tool"]["ruff"]["lint"]
    assert "S" in lint["select"]
    assert [rule for rule in lint.get("ignore", []) if rule.startswith("S")] == ["S101"]
    for pattern, rules in lint.get("per-file-ignores", {}).items():
        security = {rule for rule in rules if rule.startswith("S")}
        if pattern.startswith("tests/"):
            assert security <= TEST_IGNORES, pattern
        else:
            assert not security, f"{pattern} silences security rules: {security}"
        assert "S" not in rules and "S608" not in security, pattern


def ruff_findings(source: str, filename: str) -> set[str]:
    completed = subprocess.run(
        [str(RUFF), "check", "--no-cache", "--output-format", "json", "--stdin-filename", filename],
        input=source,
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
        check=False,
    )
    return {finding["code"] for finding in json.loads(completed.stdout)}


def test_ruff_flags_sql_built_from_strings_in_every_linted_tree() -> None:
    unsafe = (
        "def find(session, name):\n"
        "    return session.execute(f\"SELECT * FROM orders WHERE customer_name = '{name}'\")\n"
    )
    for tree in ("services/pickup", "operators/pickup_operator", "migrations", "tests", "bench"):
        assert "S608" in ruff_findings(unsafe, f"{tree}/probe.py"), tree


SQL_CALLS = {"text", "execute", "exec_driver_sql", "executemany", "fetch", "fetchrow", "fetchval"}
# Reviewed exceptions: (file, what the formatted string holds).
# Identifiers and PRAGMA values cannot be bound parameters; each of these formats in only
# module constants or literals, never input.
FORMATTED_ON_PURPOSE = {
    ("services/pickup/adapters/database.py", "PRAGMA busy_timeout"),  # an int constant
    ("services/pickup/adapters/database.py", "PRAGMA foreign_keys"),  # 'ON' or 'OFF'
    ("migrations/versions/0002_order_search_indexes.py", "CREATE INDEX"),  # TRIGRAM_INDEXES
    ("migrations/versions/0002_order_search_indexes.py", "DROP INDEX"),  # TRIGRAM_INDEXES
}


def formatted_sql_sites() -> list[tuple[str, int, str]]:
    sites = []
    for tree in ("services", "operators", "migrations"):
        for path in sorted((REPOSITORY / tree).rglob("*.py")):
            module = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(module):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                name = getattr(node.func, "attr", getattr(node.func, "id", None))
                if name not in SQL_CALLS:
                    continue
                first = node.args[0]
                built = (
                    isinstance(first, ast.JoinedStr)
                    or (isinstance(first, ast.BinOp) and isinstance(first.op, ast.Add | ast.Mod))
                    or (isinstance(first, ast.Call) and getattr(first.func, "attr", "") == "format")
                )
                if built:
                    relative = str(path.relative_to(REPOSITORY))
                    sites.append((relative, node.lineno, ast.unparse(first)))
    return sites


def test_raw_sql_binds_its_values_instead_of_formatting_them_in() -> None:
    unexpected = [
        f"{path}:{line}: {source}"
        for path, line, source in formatted_sql_sites()
        if not any(path == allowed and text in source for allowed, text in FORMATTED_ON_PURPOSE)
    ]
    assert unexpected == []
    # The allow-list is not stale: each exception still exists.
    found = formatted_sql_sites()
    for allowed, text in FORMATTED_ON_PURPOSE:
        assert any(path == allowed and text in source for path, _, source in found), text


def test_every_ignored_vulnerability_is_explained_in_security_md() -> None:
    spec = importlib.util.spec_from_file_location("audit", REPOSITORY / "scripts" / "audit.py")
    assert spec and spec.loader
    audit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(audit)
    security = (REPOSITORY / "SECURITY.md").read_text()
    section = security.split("## Dependency audit", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"\b(?:PYSEC-\d+-\d+|GHSA(?:-\w{4}){3}|CVE-\d+-\d+)\b", section))
    assert set(audit.IGNORED) == documented
    assert all(reason.strip() for reason in audit.IGNORED.values())
