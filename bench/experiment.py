"""``python -m bench.experiment``: the unchanged API against bench/patched_api.py on the
cart_add load, alternating rounds in one run (same services, same machine state)."""

from __future__ import annotations

import argparse
import sys

import httpx

from bench.env import bench_env
from bench.results import Figures
from bench.stock import plentiful_products
from bench.wrk import WrkLoad, run_wrk


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.experiment", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    with bench_env() as env:
        before = env.start_api()
        after = env.start_uvicorn("patched", "bench.patched_api:create", env.api_environment())
        products = ",".join(plentiful_products(env, 8))
        load = WrkLoad(threads=1, connections=32, seconds=args.seconds)
        figures: dict[str, list[Figures]] = {"unchanged": [], "patched": []}
        for _ in range(args.rounds):
            for name, process in (("unchanged", before), ("patched", after)):
                httpx.get(f"{process.url}/api/menu", timeout=30).raise_for_status()
                figures[name].append(
                    run_wrk(
                        f"{process.url}/api/cart/add",
                        "cart_add",
                        load,
                        {"BENCH_PRODUCTS": products},
                    )
                )
    for name, rounds in figures.items():
        total = Figures.combine(rounds)
        print(
            f"{name:<10} {total.rate:8.1f} req/s  p50 {total.p50_ms:7.2f} ms  "
            f"p99 {total.p99_ms:7.2f} ms  errors {total.errors}  rounds "
            + ", ".join(f"{r.rate:.0f}" for r in rounds)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
