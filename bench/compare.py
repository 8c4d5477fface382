"""``python -m bench.compare --before DIR``: two versions of the API side by side in one run.

``DIR`` holds a copy of ``services/`` (the package ``pickup``) as it was before a change. Both
APIs and the bare baseline run on the same services with the same flags; wrk drives menu and
cart_add against baseline, before and after in alternating rounds, each round starting with
another side, so the machine's drift hits all three alike. Prints each side's figures, its
ratio to the baseline and the CPU time its server process used per request (user + system,
from /proc): on a machine shared with other work the throughput of each side follows the CPU
share it happens to get, while CPU per request is a property of the code.

Making ``DIR`` from the working tree with some files as they are at ``HEAD``::

    mkdir -p /tmp/before && cp -r services /tmp/before/
    ln -s "$PWD/web" "$PWD/migrations" /tmp/before/  # shipped beside the package
    git show HEAD:services/pickup/cart/service.py > /tmp/before/services/pickup/cart/service.py

or a whole earlier commit: ``git worktree add /tmp/before <commit>``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import httpx

from bench.monitor import tree_cpu_seconds
from bench.results import Figures
from bench.scenarios.menu import prime
from bench.stock import plentiful_products
from bench.wrk import WrkLoad, run_wrk


def main(argv: list[str] | None = None) -> int:
    from bench.context import Context
    from bench.env import bench_env
    from bench.monitor import RssMonitor

    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("--before", type=Path, required=True, help="holds services/pickup")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scenarios", default="menu,cart_add")
    args = parser.parse_args(argv)
    source = (args.before / "services").resolve()
    if not (source / "pickup").is_dir():
        parser.error(f"{source}/pickup does not exist")
    with bench_env() as env:
        after = env.start_api()
        before = env.start_uvicorn(
            "api-before", "pickup.api.main:create", env.api_environment(PYTHONPATH=str(source))
        )
        baseline = env.start_baseline()
        ctx = Context(env=env, quick=False, concurrency=16, monitor=RssMonitor())
        # The new code's copy of the menu cache (the old code reads it as well).
        with ctx.redis() as redis:
            redis.delete("menu:v1")
        prime(ctx)
        products = plentiful_products(env, 8)
        wrk_env = {"BENCH_PRODUCTS": ",".join(products)}
        load = WrkLoad(threads=1, connections=32, seconds=args.seconds)
        warm = WrkLoad(threads=1, connections=32, seconds=1)
        targets = {
            "menu": ("get", "/bare/menu", "/api/menu"),
            "cart_add": ("cart_add", "/bare/cart", "/api/cart/add"),
        }
        report: dict[str, dict[str, object]] = {}
        for name in [n.strip() for n in args.scenarios.split(",") if n.strip()]:
            script, bare_path, api_path = targets[name]
            sides = {"baseline": baseline.url + bare_path}
            sides["before"] = f"{before.url}{api_path}"
            sides["after"] = f"{after.url}{api_path}"
            for url in sides.values():
                run_wrk(url, script, warm, wrk_env)
            figures: dict[str, list[Figures]] = {side: [] for side in sides}
            cpu = dict.fromkeys(sides, 0.0)
            pids = {"baseline": baseline.pid, "before": before.pid, "after": after.pid}
            order = list(sides)
            for round_number in range(args.rounds):
                # Each round starts with another side, so no side is always measured last
                # (right after the others warmed the machine, or as its load changes).
                shift = round_number % len(order)
                for side in order[shift:] + order[:shift]:
                    url = sides[side]
                    ctx.reset_rate_limits()
                    used = tree_cpu_seconds(pids[side])
                    figures[side].append(run_wrk(url, script, load, wrk_env))
                    cpu[side] += tree_cpu_seconds(pids[side]) - used
            combined = {side: Figures.combine(rounds) for side, rounds in figures.items()}
            bare_rate = combined["baseline"].rate
            report[name] = {
                side: {
                    "rate": round(f.rate, 1),
                    "p50_ms": round(f.p50_ms or 0, 2),
                    "p99_ms": round(f.p99_ms or 0, 2),
                    "errors": f.errors,
                    "statuses": f.statuses,
                    "ratio": round(f.rate / bare_rate, 3) if bare_rate else None,
                    "cpu_ms_per_request": round(1000 * cpu[side] / max(f.count, 1), 3),
                }
                for side, f in combined.items()
            }
        httpx.get(after.url + "/healthz", timeout=5)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
