"""The clients one process holds, built in its composition root and closed on shutdown.

Nothing connects at import time: :meth:`Resources.open` builds every client, and leaving its
context closes them in reverse order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pickup.adapters.aws import AWSClients
from pickup.adapters.carts import CartStore
from pickup.adapters.database import create_engine, create_sessionmaker
from pickup.adapters.dynamodb import InventoryStore
from pickup.adapters.redis import create_redis
from pickup.menu.cache import LocalCopy
from pickup.settings import Settings


@dataclass(frozen=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    aws: AWSClients
    inventory: InventoryStore
    carts: CartStore
    # The menu document these clients served last (pickup.menu.service.menu_document): one
    # per Resources, so two apps in one process never serve each other's menu.
    menu_copy: LocalCopy = field(default_factory=LocalCopy, compare=False, repr=False)

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings) -> AsyncIterator[Resources]:
        async with AsyncExitStack() as stack:
            engine = create_engine(settings)
            stack.push_async_callback(engine.dispose)
            redis = create_redis(settings)
            stack.push_async_callback(redis.aclose)
            aws = await stack.enter_async_context(AWSClients(settings))
            yield cls(
                settings=settings,
                engine=engine,
                sessions=create_sessionmaker(engine),
                redis=redis,
                aws=aws,
                inventory=InventoryStore(aws, settings.names.products_table),
                carts=CartStore(
                    redis,
                    ttl_seconds=settings.cart_ttl_seconds,
                    max_lines=settings.cart_max_lines,
                    max_quantity=settings.cart_max_quantity,
                ),
            )
