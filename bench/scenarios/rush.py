"""``rush``: a lunch rush with Locust (bench/locustfile.py): shoppers browse, fill carts,
check out and poll their order's status, weighted like real shoppers; one hot product sells
out mid-run. Reports throughput, p50/p95/p99 over every request, the sold-out answers (409),
``oversold`` and ``lost`` (both must be 0). The worker and notifier run beside the API when
this tree has them (so statuses move on and their memory is measured under the rush).

There is no bare baseline for a whole journey; the pass criteria are correctness ones.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.context import Context
from bench.env import ROOT
from bench.pipeline_support import start_pipeline
from bench.reconcile import reconcile
from bench.results import ScenarioResult, percentile
from bench.stock import levels, oversold, plentiful_products, set_stock

NEEDS = ("api",)
HOT = "almond-croissant"
# The hot product should run out about this far into the run, so the rest of it shows how
# sold-out carts and checkouts are answered (409).
SELL_OUT_AT = 0.4
HOT_SHARE = 0.7  # of the buyers put the hot product in their cart (bench/locustfile.py)
# Orders/s of the rush against the checkout scenario's closed loop on the same machine: the
# rush's shoppers also browse, wait and poll (first full run: 0.96 against 2.1 orders/s).
RUSH_VERSUS_CHECKOUT = 0.45
HOT_STOCK_WITHOUT_CHECKOUT = 20


def hot_stock_for(ctx: Context, seconds: float) -> tuple[int, str]:
    """The hot product's stock, from the checkout rate measured earlier in this run."""
    if ctx.quick:
        return 1, "quick run"
    checkout = ctx.results.get("checkout")
    rate = checkout.value if checkout is not None and checkout.value else None
    if rate is None:
        return HOT_STOCK_WITHOUT_CHECKOUT, "no checkout figure in this run: fixed default"
    expected = rate * RUSH_VERSUS_CHECKOUT * HOT_SHARE * seconds * SELL_OUT_AT
    return max(2, round(expected)), (
        f"checkout {rate:.2f} orders/s x {RUSH_VERSUS_CHECKOUT} (rush/checkout) x "
        f"{HOT_SHARE} (hot share) x {seconds:.0f} s x {SELL_OUT_AT} (sell-out point)"
    )


def skip_reason(ctx: Context) -> str | None:
    # Only look: importing locust here would monkey-patch this process with gevent.
    if importlib.util.find_spec("locust") is None:
        return "locust is not installed (uv sync --frozen installs the dev group)"
    return None


def run(ctx: Context) -> ScenarioResult:
    env = ctx.env
    products = [p for p in plentiful_products(env, 8) if p != HOT]
    users = 10 if ctx.quick else 60
    seconds = ctx.seconds(45, 4)
    hot_stock, hot_sizing = hot_stock_for(ctx, seconds)
    set_stock(env, {**dict.fromkeys(products, 1_000_000), HOT: hot_stock})
    before = levels(env, [*products, HOT])
    pipeline = start_pipeline(ctx)
    ctx.reset_rate_limits()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "rush.json"
        command = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(Path(__file__).resolve().parents[1] / "locustfile.py"),
            "--headless",
            "--users",
            str(users),
            "--spawn-rate",
            str(max(1, users // 2)),
            "--run-time",
            f"{round(seconds)}s",
            "--stop-timeout",
            "5",
            "--host",
            ctx.api.url,
            "--loglevel",
            "WARNING",
            "--only-summary",
            "--exit-code-on-error",
            "0",
        ]
        environment = {
            **os.environ,
            "BENCH_HOT": HOT,
            "BENCH_PRODUCTS": ",".join(products),
            "BENCH_RUSH_OUT": str(out),
        }
        completed = subprocess.run(  # noqa: S603 (our own fixed command line)
            command,
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=seconds + 90,
        )
        if not out.exists():
            raise RuntimeError(f"locust wrote no summary: {completed.stderr[-2000:]}")
        summary = json.loads(out.read_text())
    accepted: dict[str, list[list[object]]] = summary["accepted"]
    sold: Counter[str] = Counter()
    for lines in accepted.values():
        for product, quantity in lines:
            sold[str(product)] += int(quantity)  # type: ignore[call-overload]
    # With a worker consuming the queue, the outbox is the evidence (its rows are marked sent).
    check = reconcile(env, accepted, check_sqs="worker" not in pipeline)
    after = levels(env, [*products, HOT])
    units_over, per_product = oversold(before, after, sold)
    latencies = [value / 1000 for value in summary["latencies_ms"]]
    failures = sum(summary["failures"].values())
    sold_out = sum(summary["sold_out_409"].values())
    result = ScenarioResult(
        name="rush",
        unit="requests/s",
        value=len(latencies) / summary["seconds"] if summary["seconds"] else None,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        errors=failures,
        goal="oversold 0, lost 0, sold-out answered 409, no errors",
        details={
            "users": users,
            "seconds": round(summary["seconds"], 1),
            "orders_per_second": round(len(accepted) / summary["seconds"], 2),
            "checkouts": summary["checkouts"],
            "accepted": len(accepted),
            "hot_product": HOT,
            "hot_stock": hot_stock,
            "hot_stock_from": hot_sizing,
            "hot_sold": sold.get(HOT, 0),
            "sold_out_409": sold_out,
            "sold_out_409_by_step": summary["sold_out_409"],
            "first_sold_out_after_s": summary["first_sold_out"],
            "oversold": units_over,
            "lost": check.lost,
            "status_polls": summary["polls"],
            "order_statuses_seen": summary["statuses_seen"],
            "pipeline": pipeline,
            "http_statuses": summary["statuses"],
            "failures": summary["failures"],
            "reconciliation": check.as_details(),
            "stock": per_product,
        },
    )
    result.passed = units_over == 0 and check.lost == 0 and sold_out > 0 and failures == 0
    return result
