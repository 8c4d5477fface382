"""Audit the locked dependencies for known vulnerabilities (``make audit``).

Exports every locked package (all dependency groups) from uv.lock and asks pip-audit about
each pinned version through PyPI's vulnerability data (the per-version JSON API,
``/pypi/<name>/<version>/json``).

Where pip-audit had to skip a package (typically because that endpoint does not answer on this
machine), the project-level JSON (``/pypi/<name>/json``) is asked instead. It describes only the
project's latest release (``info.version``) and lists that release's advisories
(``vulnerabilities``), so it audits a package exactly when the locked version is that latest
release. A package locked below its latest release stays "could not be audited": what affects
the older version is unknown here.

The verdict is one of three, so a run that could not look never passes for a clean one:

- exit 0: every package was audited and none has a known vulnerability that is not ignored;
- exit 1: known vulnerabilities (each printed with its fix versions);
- exit 2: the audit is incomplete: some packages could be audited by neither source.
  ``--incomplete=warn`` turns this into a loud warning with exit 0, which ``make test`` uses
  so a machine without the service still runs the suite; ``make audit`` on its own fails.

Ignored vulnerabilities live in ``IGNORED`` below, each with why it does not apply; SECURITY.md
lists the same ids (tests/security/test_static_checks.py keeps the two in step).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

REPOSITORY = Path(__file__).resolve().parents[1]
PROJECT_JSON = "https://pypi.org/pypi/{name}/json"
REQUEST_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
CONCURRENCY = 16
DEADLINE_SECONDS = 40.0  # for all project-JSON look-ups together
AUDITED, BELOW_LATEST, NO_DATA = "audited", "below latest", "no data"

# id -> why it does not apply to pickup. Upgrade instead wherever a fixed release exists
# (`uv lock --upgrade-package NAME`).
IGNORED: dict[str, str] = {}


class Audit:
    """What the audit saw, package by package."""

    def __init__(self) -> None:
        self.found: list[str] = []  # one line per vulnerability
        self.by_pip_audit: list[str] = []  # audited package names
        self.by_project_json: list[str] = []
        self.below_latest: list[str] = []  # "name locked (latest X)"
        self.unaudited: list[tuple[str, str]] = []  # ("name version", why): no usable data
        self.skip_reasons: list[str] = []  # what pip-audit said when it skipped

    @property
    def total(self) -> int:
        return (
            len(self.by_pip_audit)
            + len(self.by_project_json)
            + len(self.below_latest)
            + len(self.unaudited)
        )

    @property
    def complete(self) -> bool:
        return not self.below_latest and not self.unaudited


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


def locked_versions(requirements: str) -> dict[str, list[str]]:
    """Canonical name -> pinned version(s) in a ``uv export`` file, for this environment."""
    pins: dict[str, list[str]] = {}
    for raw in requirements.splitlines():
        line = raw.split("#", 1)[0].strip().removesuffix("\\").strip()
        if not line or line.startswith("-"):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue  # not installed here; pip-audit leaves it out as well
        exact = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        if len(exact) == 1:
            pins.setdefault(canonicalize_name(requirement.name), []).append(exact[0])
    return pins


def run_pip_audit(requirements: Path, report: Path) -> dict[str, Any] | None:
    """pip-audit's JSON report, or None (with its stderr printed) when it produced none."""
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
        print(f"audit: pip-audit produced no report (exit {completed.returncode})", file=sys.stderr)
        return None
    return json.loads(report.read_text())


def _is_ignored(identifier: str, aliases: Iterable[str]) -> bool:
    return identifier in IGNORED or any(alias in IGNORED for alias in aliases)


def _describe(
    name: str, version: str, identifier: str, aliases: list[str], fixed: list[str]
) -> str:
    return (
        f"{name} {version}: {identifier}"
        + (f" ({', '.join(aliases)})" if aliases else "")
        + f"; fixed in: {', '.join(fixed) or 'no fixed release'}"
    )


def _version_order(text: str) -> tuple[int, Version | str]:
    try:
        return (0, Version(text))
    except InvalidVersion:
        return (1, text)


def judge(report: Mapping[str, Any]) -> tuple[Audit, list[tuple[str, str]]]:
    """pip-audit's report -> what it audited and found, and (name, skip reason) for the rest."""
    audit = Audit()
    skipped: list[tuple[str, str]] = []
    for dependency in report["dependencies"]:
        name = dependency["name"]
        if "skip_reason" in dependency:
            skipped.append((name, dependency["skip_reason"]))
            continue
        audit.by_pip_audit.append(name)
        for vulnerability in dependency.get("vulns", []):
            aliases = list(vulnerability.get("aliases") or [])
            if _is_ignored(vulnerability["id"], aliases):
                continue
            audit.found.append(
                _describe(
                    name,
                    dependency["version"],
                    vulnerability["id"],
                    aliases,
                    list(vulnerability.get("fix_versions") or []),
                )
            )
    return audit, skipped


def judge_project(name: str, locked: str, project: Mapping[str, Any]) -> tuple[str, list[str]]:
    """Judge one locked package by its project-level JSON: (status, lines).

    - ("audited", vulnerability lines): the locked version is the latest release, whose
      advisories the JSON lists (withdrawn and IGNORED ones left out);
    - ("below latest", ["name locked (latest X)"]): its vulnerabilities are unknown here;
    - ("no data", [why]): the JSON cannot say anything about the locked version.
    """
    latest = (project.get("info") or {}).get("version")
    records = project.get("vulnerabilities")
    if not isinstance(latest, str) or not isinstance(records, list):
        return NO_DATA, ["the project JSON has no latest version or no vulnerabilities list"]
    if not all(isinstance(record, dict) and "id" in record for record in records):
        return NO_DATA, ["the project JSON has a vulnerability record without an id"]
    try:
        ours, theirs = Version(locked), Version(latest)
    except InvalidVersion:
        return NO_DATA, [f"cannot compare version {locked} with the latest release {latest}"]
    if ours < theirs:
        return BELOW_LATEST, [f"{name} {locked} (latest {latest})"]
    if ours > theirs:
        return NO_DATA, [f"locked version is newer than the latest release {latest}"]
    found = []
    for record in records:
        if record.get("withdrawn") is not None:
            continue
        aliases = list(record.get("aliases") or [])
        if _is_ignored(record["id"], aliases):
            continue
        fixed = sorted(record.get("fixed_in") or [], key=_version_order)
        found.append(_describe(name, locked, record["id"], aliases, fixed))
    return AUDITED, found


Fetch = Callable[[str], Awaitable[dict[str, Any] | str]]


async def fetch_all(names: Iterable[str], fetch: Fetch, deadline: float) -> dict[str, Any]:
    """{name: project JSON or why not}, ``CONCURRENCY`` at a time, all within ``deadline``."""
    answers: dict[str, Any] = {}
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(name: str) -> None:
        async with gate:
            answers[name] = await fetch(name)

    tasks = [asyncio.create_task(one(name)) for name in names]
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=deadline)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return answers


async def fetch_projects(
    names: Iterable[str], deadline: float = DEADLINE_SECONDS
) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT, follow_redirects=True) as client:

        async def fetch(name: str) -> dict[str, Any] | str:
            try:
                response = await client.get(PROJECT_JSON.format(name=canonicalize_name(name)))
                if response.status_code != 200:
                    return f"the project JSON answered HTTP {response.status_code}"
                answer = response.json()
            except httpx.HTTPError as error:
                return f"the project JSON is unreachable ({type(error).__name__})"
            except ValueError:
                return "the project JSON is not JSON"
            return answer if isinstance(answer, dict) else "the project JSON is not an object"

        return await fetch_all(names, fetch, deadline)


def merge(
    audit: Audit,
    skipped: Iterable[tuple[str, str]],
    pins: Mapping[str, list[str]],
    projects: Mapping[str, Any],
) -> Audit:
    """Audit what pip-audit skipped from the project JSON where it applies (see judge_project)."""
    for name, reason in sorted(skipped):
        audit.skip_reasons.append(reason)
        versions = pins.get(canonicalize_name(name), [])
        if len(versions) != 1:
            audit.unaudited.append((name, "not pinned to exactly one version in the export"))
            continue
        label = f"{name} {versions[0]}"
        project = projects.get(name)
        if project is None:
            audit.unaudited.append((label, "no answer from the project JSON in time"))
        elif isinstance(project, str):
            audit.unaudited.append((label, project))
        else:
            status, lines = judge_project(name, versions[0], project)
            if status == AUDITED:
                audit.by_project_json.append(name)
                audit.found.extend(lines)
            elif status == BELOW_LATEST:
                audit.below_latest.extend(lines)
            else:
                audit.unaudited.append((label, lines[0]))
    return audit


def coverage(audit: Audit) -> list[str]:
    return [
        f"  {len(audit.by_pip_audit)} by pip-audit (PyPI's per-version data),",
        f"  {len(audit.by_project_json)} from PyPI's project JSON (locked version is the latest "
        "release).",
    ]


def _packed(items: list[str], width: int = 78) -> list[str]:
    """Items joined by commas into indented lines of at most ``width``, never split."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + len(item) + 2 <= width:
            lines[-1] += f", {item}"
        else:
            if lines:
                lines[-1] += ","
            lines.append(f"  {item}")
    return lines


def incomplete_banner(audit: Audit) -> list[str]:
    missing = len(audit.below_latest) + len(audit.unaudited)
    audited = len(audit.by_pip_audit) + len(audit.by_project_json)
    lines = [
        "=" * 78,
        f"AUDIT INCOMPLETE: {missing} of {audit.total} locked packages could not be audited.",
        "This is NOT a clean result.",
        f"Audited: {audited} of {audit.total}:",
        *coverage(audit),
    ]
    if audit.below_latest:
        lines += [
            f"Locked below their latest release ({len(audit.below_latest)}); PyPI here describes "
            "only the",
            "latest release, so vulnerabilities of these versions are unknown:",
            *_packed(audit.below_latest),
            "To bring one to its latest release, if wanted: uv lock --upgrade-package NAME",
        ]
    if audit.unaudited:
        lines.append(f"Audited by neither source ({len(audit.unaudited)}):")
        reasons: dict[str, list[str]] = {}
        for label, why in audit.unaudited:
            reasons.setdefault(why, []).append(label)
        for why, labels in reasons.items():
            lines.append(f"  {why}:")
            lines += [f"  {line}" for line in _packed(labels, width=76)]
    if audit.skip_reasons:
        lines.append(f"pip-audit skipped {len(audit.skip_reasons)}, e.g.: {audit.skip_reasons[0]}")
    lines.append("=" * 78)
    return lines


def verdict(audit: Audit, incomplete: str = "fail") -> tuple[int, list[str], list[str]]:
    """(exit code, stdout lines, stderr lines)."""
    out: list[str] = []
    err: list[str] = [] if audit.complete else incomplete_banner(audit)
    if audit.found:
        out.append(f"audit: {len(audit.found)} known vulnerabilities in the locked dependencies:")
        out += [f"  {line}" for line in audit.found]
        out.append("Upgrade (uv lock --upgrade-package NAME), or document why one does not apply")
        out.append("in SECURITY.md and scripts/audit.py (IGNORED).")
        return 1, out, err
    if not audit.complete:
        return (0 if incomplete == "warn" else 2), out, err
    ignored = f", {len(IGNORED)} ignored (see SECURITY.md)" if IGNORED else ""
    out.append(f"audit: {audit.total} locked packages audited, no known vulnerabilities{ignored}:")
    out += coverage(audit)
    return 0, out, err


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incomplete", choices=("fail", "warn"), default="fail")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pickup-audit-") as scratch:
        requirements = Path(scratch) / "requirements.txt"
        report_path = Path(scratch) / "report.json"
        export_requirements(requirements)
        pins = locked_versions(requirements.read_text())
        report = run_pip_audit(requirements, report_path)
    if report is None:  # nothing audited: every pin falls to the project JSON
        report = {
            "dependencies": [
                {"name": name, "skip_reason": "pip-audit produced no report"} for name in pins
            ]
        }
    audit, skipped = judge(report)
    projects = asyncio.run(fetch_projects({name for name, _ in skipped})) if skipped else {}
    merge(audit, skipped, pins, projects)
    code, out, err = verdict(audit, options.incomplete)
    for line in err:
        print(line, file=sys.stderr)
    for line in out:
        print(line)
    return code


if __name__ == "__main__":
    sys.exit(main())
