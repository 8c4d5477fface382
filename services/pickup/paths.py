"""Where the files that ship beside the code live (templates, static assets, migrations).

In a source checkout they are top-level folders of the repository; a built wheel carries them
inside the package (pyproject's force-include), so both layouts are looked for.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPOSITORY_DIR = PACKAGE_DIR.parents[1]


def shipped(name: str) -> Path:
    """The folder ``name`` (``web``, ``migrations``) from the wheel, else from the checkout."""
    for candidate in (PACKAGE_DIR / name, REPOSITORY_DIR / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cannot find the {name!r} folder beside the pickup package")
