"""How `pickup operator` picks what to watch and how it peers."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pickup.cli.main import main
from pickup.cli.operator import watched_namespace
from pickup_operator.main import peering_priority


@pytest.mark.parametrize(
    ("option", "setting", "pod", "expected"),
    [
        ("cli", "setting", "pod", "cli"),
        (None, "setting", "pod", "setting"),
        (None, None, "pod", "pod"),
        (None, None, None, ""),
    ],
)
def test_the_namespace_comes_from_the_option_then_the_setting_then_the_pod(
    option: str | None, setting: str | None, pod: str | None, expected: str
) -> None:
    assert watched_namespace(option, setting, pod) == expected


def test_peering_priorities_are_random_so_replicas_do_not_tie() -> None:
    priorities = {peering_priority() for _ in range(50)}
    assert len(priorities) > 45
    assert all(priority >= 1 for priority in priorities)


def test_the_operator_command_is_registered_with_the_charts_arguments() -> None:
    result = CliRunner().invoke(main, ["operator", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--liveness", "--namespace", "--peering", "--priority", "--standalone"):
        assert option in result.output
