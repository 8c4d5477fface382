"""The reconciliation after a chaos run: each check is one function returning a :class:`Check`
with a one-line report. They read the stores directly (PostgreSQL, DynamoDB, SQS and the AWS
emulator's record of sent email), never through the API under test.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.chaos.load import CUSTOMER_NAME, CheckoutLoad

CONFIRMED_OR_LATER = {"confirmed", "preparing", "ready", "picked_up"}
DELIBERATE_END = {"cancelled"}
POISON_MARKER = "chaos-poison"


@dataclass
class Check:
    name: str
    ok: bool
    line: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "report": self.line, **self.details}


@dataclass
class World:
    """What the checks read, gathered once after the load drained."""

    orders: dict[str, dict[str, Any]]  # every order in PostgreSQL, by id
    items: dict[str, list[tuple[str, int]]]  # order id -> lines
    keys: dict[str, str | None]  # idempotency key -> order id, for the load's keys
    intents: int
    # product -> sums of the order movements' rows (reserve, release, confirm); less the sums
    # before the load, they must add up to the change of the stock seen since.
    ledger: dict[str, dict[str, int]]
    emails_sent: Counter[str]  # order code -> confirmation emails the emulator received
    # order id -> the statuses of its confirmation email's attempts in notification_log
    email_log: dict[str, list[str]]
    stock_before: dict[str, dict[str, int]]
    stock_after: dict[str, dict[str, Any]]  # with "holds"
    dlq: dict[str, list[str]]  # queue -> message bodies


def orders_exist_once(load: CheckoutLoad, world: World) -> Check:
    accepted = load.accepted
    missing = [oid for oid in accepted if oid not in world.orders]
    ours = {oid for oid, o in world.orders.items() if o["customer_name"] == CUSTOMER_NAME}
    phantom = sorted(ours - set(accepted))  # saved, but no client was ever told
    per_key = Counter(oid for oid in world.keys.values() if oid)
    shared = [oid for oid, n in per_key.items() if n > 1]
    abandoned = [o.key for o in load.orders if o.final == "abandoned"]
    ok = not missing and not phantom and not shared and not abandoned
    return Check(
        "orders exist exactly once",
        ok,
        f"{len(accepted)} accepted (202), {len(accepted) - len(missing)} in PostgreSQL, "
        f"{len(missing)} missing, {len(phantom)} saved but never acknowledged, "
        f"{len(shared)} shared by two keys, {len(abandoned)} never settled by the client",
        {
            "accepted": len(accepted),
            "missing": missing[:10],
            "phantom": phantom[:10],
            "abandoned": len(abandoned),
        },
    )


def orders_confirmed(load: CheckoutLoad, world: World) -> Check:
    statuses = Counter(world.orders[oid]["status"] for oid in load.accepted if oid in world.orders)
    stuck = [
        oid
        for oid in load.accepted
        if oid in world.orders
        and world.orders[oid]["status"] not in CONFIRMED_OR_LATER | DELIBERATE_END
    ]
    return Check(
        "accepted orders confirmed",
        not stuck,
        f"statuses {dict(statuses)}; {len(stuck)} not confirmed",
        {"statuses": dict(statuses), "not_confirmed": stuck[:10]},
    )


def one_confirmation_email(load: CheckoutLoad, world: World) -> Check:
    """SES received one confirmation per confirmed order. SES has no idempotency key, so an
    email whose send was cut off after the request left (the notifier killed mid-send, the
    line to SES cut before its answer) is sent again, and the notifier logs that attempt as
    ``ambiguous``; a second email is tolerated only when such an attempt explains it (one
    ambiguous attempt per extra email). Every claim must have been settled."""
    confirmed = [
        o
        for oid, o in load.accepted.items()
        if world.orders.get(oid, {}).get("status") in CONFIRMED_OR_LATER
    ]
    received = {o.order_id: world.emails_sent.get(o.code or "", 0) for o in confirmed}
    counts = Counter(received.values())
    none = [oid for oid, n in received.items() if n == 0]
    twice = [oid for oid, n in received.items() if n > 1]
    attempts = {oid: Counter(world.email_log.get(str(oid), [])) for oid in received}
    explained = [oid for oid in twice if attempts[oid]["ambiguous"] >= received[oid] - 1]
    unexplained = [oid for oid in twice if oid not in explained]
    logged_twice = [oid for oid, statuses in world.email_log.items() if statuses.count("sent") > 1]
    unsettled = [oid for oid, statuses in world.email_log.items() if "sending" in statuses]
    ambiguous = sum(statuses.count("ambiguous") for statuses in world.email_log.values())
    return Check(
        "one confirmation email per confirmed order",
        not none and not unexplained and not logged_twice and not unsettled,
        f"{len(confirmed)} confirmed orders; emails received by SES per order: "
        f"{dict(sorted(counts.items()))}; {len(twice)} emailed twice ({len(explained)} after "
        f"an ambiguous send, {len(unexplained)} unexplained); {ambiguous} ambiguous sends "
        f"logged; recorded sent twice: {len(logged_twice)}; claims left unsettled: "
        f"{len(unsettled)}",
        {
            "none": none[:10],
            "twice": twice[:10],
            "duplicates": len(twice),
            "duplicates_after_ambiguous_send": len(explained),
            "unexplained": unexplained[:10],
            "ambiguous_sends": ambiguous,
            "log_twice": logged_twice[:10],
            "unsettled": unsettled[:10],
        },
    )


def refusals_were_problems(load: CheckoutLoad, world: World) -> Check:
    http = [a for a in load.answers if a.status is not None and a.status >= 300]
    unclear = [a for a in http if not a.problem_ok]
    kinds = Counter(f"{a.status} {a.kind}" for a in http)
    no_answer = Counter(a.kind for a in load.answers if a.status is None)
    return Check(
        "every refusal is a problem document",
        not unclear,
        f"{len(http)} refusals ({dict(sorted(kinds.items()))}), {len(unclear)} unclear; "
        f"{sum(no_answer.values())} attempts got no HTTP answer ({dict(no_answer)})",
        {
            "refused": dict(sorted(kinds.items())),
            "unclear": [f"{a.status} {a.kind}" for a in unclear[:10]],
            "no_answer": dict(no_answer),
        },
    )


def stock_exact(load: CheckoutLoad, world: World) -> Check:
    held: Counter[str] = Counter()
    for oid, order in world.orders.items():
        if order["reservation_state"] == "held":
            for pid, quantity in world.items.get(oid, []):
                held[pid] += quantity
    problems: list[str] = []
    report: dict[str, dict[str, int]] = {}
    for pid, after in world.stock_after.items():
        before = world.stock_before[pid]
        ledger = {
            "on_hand": world.ledger.get(pid, {}).get("on_hand", 0) - before["ledger_on_hand"],
            "reserved": world.ledger.get(pid, {}).get("reserved", 0) - before["ledger_reserved"],
        }
        row = {
            "on_hand": after["on_hand"],
            "available": after["available"],
            "reserved": after["reserved"],
            "reserved_by_orders": held[pid],
            "ledger_on_hand": ledger["on_hand"],
            "on_hand_change": after["on_hand"] - before["on_hand"],
            "ledger_reserved": ledger["reserved"],
            "reserved_change": after["reserved"] - before["reserved"],
        }
        report[pid] = row
        if after["on_hand"] != after["available"] + after["reserved"]:
            problems.append(f"{pid}: on_hand != available + reserved")
        if min(after["on_hand"], after["available"], after["reserved"]) < 0:
            problems.append(f"{pid}: negative stock")
        if after["reserved"] != held[pid]:
            problems.append(f"{pid}: reserved {after['reserved']} but orders hold {held[pid]}")
        if row["ledger_on_hand"] != row["on_hand_change"]:
            problems.append(f"{pid}: ledger on_hand {ledger['on_hand']} != change")
        if row["ledger_reserved"] != row["reserved_change"]:
            problems.append(f"{pid}: ledger reserved {ledger['reserved']} != change")
    # Which orders disagree with DynamoDB: held here but not marked on a product, or the
    # other way round (the names to look for in the logs).
    unmarked = sorted(
        oid
        for oid, order in world.orders.items()
        if order["reservation_state"] == "held"
        and any(
            oid not in world.stock_after.get(pid, {}).get("holds", [])
            for pid, _ in world.items.get(oid, [])
        )
    )
    return Check(
        "stock is exact",
        not problems,
        f"{len(world.stock_after)} products: on_hand = available + reserved, reserved = held "
        f"by orders, ledger = change; {len(problems)} discrepancies",
        {"problems": problems[:20], "held_but_unmarked": unmarked[:20], "products": report},
    )


def no_orphaned_reservation(load: CheckoutLoad, world: World) -> Check:
    held_ids = {oid for oid, o in world.orders.items() if o["reservation_state"] == "held"}
    stray: list[str] = []
    for pid, after in world.stock_after.items():
        for oid in after.get("holds", []):
            if oid not in held_ids:
                stray.append(f"{pid}:{oid}")
    return Check(
        "no orphaned reservation",
        not stray and world.intents == 0,
        f"{world.intents} reservation intents left, {len(stray)} product holds without a "
        "held order",
        {"stray_holds": stray[:10], "intents_left": world.intents},
    )


def dlqs_hold_only_the_poison(load: CheckoutLoad, world: World, injected: int) -> Check:
    poison = sum(POISON_MARKER in body for bodies in world.dlq.values() for body in bodies)
    other = [
        body[:200] for bodies in world.dlq.values() for body in bodies if POISON_MARKER not in body
    ]
    return Check(
        "dead-letter queues hold only the injected poison",
        poison == injected and not other,
        f"{poison} of {injected} injected poison messages dead-lettered, {len(other)} other "
        f"messages ({', '.join(f'{q}: {len(b)}' for q, b in world.dlq.items())})",
        {"other": other[:5]},
    )


# --- gathering ------------------------------------------------------------------------------

LEDGER_SUMS = (
    "SELECT product_id, sum(delta_on_hand)::int AS on_hand, "
    "sum(delta_reserved)::int AS reserved FROM inventory_ledger "
    "WHERE product_id = ANY($1::text[]) AND kind IN ('reserve', 'release', 'confirm') "
    "GROUP BY product_id"
)


async def stock_levels(
    database_url: str, settings: Any, products: list[str]
) -> dict[str, dict[str, int]]:
    """Per product: DynamoDB's levels and the ledger's order-movement sums, now."""
    import asyncpg

    from pickup.adapters.aws import AWSClients
    from pickup.adapters.dynamodb import InventoryStore

    async with AWSClients(settings) as aws:
        store = InventoryStore(aws, settings.names.products_table)
        found = await store.get_products(products, consistent_read=True)
    conn = await asyncpg.connect(database_url)
    try:
        sums = {row["product_id"]: row for row in await conn.fetch(LEDGER_SUMS, products)}
    finally:
        await conn.close()
    return {
        pid: {
            "on_hand": found[pid].on_hand,
            "reserved": found[pid].reserved,
            "available": found[pid].available,
            "ledger_on_hand": sums[pid]["on_hand"] if pid in sums else 0,
            "ledger_reserved": sums[pid]["reserved"] if pid in sums else 0,
        }
        for pid in products
    }


async def gather_world(
    database_url: str,
    settings: Any,
    emulator_url: str,
    load: CheckoutLoad,
    stock_before: dict[str, dict[str, int]],
) -> World:
    import asyncpg

    from pickup.adapters.aws import AWSClients
    from pickup.adapters.dynamodb import from_attribute

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT id::text AS id, code, status, reservation_state, customer_name FROM orders"
        )
        orders = {row["id"]: dict(row) for row in rows}
        items: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for row in await conn.fetch(
            "SELECT order_id::text AS id, product_id, quantity FROM order_items"
        ):
            items[row["id"]].append((row["product_id"], row["quantity"]))
        keys = {
            row["key"]: row["order_id"]
            for row in await conn.fetch(
                "SELECT key, order_id::text AS order_id FROM idempotency_keys "
                "WHERE key = ANY($1::text[])",
                [o.key for o in load.orders],
            )
        }
        intents = await conn.fetchval("SELECT count(*) FROM reservation_intents")
        ledger = {
            row["product_id"]: {"on_hand": row["on_hand"], "reserved": row["reserved"]}
            for row in await conn.fetch(LEDGER_SUMS, list(stock_before))
        }
        email_log: dict[str, list[str]] = defaultdict(list)
        for row in await conn.fetch(
            "SELECT order_id::text AS id, status FROM notification_log "
            "WHERE channel = 'email' AND template = 'order_confirmed' ORDER BY id"
        ):
            email_log[row["id"]].append(row["status"])
    finally:
        await conn.close()

    async with AWSClients(settings) as aws:
        dynamodb = await aws.client("dynamodb")
        stock_after: dict[str, dict[str, Any]] = {}
        for pid in stock_before:
            item = (
                await dynamodb.get_item(
                    TableName=settings.names.products_table,
                    Key={"id": {"S": pid}},
                    ConsistentRead=True,
                )
            )["Item"]
            stock_after[pid] = {
                name: int(from_attribute(item[name]))
                for name in ("on_hand", "available", "reserved")
            }
            stock_after[pid]["holds"] = (
                list(from_attribute(item["holds"])) if "holds" in item else []
            )
        sqs = await aws.client("sqs")
        dlq: dict[str, list[str]] = {}
        for queue in (settings.names.order_dlq, settings.names.notifications_dlq):
            url = (await sqs.get_queue_url(QueueName=queue))["QueueUrl"]
            bodies: list[str] = []
            while True:
                got = await sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600, WaitTimeSeconds=0
                )
                if not got.get("Messages"):
                    break
                bodies.extend(message["Body"] for message in got["Messages"])
            dlq[queue] = bodies
    return World(
        orders=orders,
        items=dict(items),
        keys=keys,
        intents=int(intents or 0),
        ledger=ledger,
        emails_sent=await confirmation_emails(emulator_url),
        email_log=dict(email_log),
        stock_before=stock_before,
        stock_after=stock_after,
        dlq=dlq,
    )


SUBJECT = re.compile(r"Order (\S+) confirmed")


async def confirmation_emails(emulator_url: str) -> Counter[str]:
    """Order code -> confirmation emails SES accepted, from the emulator's own record."""
    async with httpx.AsyncClient(timeout=60) as client:
        data = (await client.get(emulator_url + "/moto-api/data.json")).json()
    counts: Counter[str] = Counter()
    for message in _ses_messages(data.get("ses", {})):
        subject = str(message.get("subject") or message.get("Subject") or "")
        if found := SUBJECT.search(subject):
            counts[found.group(1)] += 1
    return counts


def _ses_messages(node: Any) -> list[dict[str, Any]]:
    """Every sent-message record under the emulator's SES data, whatever its nesting."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "subject" in node or "Subject" in node:
            found.append(node)
        else:
            for value in node.values():
                found.extend(_ses_messages(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_ses_messages(value))
    return found


def dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
