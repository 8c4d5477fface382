"""The fault-injection suite's short form (``make chaos`` runs the full schedule): steady
checkouts while Redis restarts, PostgreSQL crashes and restarts, the AWS endpoint is cut off
and the worker, the notifier and the API are SIGKILLed mid-work; afterwards every accepted
order exists once, is confirmed and emailed once (a second email only where the notification
log shows an ambiguous send: one cut off after its request left), every refusal was a problem
document, stock is exact, nothing is orphaned and the DLQs hold only the injected poison."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from bench.chaos.run import SHORT, run_chaos, table
from bench.chaos.services import PG_BIN

pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]


@pytest.mark.skipif(
    not (PG_BIN / "initdb").exists() or shutil.which("redis-server") is None,
    reason="needs PostgreSQL's initdb/pg_ctl and redis-server (make services-install)",
)
def test_under_every_fault_no_order_is_lost_doubled_or_oversold(tmp_path: Path) -> None:
    report = run_chaos(SHORT, tmp_path)
    summary = table(report)
    print(summary)

    failed = [name for name, check in report["checks"].items() if not check["ok"]]
    assert not failed, summary
    assert report["load"]["accepted"] >= 30, summary
    assert [fault["fault"] for fault in report["faults"]] == list(SHORT.plan())
    # The platform came back from each fault by itself: checkouts were accepted again.
    assert all(fault["checkout_recovery_s"] is not None for fault in report["faults"]), summary
    assert (tmp_path / "chaos.json").exists()
