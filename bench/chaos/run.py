"""``python -m bench.chaos.run [--short]``: the fault-injection suite (``make chaos``).

The platform (API, worker, notifier as separate processes, as :mod:`bench.env` starts them)
runs on a private PostgreSQL cluster, a private Redis and a private AWS emulator behind a
cuttable proxy (:mod:`bench.chaos.services`). A steady checkout load (:mod:`bench.chaos.load`)
runs while the schedule restarts Redis, crashes and restarts PostgreSQL, cuts the line to
AWS, SIGKILLs the worker, the notifier and the API in the middle of their work and starts
them again. Then the load drains and the reconciliation (:mod:`bench.chaos.checks`) runs.
The report goes to ``bench/results/chaos.json`` and is printed as a table; docs/reliability.md
explains the guarantees and quotes the latest figures. ``--short`` is the form ``make test``
runs (tests/chaos): each fault once, short windows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.chaos import checks
from bench.chaos.load import CheckoutLoad
from bench.chaos.services import LOGS, PrivateAWS, PrivatePostgres, PrivateRedis
from bench.env import BenchEnv, _prepare, free_port
from bench.results import RESULTS, machine
from bench.stock import plentiful_products

logger = logging.getLogger("bench.chaos")

FAULTS = ("redis", "postgres", "aws", "worker", "notifier", "api")
STOCK = 100_000
PRODUCTS = 8


@dataclass(frozen=True)
class Schedule:
    name: str
    rate: float  # orders started per second
    warmup: float
    gap: float  # seconds of steady load between faults
    windows: dict[str, float]  # how long each fault lasts
    rounds: int
    drain_seconds: float

    def plan(self) -> list[str]:
        return [fault for _ in range(self.rounds) for fault in FAULTS]


SHORT = Schedule(
    "short",
    rate=3,
    warmup=5,
    gap=4,
    windows={"redis": 4, "postgres": 5, "aws": 6, "worker": 3, "notifier": 3, "api": 2},
    rounds=1,
    drain_seconds=120,
)
FULL = Schedule(
    "full",
    rate=3,
    warmup=8,
    gap=8,
    # Outages up to ~10 s: a consumer's backoff (2, 4, 8, 16 s over 5 receives) rides out
    # about 30 s of a dependency being gone, crash recovery and restarts included; longer
    # ones dead-letter messages by design (docs/reliability.md, known limits).
    windows={"redis": 8, "postgres": 8, "aws": 10, "worker": 5, "notifier": 5, "api": 3},
    rounds=2,
    drain_seconds=240,
)

# Short enough that a run sees every recovery path: orphaned reservations released within
# seconds, messages of a killed consumer back within seconds.
OVERRIDES = {
    "sweeper_interval_seconds": 2,
    "reservation_intent_grace_seconds": 10,
    "sqs_visibility_timeout_seconds": 10,
    "outbox_relay_interval_seconds": 1,
    # A notifier killed mid-send leaves a claim: its email goes out again (counted ambiguous)
    # once the claim lapses, within the run.
    "notification_send_lease_seconds": 30,
}


@dataclass
class FaultRecord:
    fault: str
    started: float  # load clock (seconds since the load began)
    ended: float
    ended_at: datetime  # wall clock, to compare with rows the platform wrote
    started_at: datetime | None = None
    note: str = ""
    checkout_recovery_s: float | None = None  # restored -> next 202 for a fresh request
    confirm_recovery_s: float | None = None  # restored -> next order confirmed
    email_recovery_s: float | None = None  # restored -> next confirmation email sent


@dataclass
class Harness:
    schedule: Schedule
    pg: PrivatePostgres
    redis: PrivateRedis
    aws: PrivateAWS
    env: BenchEnv
    api_port: int = field(default_factory=free_port)
    faults: list[FaultRecord] = field(default_factory=list)

    # --- processes ------------------------------------------------------------------------

    def start_platform(self) -> None:
        self.env.start_api(self.api_port)
        self.env.start_command("worker", "worker")
        self.env.start_command("notifier", "notifier")

    def kill(self, name: str) -> None:
        """SIGKILL the process group: no shutdown handler, in-flight work is cut off."""
        process = self.env.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.popen.wait(10)

    def restart(self, name: str) -> None:
        if name == "api":
            self.env.start_api(self.api_port)
        else:
            self.env.start_command(name, name)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    # --- faults ---------------------------------------------------------------------------

    async def inject(self, fault: str, load: CheckoutLoad) -> FaultRecord:
        window = self.schedule.windows[fault]
        started, started_at = load.now(), datetime.now(UTC)
        note = ""
        if fault == "redis":
            await asyncio.to_thread(self.redis.stop)
            await asyncio.sleep(window)
            await asyncio.to_thread(self.redis.start)
            note = "redis-server stopped (every key lost) and started again"
        elif fault == "postgres":
            await asyncio.to_thread(self.pg.stop, "immediate")
            await asyncio.sleep(window)
            await asyncio.to_thread(self.pg.start)
            note = "pg_ctl stop -m immediate (a crash), recovery from the WAL at start"
        elif fault == "aws":
            await asyncio.to_thread(self.aws.proxy.cut)
            await asyncio.sleep(window)
            await asyncio.to_thread(self.aws.proxy.restore)
            note = "every connection to the AWS endpoint reset, new ones refused"
        else:
            await asyncio.to_thread(self.kill, fault)
            await asyncio.sleep(window)
            await asyncio.to_thread(self.restart, fault)
            note = f"SIGKILL to the {fault} process group mid-work, started again"
        record = FaultRecord(fault, started, load.now(), datetime.now(UTC), started_at, note)
        self.faults.append(record)
        logger.info("fault %s: %.1fs-%.1fs", fault, record.started, record.ended)
        return record


def _prepare_services(schedule: Schedule) -> Harness:
    import asyncpg

    pg = PrivatePostgres().init()
    pg.start()
    redis = PrivateRedis()
    redis.start()
    aws = PrivateAWS.start()

    async def create_database() -> None:
        admin = await asyncpg.connect(pg.admin_url)
        try:
            await admin.execute('CREATE DATABASE "pickup"')
        finally:
            await admin.close()

    asyncio.run(create_database())
    env = BenchEnv(
        database_admin_url=pg.admin_url,
        database_url=pg.url("pickup"),
        redis_url=redis.url,
        aws_endpoint=aws.url,
        prefix=f"chaos{uuid.uuid4().hex[:8]}",
        secret_key=secrets.token_urlsafe(48),
        workers=1,
        overrides=dict(OVERRIDES),
        logs=LOGS,
    )
    asyncio.run(_prepare(env))
    return Harness(schedule, pg, redis, aws, env)


async def _restock(harness: Harness, products: list[str]) -> dict[str, dict[str, int]]:
    """Plenty of stock (a restock keeps the seeded orders' reservations as they are), and
    each product's levels and order-movement ledger sums before the load."""
    from pickup.adapters.aws import AWSClients
    from pickup.adapters.dynamodb import InventoryStore

    settings = harness.env.settings()
    async with AWSClients(settings) as aws:
        store = InventoryStore(aws, settings.names.products_table)
        for pid in products:
            await store.restock(pid, STOCK)
    # The stream consumer is not running yet: the ledger catches up with the seed later, and
    # those rows are "set"/"restock" rows, which the order-movement sums leave out.
    return await checks.stock_levels(harness.env.database_url, settings, products)


async def _inject_poison(harness: Harness) -> int:
    """One message each consumer can never handle; they must end in the DLQs, alone."""
    from pickup.adapters.aws import AWSClients

    settings = harness.env.settings()
    async with AWSClients(settings) as aws:
        sqs = await aws.client("sqs")
        for queue in (settings.names.order_queue, settings.names.notifications_queue):
            url = (await sqs.get_queue_url(QueueName=queue))["QueueUrl"]
            body = {"type": checks.POISON_MARKER, "version": 1, "order_id": "not-an-order"}
            await sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    return 2


async def _drive(harness: Harness, load: CheckoutLoad) -> None:
    schedule = harness.schedule
    placing = asyncio.Event()
    placing.set()
    settle = {"by": float("inf")}
    running = asyncio.create_task(load.run(placing, lambda: settle["by"]))
    await asyncio.sleep(schedule.warmup)
    for fault in schedule.plan():
        await harness.inject(fault, load)
        await asyncio.sleep(schedule.gap)
    placing.clear()
    # Orders still being retried get a while to settle, as a patient client's would.
    settle["by"] = time.monotonic() + 60
    await running


async def _wait_for_pipeline(
    harness: Harness, load: CheckoutLoad, before: dict[str, dict[str, int]], seconds: float
) -> float:
    """Until every accepted order is confirmed and emailed, intents are swept and the
    stream's ledger has caught up; the seconds it took."""
    import asyncpg

    settings = harness.env.settings(aws_endpoint_url=harness.aws.direct_url)

    began = time.monotonic()
    ids = list(load.accepted)
    deadline = began + seconds
    while time.monotonic() < deadline:
        conn = await asyncpg.connect(harness.env.database_url)
        try:
            pending = await conn.fetchval(
                "SELECT count(*) FROM orders WHERE id::text = ANY($1::text[]) "
                "AND status = 'pending'",
                ids,
            )
            emailed = await conn.fetchval(
                "SELECT count(DISTINCT order_id) FROM notification_log WHERE channel = 'email' "
                "AND template = 'order_confirmed' AND status = 'sent' "
                "AND order_id::text = ANY($1::text[])",
                ids,
            )
            intents = await conn.fetchval("SELECT count(*) FROM reservation_intents")
        finally:
            await conn.close()
        if pending == 0 and emailed >= len(ids) and intents == 0:
            now = await checks.stock_levels(harness.env.database_url, settings, list(before))
            if all(
                now[pid]["ledger_reserved"] - before[pid]["ledger_reserved"]
                == now[pid]["reserved"] - before[pid]["reserved"]
                for pid in before
            ):
                break
        await asyncio.sleep(1)
    # A little longer, so a late duplicate (a message redelivered after a kill) would show.
    await asyncio.sleep(3)
    return time.monotonic() - began


async def _recovery(harness: Harness, load: CheckoutLoad) -> None:
    import asyncpg

    conn = await asyncpg.connect(harness.env.database_url)
    try:
        for record in harness.faults:
            fresh = [a.at for a in load.answers if a.kind == "accepted" and a.at >= record.ended]
            if fresh:
                record.checkout_recovery_s = round(min(fresh) - record.ended, 2)
            confirmed = await conn.fetchval(
                "SELECT min(created_at) FROM order_status_history "
                "WHERE to_status = 'confirmed' AND created_at >= $1",
                record.ended_at,
            )
            if confirmed is not None:
                record.confirm_recovery_s = round((confirmed - record.ended_at).total_seconds(), 2)
            emailed = await conn.fetchval(
                "SELECT min(created_at) FROM notification_log WHERE status = 'sent' "
                "AND created_at >= $1",
                record.ended_at,
            )
            if emailed is not None:
                record.email_recovery_s = round((emailed - record.ended_at).total_seconds(), 2)
    finally:
        await conn.close()


def run_chaos(schedule: Schedule, results_dir: Path | None = RESULTS) -> dict[str, Any]:
    """Run the suite; the report (also written to ``results_dir/chaos.json`` when given)."""
    began = time.monotonic()
    harness = _prepare_services(schedule)
    try:
        env = harness.env
        products = plentiful_products(env, PRODUCTS)
        before = asyncio.run(_restock(harness, products))
        injected = asyncio.run(_inject_poison(harness))
        harness.start_platform()
        load = CheckoutLoad(lambda: harness.api_url, products, rate=schedule.rate)
        logger.info("load: %.1f orders/s; faults: %s", schedule.rate, ", ".join(schedule.plan()))
        asyncio.run(_drive(harness, load))
        drained = asyncio.run(_wait_for_pipeline(harness, load, before, schedule.drain_seconds))
        asyncio.run(_recovery(harness, load))
        world = asyncio.run(
            checks.gather_world(
                env.database_url,
                env.settings(aws_endpoint_url=harness.aws.direct_url),
                harness.aws.direct_url,
                load,
                before,
            )
        )
        results = [
            checks.orders_exist_once(load, world),
            checks.orders_confirmed(load, world),
            checks.one_confirmation_email(load, world),
            checks.refusals_were_problems(load, world),
            checks.stock_exact(load, world),
            checks.no_orphaned_reservation(load, world),
            checks.dlqs_hold_only_the_poison(load, world, injected),
        ]
        report = {
            "schedule": asdict(schedule),
            "machine": machine(),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "wall_seconds": round(time.monotonic() - began, 1),
            "load": {
                "orders_started": len(load.orders),
                "accepted": len(load.accepted),
                "refused_finally": dict(
                    _count(o.final for o in load.orders if o.final not in (None, "accepted"))
                ),
                "attempts": len(load.answers),
                "answers_by_kind": dict(sorted(load.kinds().items())),
                "drain_seconds": round(drained, 1),
            },
            "faults": [
                {
                    **asdict(record),
                    "started_at": record.started_at and record.started_at.isoformat("T", "seconds"),
                    "ended_at": record.ended_at.isoformat(timespec="seconds"),
                }
                for record in harness.faults
            ],
            "checks": {check.name: check.as_dict() for check in results},
            "passed": all(check.ok for check in results),
        }
    finally:
        harness.env.close()
        harness.aws.close()
        harness.redis.close()
        harness.pg.close()
    if results_dir is not None:
        results_dir.mkdir(parents=True, exist_ok=True)
        (results_dir / "chaos.json").write_text(checks.dump(report) + "\n")
    return report


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return counts


def table(report: dict[str, Any]) -> str:
    load = report["load"]
    lines = [
        f"chaos ({report['schedule']['name']}): {load['orders_started']} orders started, "
        f"{load['accepted']} accepted, finally refused {load['refused_finally'] or 'none'}; "
        f"{report['wall_seconds']}s",
        "",
        f"{'fault':<10} {'window':>7} {'202 again':>10} {'confirmed':>10} {'emailed':>9}",
    ]
    for fault in report["faults"]:
        window = fault["ended"] - fault["started"]
        lines.append(
            f"{fault['fault']:<10} {window:>6.1f}s {_seconds(fault['checkout_recovery_s']):>10} "
            f"{_seconds(fault['confirm_recovery_s']):>10} {_seconds(fault['email_recovery_s']):>9}"
        )
    lines.append("")
    for name, check in report["checks"].items():
        lines.append(f"{'PASS' if check['ok'] else 'FAIL'}  {name}: {check['report']}")
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos.run", description=__doc__)
    parser.add_argument("--short", action="store_true", help="each fault once, short windows")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="chaos: %(message)s", stream=sys.stderr)
    logger.setLevel(logging.INFO)
    report = run_chaos(SHORT if args.short else FULL, args.results_dir)
    print(table(report))
    print(f"\nwritten: {args.results_dir / 'chaos.json'}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
