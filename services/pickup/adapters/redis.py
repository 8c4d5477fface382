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


def hit_lua(key: str, window_ms: str) -> str:
    """Lua counting one hit of a fixed-window rate limit on ``key`` (the window, ``window_ms``
    milliseconds, starts at its first hit; later hits never extend it). Leaves ``hits`` (in
    this window) and ``ttl`` (milliseconds until it ends) as locals. The rate limiter's script
    is this; the cart's add script embeds it to count a cart write in the same round trip."""
    return f"""
local hits = redis.call('INCR', {key})
local ttl = redis.call('PTTL', {key})
if ttl < 0 then
  redis.call('PEXPIRE', {key}, {window_ms})
  ttl = tonumber({window_ms})
end
"""
