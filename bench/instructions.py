"""``python -m bench.instructions``: instructions per cart add, counted in the server.

CPU time per request moves by 5-10% between runs on a shared machine; the number of
instructions a request executes does not. This starts the bare baseline and the API as the
bench starts them (uvicorn, one process, the same flags) under valgrind's callgrind, one at a
time, adds to carts ``--warm`` times, zeroes the counters (``callgrind_control -z``), adds
``--adds`` times more and dumps them (``callgrind_control -d``): the dump's total over the
adds is the figure, uvicorn's HTTP work included. Shoppers add in carts of five, each cart's
token sent back in ``X-Cart-Token`` and cookies never (as wrk's cart_add script does).

The background loops (outbox relay, samplers) are slowed to once a minute or hour: their work
grows with the (valgrind-slowed) wall time, not with requests. Repeat runs agree to about 1%.
Each side takes one to two minutes; valgrind must be installed (Debian's ``valgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx

from bench.env import BenchEnv, _wait_http, free_port, uvicorn_command
from bench.scenarios.cart_add import ADDS_PER_CART
from bench.stock import plentiful_products

SIDES = {
    "bare": ("bench.baseline:create", "/bare/cart"),
    "api": ("pickup.api.main:create", "/api/cart/add"),
}
SHOPPERS = 16


async def shop(url: str, path: str, products: list[str], adds: int) -> None:
    """``adds`` adds by ``SHOPPERS`` shoppers, each in carts of ``ADDS_PER_CART``."""
    limits = httpx.Limits(max_connections=SHOPPERS)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def shopper(number: int) -> None:
            token: str | None = None
            for n in range(adds // SHOPPERS):
                headers = {"content-type": "application/json"}
                if n % ADDS_PER_CART and token is not None:
                    headers["x-cart-token"] = token
                product = products[(n + number) % len(products)]
                body = json.dumps({"product_id": product, "quantity": 1})
                answer = await client.post(path, content=body, headers=headers)
                client.cookies.clear()  # wrk sends none: the token names the cart
                answer.raise_for_status()
                if n % ADDS_PER_CART == 0:
                    token = answer.headers.get("x-cart-token")

        await asyncio.gather(*(shopper(number) for number in range(SHOPPERS)))


def _total(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dump}")


def count(env: BenchEnv, side: str, products: list[str], warm: int, adds: int) -> float:
    """Instructions per add on ``side``, its server under callgrind."""
    target, path = SIDES[side]
    environment = env.api_environment(
        BENCH_REDIS_URL=env.redis_url,
        PICKUP_OUTBOX_RELAY_INTERVAL_SECONDS="60",
        PICKUP_METRICS_SAMPLE_INTERVAL_SECONDS="3600",
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as scratch:
        out = Path(scratch)
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}/callgrind.%p",
            *uvicorn_command(target, port, 1),
        ]
        # The bench's own spawning: logs/<side>-callgrind.log, a session of its own.
        server = env._spawn(f"{side}-callgrind", command, environment)
        try:
            _wait_http(server, url + "/healthz", 600)
            if side == "api":
                httpx.get(url + "/api/menu", timeout=120).raise_for_status()
            asyncio.run(shop(url, path, products, warm))
            _control("-z", server.pid)
            asyncio.run(shop(url, path, products, adds))
            _control("-d", server.pid)
            dump = max(out.glob(f"callgrind.{server.pid}.*"), key=lambda p: p.stat().st_mtime)
            return _total(dump) / (adds // SHOPPERS * SHOPPERS)
        finally:
            env.stop(server.name)


def _control(option: str, pid: int) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True)  # noqa: S603, S607


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--sides", default="bare,api", help="bare, api or both")
    parser.add_argument("--warm", type=int, default=320, help="adds before counting")
    parser.add_argument("--adds", type=int, default=640, help="adds counted")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        parser.error("valgrind is not installed (Debian's package valgrind)")
    from bench.env import bench_env

    figures: dict[str, float] = {}
    with bench_env() as env:
        products = plentiful_products(env, 8)
        for side in [name.strip() for name in args.sides.split(",") if name.strip()]:
            figures[side] = count(env, side, products, args.warm, args.adds)
            print(f"{side}: {figures[side] / 1000:.1f} k instructions per add", flush=True)
    if {"bare", "api"} <= figures.keys():
        print(f"ratio: {figures['bare'] / figures['api']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
