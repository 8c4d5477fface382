"""Audit the locked dependencies for known vulnerabilities (``make audit``).

Exports every locked package (all dependency groups) from uv.lock and asks pip-audit about
each pinned version through PyPI's vulnerability data. The verdict is one of three, so a run
that could not look never passes for a clean one:

- exit 0: every package was audited and none has a known vulnerability that is not ignored;
- exit 1: known vulnerabilities (each printed with its fix versions);
- exit 2: the audit is incomplete: some packages could not be looked up (the service is
  unreachable, or answers without per-version data). ``--incomplete=warn`` turns this into a
  loud warning with exit 0, which ``make test`` uses so a machine without the service still
  runs the suite; ``make audit`` on its own fails.

Ignored vulnerabilities live in ``IGNORED`` below, each with why it does not apply; SECURITY.md
lists the same ids (tests/security/test_audit_config.py keeps the two in step).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]

# id -> why it does not apply to pickup. Upgrade instead wherever a fixed release exists
# (`uv lock --upgrade-package NAME`).
IGNORED: dict[str, str] = {}


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        sys.exit(f"audit: {name} is not installed (run `make install`)")
    return found


def export_requirements(target: Path) -> None:
    uv = shutil.which("uv")
    command = [uv] if uv else [sys.executable, "-m", "uv"]
    command += [
        "export",
        "--frozen",
        "--no-hashes",
        "--no-emit-project",
        "--all-groups",
        "--format",
        "requirements-txt",
        "--output-file",
        str(target),
    ]
    subprocess.run(command, cwd=REPOSITORY, check=True, capture_output=True)  # noqa: S603 (fixed argv)


def run_pip_audit(requirements: Path, report: Path) -> None:
    command = [
        _tool("pip-audit"),
        "--requirement",
        str(requirements),
        "--no-deps",  # the export is the whole, pinned closure already
        "--disable-pip",
        "--vulnerability-service",
        "pypi",
        "--progress-spinner",
        "off",
        "--format",
        "json",
        "--output",
        str(report),
    ]
    for vulnerability in sorted(IGNORED):
        command += ["--ignore-vuln", vulnerability]
    # pip-audit exits 1 when it finds something; the report says what, so judge that instead.
    completed = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if not report.exists() or not report.read_text().strip():
        sys.stderr.write(completed.stderr)
        sys.exit(f"audit: pip-audit produced no report (exit {completed.returncode})")


def judge(report: dict[str, object]) -> tuple[list[str], list[str], int]:
    """(vulnerability lines, skipped-package lines, packages audited)."""
    found: list[str] = []
    skipped: list[str] = []
    audited = 0
    for dependency in report["dependencies"]:  # type: ignore[attr-defined]
        name = dependency["name"]
        if "skip_reason" in dependency:
            skipped.append(f"{name}: {dependency['skip_reason']}")
            continue
        audited += 1
        for vulnerability in dependency.get("vulns", []):
            if vulnerability["id"] in IGNORED:
                continue
            fixed = ", ".join(vulnerability.get("fix_versions") or []) or "no fixed release"
            aliases = ", ".join(vulnerability.get("aliases") or [])
            found.append(
                f"{name} {dependency['version']}: {vulnerability['id']}"
                + (f" ({aliases})" if aliases else "")
                + f"; fixed in: {fixed}"
            )
    return found, skipped, audited


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incomplete", choices=("fail", "warn"), default="fail")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pickup-audit-") as scratch:
        requirements = Path(scratch) / "requirements.txt"
        report_path = Path(scratch) / "report.json"
        export_requirements(requirements)
        run_pip_audit(requirements, report_path)
        report = json.loads(report_path.read_text())
    found, skipped, audited = judge(report)
    total = audited + len(skipped)
    if found:
        print(f"audit: {len(found)} known vulnerabilities in the locked dependencies:")
        for line in found:
            print(f"  {line}")
        print("Upgrade (uv lock --upgrade-package NAME), or document why one does not apply")
        print("in SECURITY.md and scripts/audit.py (IGNORED).")
        return 1
    if skipped:
        banner = "=" * 78
        print(banner, file=sys.stderr)
        print(
            f"AUDIT INCOMPLETE: {len(skipped)} of {total} locked packages could not be "
            "audited;\nthe vulnerability service is unreachable or has no data for them. "
            "This is NOT\na clean result. First ones:",
            file=sys.stderr,
        )
        for line in skipped[:5]:
            print(f"  {line}", file=sys.stderr)
        print(banner, file=sys.stderr)
        return 0 if options.incomplete == "warn" else 2
    ignored = f", {len(IGNORED)} ignored (see SECURITY.md)" if IGNORED else ""
    print(f"audit: {audited} locked packages audited, no known vulnerabilities{ignored}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
