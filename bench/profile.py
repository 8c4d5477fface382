"""``python -m bench.profile [--scenario cart_add] [--seconds 15]``: where the API's time goes.

Starts the bench's services and the API under pyinstrument (bench/profiled_api.py), drives
it with the scenario's load (wrk for menu and cart_add, the checkout client for checkout),
stops it and prints the top of the call tree; the full report is written to
.cache/bench/profile-<scenario>.txt and .html.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from bench.context import Context
from bench.env import LOGS, Process, _wait_http, bench_env, free_port, server_flags
from bench.monitor import RssMonitor
from bench.scenarios import cart_add
from bench.scenarios.checkout import CheckoutClient
from bench.stock import plentiful_products, set_stock
from bench.wrk import WrkLoad, run_wrk


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--scenario", choices=("menu", "cart_add", "checkout"), default="cart_add")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--lines", type=int, default=60, help="report lines to print")
    args = parser.parse_args(argv)
    out = LOGS / f"profile-{args.scenario}"
    LOGS.mkdir(parents=True, exist_ok=True)
    flags = server_flags()
    loop = flags[flags.index("--loop") + 1] if "--loop" in flags else "auto"
    http = flags[flags.index("--http") + 1] if "--http" in flags else "auto"
    with bench_env() as env:
        port = free_port()
        process: Process = env._spawn(
            "api",
            [sys.executable, "-m", "bench.profiled_api"],
            env.api_environment(
                BENCH_PROFILE_OUT=str(out),
                BENCH_PORT=str(port),
                BENCH_LOOP=loop,
                BENCH_HTTP=http,
            ),
        )
        process.url = f"http://127.0.0.1:{port}"
        _wait_http(process, process.url + "/healthz", 60)
        ctx = Context(env=env, quick=False, concurrency=args.concurrency, monitor=RssMonitor())
        load = WrkLoad(threads=1, connections=args.concurrency * 2, seconds=args.seconds)
        if args.scenario == "menu":
            cart_add.warm_menu(ctx)
            figures = run_wrk(process.url + "/api/menu", "get", load)
        elif args.scenario == "cart_add":
            products = plentiful_products(env, 8)
            cart_add.warm_menu(ctx)
            figures = run_wrk(
                process.url + "/api/cart/add",
                "cart_add",
                load,
                {"BENCH_PRODUCTS": ",".join(products)},
            )
        else:
            products = plentiful_products(env, 8)
            set_stock(env, dict.fromkeys(products, 1_000_000))

            async def drive() -> object:
                client = CheckoutClient(process.url, products, args.concurrency)
                try:
                    return (await client.run(args.concurrency, args.seconds)).figures()
                finally:
                    await client.client.aclose()

            figures = asyncio.run(drive())
        print(f"load: {figures}")
        # Writing a report of many thousand samples takes a while on a busy machine.
        process.stop(timeout=180)
    report = out.with_suffix(".txt").read_text()
    print("\n".join(report.splitlines()[: args.lines]))
    print(f"\nfull report: {out.with_suffix('.txt')} and {out.with_suffix('.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
