"""``python -m bench.run [--scenarios a,b] [--quick]``: run the benchmarks, print the table,
write bench/results/latest.json and a timestamped copy. See docs/performance.md."""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from pathlib import Path

from bench import scenarios
from bench.context import Context
from bench.env import bench_env, server_flags
from bench.monitor import RssMonitor
from bench.results import RESULTS, ScenarioResult, machine, table, write

logger = logging.getLogger("bench")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument(
        "--scenarios",
        default=",".join(scenarios.ORDER),
        help=f"comma-separated, from: {', '.join(scenarios.ORDER)} (default: all)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="about two seconds per measurement (smoke test)"
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (default 1)")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="clients in flight (wrk: twice this)"
    )
    parser.add_argument(
        "--sse-subscribers", type=int, default=None, help="sse: subscribers (default 2000)"
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING, format="bench: %(message)s", stream=sys.stderr)
    logger.setLevel(logging.INFO)
    names = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    modules = {name: scenarios.load(name) for name in scenarios.ORDER if name in names}
    unknown = set(names) - set(modules)
    if unknown:
        print(f"unknown scenarios: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    run_info = {
        "machine": machine(),
        "quick": args.quick,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "server_flags": server_flags(),
        "scenarios_requested": list(modules),
    }
    started = time.monotonic()
    results: list[ScenarioResult] = []
    monitor = RssMonitor()
    with bench_env(workers=args.workers) as env:
        logger.info("services ready (%.1fs)", time.monotonic() - started)
        needs = {need for module in modules.values() for need in module.NEEDS}
        api = env.start_api()
        monitor.watch("api", api.pid)
        if "baseline" in needs:
            baseline = env.start_baseline()
            monitor.watch("baseline", baseline.pid)
        monitor.start()
        time.sleep(1.0)
        monitor.phase = "idle"
        monitor.sample()
        ctx = Context(
            env=env,
            quick=args.quick,
            concurrency=args.concurrency,
            monitor=monitor,
            sse_subscribers=args.sse_subscribers,
        )
        try:
            for name, module in modules.items():
                reason = module.skip_reason(ctx)
                if reason is not None:
                    logger.info("%s: skipped (%s)", name, reason)
                    result = ScenarioResult(name=name, unit="-", value=None, skipped=reason)
                else:
                    logger.info("%s: running", name)
                    monitor.phase = name
                    began = time.monotonic()
                    try:
                        result = module.run(ctx)
                    except Exception as error:
                        traceback.print_exc()
                        result = ScenarioResult(
                            name=name,
                            unit="-",
                            value=None,
                            passed=False,
                            details={"error": f"{type(error).__name__}: {error}"},
                        )
                    monitor.phase = "between"
                    result.details["wall_seconds"] = round(time.monotonic() - began, 1)
                    logger.info("%s: done in %.1fs", name, time.monotonic() - began)
                results.append(result)
                ctx.results[name] = result
        finally:
            monitor.stop()
    run_info["wall_seconds"] = round(time.monotonic() - started, 1)
    latest, stamped = write(results, run_info, args.results_dir)
    print(table(results))
    print(f"\nwritten: {latest} and {stamped.name} ({run_info['wall_seconds']}s)")
    failed = [r.name for r in results if r.passed is False]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
