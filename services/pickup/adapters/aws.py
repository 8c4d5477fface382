"""One aiobotocore session per process and long-lived clients, one per AWS service.

Creating a client costs tens of milliseconds, so clients are built once (in a composition
root) and reused; :meth:`AWSClients.close` releases their connection pools.

Clients retry throttling and connection errors themselves (botocore's standard mode), which
is right for idempotent calls and for messages whose consumers are idempotent. Sending an email
or a text message is neither: a retried ``SendEmail`` whose first request reached SES but lost
its answer is a second email. :meth:`AWSClients.sending_client` builds the notifier's clients
without retries and with short timeouts; the notifier decides what a failure means
(pickup.notifier.channels).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from pickup.settings import Settings

# The clients that send messages to people (SES, SNS text messages): one attempt each, a
# connection within 3 s and each read within 15 s. pickup.notifier.channels bounds a whole
# send to SEND_TIMEOUT_SECONDS, which the notification send lease must comfortably exceed.
SEND_CONNECT_TIMEOUT_SECONDS = 3
SEND_READ_TIMEOUT_SECONDS = 15
SEND_TIMEOUT_SECONDS = 20


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
        self._sending_config = AioConfig(
            max_pool_connections=settings.aws_max_pool_connections,
            connect_timeout=SEND_CONNECT_TIMEOUT_SECONDS,
            read_timeout=SEND_READ_TIMEOUT_SECONDS,
            retries={"total_max_attempts": 1, "mode": "standard"},
        )

    async def client(self, service: str) -> Any:
        """The shared client of ``service`` ("dynamodb", "sqs", "sns", ...), built on first use."""
        return await self._client(service, service, self._config)

    async def sending_client(self, service: str) -> Any:
        """A client of ``service`` ("sesv2", "sns") for messages to people: no retries.

        Each call is one HTTP request, so a failure can be judged: never connected (not sent)
        or lost after the request was written (perhaps sent).
        """
        return await self._client(f"{service}:sending", service, self._sending_config)

    async def _client(self, name: str, service: str, config: AioConfig) -> Any:
        if name not in self._clients:
            creator = self._session.create_client(
                service, config=config, **self._settings.aws_client_kwargs()
            )
            self._clients[name] = await self._stack.enter_async_context(creator)
        return self._clients[name]

    async def close(self) -> None:
        self._clients.clear()
        await self._stack.aclose()

    async def __aenter__(self) -> AWSClients:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
