"""The Redis client: a real server (redis://, rediss://, unix://) or, in embedded
development only, an in-process fakeredis server (memory://)."""

from __future__ import annotations

from redis.asyncio import Redis

from pickup.settings import Settings

_memory_servers: dict[str, object] = {}


def create_redis(settings: Settings) -> Redis:
    """A client with a bounded connection pool. It connects lazily, on first command."""
    url = settings.redis_url
    if url.startswith("memory://"):
        import fakeredis

        # One FakeServer per URL, so every client of the process sees the same data.
        server = _memory_servers.setdefault(url, fakeredis.FakeServer())
        return fakeredis.FakeAsyncRedis(server=server, decode_responses=True)
    return Redis.from_url(
        url,
        decode_responses=True,
        max_connections=settings.redis_max_connections,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
    )
