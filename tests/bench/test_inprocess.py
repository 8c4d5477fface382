"""``python -m bench.inprocess`` runs end to end on the bench's services: every variant
answers (a route refusing a request stops the run), and each gets a CPU figure and a ratio
to the bare endpoint. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_in_process_split_measures_every_variant() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.inprocess", "--rounds", "1", "--requests", "320"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    figures = json.loads(completed.stdout)
    assert set(figures) == {"bare", "bare-null", "api", "api-null", "api-plain"}
    bare = figures["bare"]["cpu_us_per_request"]
    assert figures["bare"]["ratio"] == 1.0
    for name, figure in figures.items():
        assert figure["cpu_us_per_request"] > 0, name
        assert figure["ratio"] == pytest.approx(bare / figure["cpu_us_per_request"], rel=0.01)
