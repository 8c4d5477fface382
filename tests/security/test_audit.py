"""The dependency audit (scripts/audit.py) judges what it is told honestly: a package whose
pip-audit look-up was skipped counts as audited from PyPI's project-level JSON only when the
locked version is the latest release (the only one that JSON describes), withdrawn and ignored
advisories are left out, and whatever neither source could judge keeps the verdict incomplete.

No network: the records below have the shape PyPI documents for its JSON API
(https://docs.pypi.org/api/json/, "Known vulnerabilities") and pip-audit's JSON report."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]


def load_audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "pickup_audit_script", REPOSITORY / "scripts" / "audit.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def audit() -> ModuleType:
    return load_audit()  # a fresh module per test: IGNORED changes stay local


# PyPI's documented example record (a Django advisory).
ADVISORY: dict[str, Any] = {
    "aliases": ["CVE-2021-3281"],
    "details": (
        "In Django 2.2 before 2.2.18, 3.0 before 3.0.12, and 3.1 before 3.1.6, the "
        'django.utils.archive.extract method (used by "startapp --template" and '
        '"startproject --template") allows directory traversal via an archive with absolute '
        "paths or relative paths with dot segments."
    ),
    "summary": "A shorter summary of the vulnerability",
    "fixed_in": ["3.1.6", "2.2.18", "3.0.12"],  # PyPI does not promise an order
    "id": "PYSEC-2021-9",
    "link": "https://osv.dev/vulnerability/PYSEC-2021-9",
    "source": "osv",
    "withdrawn": None,
}
# PyPI's documented example of a withdrawn record.
WITHDRAWN: dict[str, Any] = {
    "aliases": ["CVE-2022-XXXXX"],
    "details": "A long description.",
    "summary": "A shorter summary.",
    "fixed_in": ["1.2.3"],
    "id": "PYSEC-2022-XXX",
    "link": "https://osv.dev/vulnerability/PYSEC-2022-XXX",
    "source": "osv",
    "withdrawn": "2022-06-28T16:39:06Z",
}


def project(latest: str, *vulnerabilities: dict[str, Any]) -> dict[str, Any]:
    """A project-level JSON answer (``/pypi/<name>/json``), unrelated keys trimmed."""
    return {
        "info": {"name": "django", "version": latest, "yanked": False},
        "last_serial": 12089094,
        "releases": {},
        "urls": [],
        "vulnerabilities": list(vulnerabilities),
    }


SKIP = "Dependency not found on PyPI and could not be audited: {name} ({version})"


def skipped(name: str, version: str) -> dict[str, str]:
    return {"name": name, "skip_reason": SKIP.format(name=name, version=version)}


# --- judging one package by its project JSON ----------------------------------------------


def test_a_vulnerability_of_the_latest_release_is_reported_with_its_fix_versions(
    audit: ModuleType,
) -> None:
    status, lines = audit.judge_project("django", "3.1.5", project("3.1.5", ADVISORY))
    assert status == audit.AUDITED
    assert lines == ["django 3.1.5: PYSEC-2021-9 (CVE-2021-3281); fixed in: 2.2.18, 3.0.12, 3.1.6"]


def test_a_latest_release_without_advisories_is_audited_clean(audit: ModuleType) -> None:
    assert audit.judge_project("django", "3.1.6", project("3.1.6")) == (audit.AUDITED, [])


def test_a_withdrawn_advisory_is_not_reported(audit: ModuleType) -> None:
    status, lines = audit.judge_project("django", "1.2.2", project("1.2.2", WITHDRAWN))
    assert (status, lines) == (audit.AUDITED, [])
    status, lines = audit.judge_project("django", "1.2.2", project("1.2.2", WITHDRAWN, ADVISORY))
    assert [line.split(": ")[1].split(" ")[0] for line in lines] == ["PYSEC-2021-9"]


def test_an_ignored_advisory_is_not_reported_by_id_or_by_alias(audit: ModuleType) -> None:
    audit.IGNORED["PYSEC-2021-9"] = "startproject templates are never extracted by pickup"
    assert audit.judge_project("django", "3.1.5", project("3.1.5", ADVISORY)) == (
        audit.AUDITED,
        [],
    )
    audit.IGNORED.clear()
    audit.IGNORED["CVE-2021-3281"] = "the same advisory, named by its CVE"
    assert audit.judge_project("django", "3.1.5", project("3.1.5", ADVISORY)) == (
        audit.AUDITED,
        [],
    )


def test_a_package_below_its_latest_release_stays_unaudited(audit: ModuleType) -> None:
    # The advisory list describes 3.2.0; whether 3.1.5 is affected is unknown.
    status, lines = audit.judge_project("django", "3.1.5", project("3.2.0"))
    assert status == audit.BELOW_LATEST
    assert lines == ["django 3.1.5 (latest 3.2.0)"]
    status, _ = audit.judge_project("django", "3.1.5", project("3.2.0", ADVISORY))
    assert status == audit.BELOW_LATEST  # the latest release's advisories are not ours


@pytest.mark.parametrize(
    ("locked", "latest"),
    [("2.0", "2.0.0"), ("2.0.0", "2"), ("1.0RC1", "1.0rc1"), ("2.9.0-post0", "2.9.0.post0")],
)
def test_versions_are_compared_after_normalisation(
    audit: ModuleType, locked: str, latest: str
) -> None:
    status, lines = audit.judge_project("pkg", locked, project(latest, ADVISORY))
    assert status == audit.AUDITED
    assert len(lines) == 1


def test_a_pre_release_is_not_taken_for_its_final_release(audit: ModuleType) -> None:
    assert audit.judge_project("pkg", "2.0rc1", project("2.0"))[0] == audit.BELOW_LATEST
    assert audit.judge_project("pkg", "0.66b1", project("0.66b2"))[0] == audit.BELOW_LATEST


def test_a_version_newer_than_the_latest_release_or_no_advisory_list_is_no_data(
    audit: ModuleType,
) -> None:
    assert audit.judge_project("pkg", "3.0.dev1", project("2.9"))[0] == audit.NO_DATA
    without_list = project("1.0")
    del without_list["vulnerabilities"]
    assert audit.judge_project("pkg", "1.0", without_list)[0] == audit.NO_DATA
    assert audit.judge_project("pkg", "1.0", {"info": {}, "vulnerabilities": []})[0] == (
        audit.NO_DATA
    )
    assert audit.judge_project("pkg", "not a version", project("1.0"))[0] == audit.NO_DATA
    malformed = {key: value for key, value in ADVISORY.items() if key != "id"}
    assert audit.judge_project("pkg", "1.0", project("1.0", malformed))[0] == audit.NO_DATA


# --- pip-audit's report, merged with the project JSON ----------------------------------------


def test_pip_audit_findings_are_reported_and_its_skips_handed_on(audit: ModuleType) -> None:
    report = {
        "dependencies": [
            {
                "name": "jinja2",
                "version": "2.11.2",
                "vulns": [
                    {
                        "id": "PYSEC-2021-66",
                        "fix_versions": ["2.11.3"],
                        "aliases": ["CVE-2020-28493", "GHSA-g3rq-g295-4j3m"],
                        "description": "ReDoS in the urlize filter",
                    }
                ],
            },
            {"name": "idna", "version": "3.10", "vulns": []},
            skipped("django", "3.1.5"),
        ],
        "fixes": [],
    }
    result, skips = audit.judge(report)
    assert result.by_pip_audit == ["jinja2", "idna"]
    assert result.found == [
        "jinja2 2.11.2: PYSEC-2021-66 (CVE-2020-28493, GHSA-g3rq-g295-4j3m); fixed in: 2.11.3"
    ]
    assert skips == [("django", SKIP.format(name="django", version="3.1.5"))]


def audit_of(
    audit: ModuleType,
    report: list[dict[str, Any]],
    pins: dict[str, list[str]],
    projects: dict[str, Any],
) -> Any:
    result, skips = audit.judge({"dependencies": report})
    return audit.merge(result, skips, pins, projects)


def test_everything_audited_by_one_source_or_the_other_is_a_clean_pass(
    audit: ModuleType,
) -> None:
    result = audit_of(
        audit,
        [{"name": "idna", "version": "3.10", "vulns": []}, skipped("Django", "3.1.6")],
        {"idna": ["3.10"], "django": ["3.1.6"]},
        {"Django": project("3.1.6", WITHDRAWN)},
    )
    assert (result.by_pip_audit, result.by_project_json) == (["idna"], ["Django"])
    code, out, err = audit.verdict(result)
    assert code == 0
    assert err == []
    assert out[0] == "audit: 2 locked packages audited, no known vulnerabilities:"
    assert "1 by pip-audit" in out[1]
    assert "1 from PyPI's project JSON" in out[2]


def test_a_vulnerability_found_through_the_project_json_fails_the_audit(
    audit: ModuleType,
) -> None:
    result = audit_of(
        audit,
        [skipped("django", "3.1.5"), skipped("boto3", "1.43.117")],
        {"django": ["3.1.5"], "boto3": ["1.43.117"]},
        {"django": project("3.1.5", ADVISORY), "boto3": project("1.44.8")},
    )
    code, out, err = audit.verdict(result, "warn")
    assert code == 1  # --incomplete=warn never hides a finding
    assert "  django 3.1.5: PYSEC-2021-9 (CVE-2021-3281); fixed in: 2.2.18, 3.0.12, 3.1.6" in out
    assert any("boto3 1.43.117 (latest 1.44.8)" in line for line in err)  # and says what is left


def test_packages_below_latest_keep_the_audit_incomplete_and_are_listed(
    audit: ModuleType,
) -> None:
    result = audit_of(
        audit,
        [skipped("django", "3.1.6"), skipped("boto3", "1.43.117"), skipped("six", "1.17.0")],
        {"django": ["3.1.6"], "boto3": ["1.43.117"], "six": ["1.17.0"]},
        {
            "django": project("3.1.6"),
            "boto3": project("1.44.8"),
            "six": "the project JSON is unreachable (ConnectError)",
        },
    )
    assert result.by_project_json == ["django"]
    assert result.below_latest == ["boto3 1.43.117 (latest 1.44.8)"]
    assert result.unaudited == [("six 1.17.0", "the project JSON is unreachable (ConnectError)")]
    code, out, err = audit.verdict(result)
    assert (code, out) == (2, [])
    banner = "\n".join(err)
    assert "AUDIT INCOMPLETE: 2 of 3 locked packages could not be audited." in banner
    assert "0 by pip-audit" in banner
    assert "1 from PyPI's project JSON" in banner
    assert "boto3 1.43.117 (latest 1.44.8)" in banner
    assert "uv lock --upgrade-package NAME" in banner
    assert "six 1.17.0" in banner
    assert audit.verdict(result, "warn")[0] == 0


def test_without_the_project_json_every_skipped_package_stays_unaudited(
    audit: ModuleType,
) -> None:
    result = audit_of(
        audit,
        [skipped("django", "3.1.6"), skipped("six", "1.17.0")],
        {"django": ["3.1.6"], "six": ["1.17.0"]},
        {},  # no answer at all within the deadline
    )
    assert result.by_project_json == []
    assert [label for label, _ in result.unaudited] == ["django 3.1.6", "six 1.17.0"]
    assert audit.verdict(result)[0] == 2


def test_a_package_pinned_twice_is_not_judged_by_one_of_its_versions(audit: ModuleType) -> None:
    result = audit_of(
        audit,
        [skipped("numpy", "2.0.0")],
        {"numpy": ["1.26.4", "2.0.0"]},
        {"numpy": project("2.0.0")},
    )
    assert result.by_project_json == []
    assert len(result.unaudited) == 1


def test_the_export_is_read_into_pins_for_this_environment(audit: ModuleType) -> None:
    export = (
        "# This file was autogenerated by uv via the following command:\n"
        "#    uv export --frozen --no-hashes --no-emit-project --all-groups\n"
        "aiohttp==3.14.5\n"
        "    # via\n"
        "    #   aiobotocore\n"
        "Jinja2==3.1.6\n"
        "    # via pickup\n"
        "pywin32==312 ; sys_platform == 'no-such-platform'\n"
        "python-dateutil==2.9.0.post0 ; python_full_version >= '3.0'\n"
    )
    assert audit.locked_versions(export) == {
        "aiohttp": ["3.14.5"],
        "jinja2": ["3.1.6"],
        "python-dateutil": ["2.9.0.post0"],
    }


# --- the look-ups and the whole run ---------------------------------------------------------


def test_the_look_ups_run_concurrently_and_stop_at_the_deadline(audit: ModuleType) -> None:
    running = 0
    most = 0

    async def fetch(name: str) -> dict[str, Any] | str:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(30 if name == "slow" else 0.05)
        finally:
            running -= 1
        return project("1.0")

    names = [f"pkg{number}" for number in range(40)] + ["slow"]
    started = time.monotonic()
    answers = asyncio.run(audit.fetch_all(names, fetch, deadline=1.0))
    assert time.monotonic() - started < 5
    assert set(answers) == set(names) - {"slow"}
    assert 1 < most <= audit.CONCURRENCY


def test_a_run_without_a_pip_audit_report_falls_back_to_the_project_json(
    audit: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def export(target: Path) -> None:
        target.write_text("django==3.1.5\nsix==1.17.0\n")

    async def projects(names: set[str]) -> dict[str, Any]:
        assert names == {"django", "six"}
        return {"django": project("3.1.5", ADVISORY), "six": project("1.17.0")}

    monkeypatch.setattr(audit, "export_requirements", export)
    monkeypatch.setattr(audit, "run_pip_audit", lambda requirements, report: None)
    monkeypatch.setattr(audit, "fetch_projects", projects)
    monkeypatch.setattr("sys.argv", ["audit.py", "--incomplete=warn"])
    assert audit.main() == 1
    assert "django 3.1.5: PYSEC-2021-9" in capsys.readouterr().out
