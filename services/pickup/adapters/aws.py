"""One aiobotocore session per process and long-lived clients, one per AWS service.

Creating a client costs tens of milliseconds, so clients are built once (in a composition
root) and reused; :meth:`AWSClients.close` releases their connection pools.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from pickup.settings import Settings


class AWSClients:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._session = get_session()
        self._stack = AsyncExitStack()
        self._clients: dict[str, Any] = {}
        self._config = AioConfig(
            max_pool_connections=settings.aws_max_pool_connections,
            connect_timeout=3,
            read_timeout=30,
            retries={"max_attempts": 3, "mode": "standard"},
        )

    async def client(self, service: str) -> Any:
        """The shared client of ``service`` ("dynamodb", "sqs", "sns", ...), built on first use."""
        if service not in self._clients:
            creator = self._session.create_client(
                service, config=self._config, **self._settings.aws_client_kwargs()
            )
            self._clients[service] = await self._stack.enter_async_context(creator)
        return self._clients[service]

    async def close(self) -> None:
        self._clients.clear()
        await self._stack.aclose()

    async def __aenter__(self) -> AWSClients:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
