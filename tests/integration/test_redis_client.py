"""The Redis client packs commands with hiredis: the same bytes as redis-py's own packer,
every URL scheme, and real commands (plain, pipelined, scripted) against a real Redis."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from pickup.adapters.redis import redis_from_url

ARGUMENTS: list[tuple[Any, ...]] = [
    ("SET", "cart:abc", "1"),
    ("CONFIG GET", "maxmemory"),  # a command name of two words is split, as redis-py does
    (b"HSET", b"key", "caf\u00e9", 12, 3.5, -7),
    ("EVALSHA", "a" * 40, 3, "k1", "k2", "k3", "espresso", 1, 20, "", "", 120, 60000),
    ("SET", "big", "x" * 20_000),  # longer than redis-py's buffer cutoff
    ("SET", "view", memoryview(b"bytes in a view")),
]


@pytest.mark.parametrize("args", ARGUMENTS)
def test_commands_are_packed_as_redis_py_packs_them(args: tuple[Any, ...]) -> None:
    client = redis_from_url("redis://127.0.0.1:6379/0")
    packed = client.connection_pool.make_connection().pack_command(*args)
    reference = Connection().pack_command(*args)  # redis-py's asyncio packer, in Python
    assert b"".join(packed) == b"".join(bytes(piece) for piece in reference)


def test_an_argument_redis_cannot_take_is_refused_as_redis_py_refuses_it() -> None:
    connection = redis_from_url("redis://127.0.0.1:6379/0").connection_pool.make_connection()
    with pytest.raises(DataError):
        connection.pack_command("SET", "key", None)


@pytest.mark.parametrize(
    ("url", "base", "db"),
    [
        ("redis://127.0.0.1:6379/3", Connection, 3),
        ("rediss://cache.example.internal:6379/0", SSLConnection, 0),
        ("unix:///run/redis/redis.sock?db=2", UnixDomainSocketConnection, 2),
    ],
)
def test_every_scheme_gets_its_own_connection_packed_by_hiredis(
    url: str, base: type, db: int
) -> None:
    pool = redis_from_url(url, max_connections=7, db=9).connection_pool
    assert issubclass(pool.connection_class, base)
    assert pool.connection_class is not base
    assert pool.connection_class.pack_command is not base.pack_command
    assert pool.max_connections == 7
    assert pool.connection_kwargs["db"] == db  # the URL's database wins over db=9


async def test_real_commands_pipelines_and_scripts(redis: Any) -> None:
    assert type(redis.connection_pool).__name__ == "ConnectionPool"
    assert redis.connection_pool.connection_class.__name__ == "_TCPConnection"
    await redis.set("packed:plain", "caf\u00e9")
    await redis.set("packed:big", "y" * 50_000)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset("packed:hash", mapping={"a": 1, "b": 2.5})
        pipe.hincrby("packed:hash", "a", 41)
        pipe.hgetall("packed:hash")
        _, total, everything = await pipe.execute()
    script = redis.register_script("return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}")
    assert await redis.get("packed:plain") == "caf\u00e9"
    assert await redis.get("packed:big") == "y" * 50_000
    assert (total, everything) == (42, {"a": "42", "b": "2.5"})
    assert await script(keys=["packed:k"], args=["v", 41]) == ["packed:k", "v", 42]
