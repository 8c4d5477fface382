"""The scenarios, in the order they run. Each is a module with:

- ``NEEDS``: the processes it needs running (``"api"``, ``"baseline"``);
- ``skip_reason(ctx) -> str | None``: why it cannot run here (``None``: it can);
- ``run(ctx) -> ScenarioResult``.

Adding one is adding a module and a line below.
"""

from __future__ import annotations

import importlib
from types import ModuleType

ORDER = ("menu", "cart_add", "checkout", "pipeline", "rush", "sse", "memory")


def load(name: str) -> ModuleType:
    if name not in ORDER:
        raise KeyError(f"no scenario {name!r}; known: {', '.join(ORDER)}")
    return importlib.import_module(f"bench.scenarios.{name}")
