"""The real services the suite talks to: PostgreSQL, Redis and a moto server.

For each service: use it where it already answers at the configured address
(``PICKUP_TEST_DATABASE_URL``, ``PICKUP_TEST_REDIS_URL``, ``PICKUP_TEST_AWS_ENDPOINT``);
otherwise start it in a container where a Docker engine exists (testcontainers); otherwise
start a private local process on 127.0.0.1 under ``.cache/`` and leave it running, so the
next run finds it. Every failure names the service and what to do.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "services"

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
DEFAULT_AWS_ENDPOINT = "http://127.0.0.1:5010"

PRIVATE_PG_PORT = 55432
PRIVATE_REDIS_PORT = 56379


class ServiceError(RuntimeError):
    pass


@dataclass
class Services:
    database_url: str  # an admin URL: tests create their own database beside it
    redis_url: str
    aws_endpoint: str
    _containers: list[Any] = field(default_factory=list)

    def stop_containers(self) -> None:
        for container in self._containers:
            container.stop()


def _port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait_for_port(name: str, host: str, port: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _port_open(host, port):
            return
        time.sleep(0.1)
    raise ServiceError(f"{name} did not start listening on {host}:{port} within {seconds:.0f}s")


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


# --- PostgreSQL -------------------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "pg_ctl").exists():
            return candidate
    return None


def _start_private_postgres() -> str:
    bindir = _postgres_bin()
    if bindir is None:
        raise ServiceError(
            "PostgreSQL is not reachable and not installed: run `make services-install` "
            "(apt-get install postgresql) or set PICKUP_TEST_DATABASE_URL"
        )
    data = CACHE / "postgres"
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if run_as:
            shutil.chown(data, "postgres", "postgres")
        subprocess.run(
            [
                *run_as,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            check=True,
            capture_output=True,
        )
    options = (
        f"-p {PRIVATE_PG_PORT} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
    )
    subprocess.run(
        [
            *run_as,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-w",
            "-l",
            str(data / "server.log"),
            "-o",
            options,
            "start",
        ],
        check=True,
        capture_output=True,
    )
    return f"postgresql://postgres@127.0.0.1:{PRIVATE_PG_PORT}/postgres"


def _postgres(services: list[Any], docker: bool) -> str:
    url = os.environ.get("PICKUP_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)
    parts = urlsplit(url)
    if _port_open(parts.hostname or "127.0.0.1", parts.port or 5432):
        return url
    private = f"postgresql://postgres@127.0.0.1:{PRIVATE_PG_PORT}/postgres"
    if _port_open("127.0.0.1", PRIVATE_PG_PORT):
        return private
    if docker:
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:15-alpine", driver=None).start()
        services.append(container)
        return container.get_connection_url()
    return _start_private_postgres()


# --- Redis ------------------------------------------------------------------------------------


def _redis(services: list[Any], docker: bool) -> str:
    url = os.environ.get("PICKUP_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    parts = urlsplit(url)
    if _port_open(parts.hostname or "127.0.0.1", parts.port or 6379):
        return url
    private = f"redis://127.0.0.1:{PRIVATE_REDIS_PORT}/15"
    if _port_open("127.0.0.1", PRIVATE_REDIS_PORT):
        return private
    if docker:
        from testcontainers.redis import RedisContainer

        container = RedisContainer("redis:7.0-alpine").start()
        services.append(container)
        host = container.get_container_host_ip()
        return f"redis://{host}:{container.get_exposed_port(6379)}/15"
    server = shutil.which("redis-server")
    if server is None:
        raise ServiceError(
            "Redis is not reachable and not installed: run `make services-install` "
            "(apt-get install redis-server) or set PICKUP_TEST_REDIS_URL"
        )
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            server,
            "--bind",
            "127.0.0.1",
            "--port",
            str(PRIVATE_REDIS_PORT),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "yes",
            "--dir",
            str(CACHE),
            "--logfile",
            str(CACHE / "redis.log"),
        ],
        check=True,
        capture_output=True,
    )
    _wait_for_port("Redis", "127.0.0.1", PRIVATE_REDIS_PORT)
    return private


# --- moto ---------------------------------------------------------------------------------------


def _moto_ready(endpoint: str) -> bool:
    # The port alone: moto's own API (data.json) dumps all state, which gets slow.
    parts = urlsplit(endpoint)
    return _port_open(parts.hostname or "127.0.0.1", parts.port or 80)


def _moto() -> str:
    endpoint = os.environ.get("PICKUP_TEST_AWS_ENDPOINT", DEFAULT_AWS_ENDPOINT).rstrip("/")
    if _moto_ready(endpoint):
        return endpoint
    parts = urlsplit(endpoint)
    if parts.hostname not in {"127.0.0.1", "localhost"}:
        raise ServiceError(f"the moto server at {endpoint} does not answer")
    port = parts.port or 5010
    CACHE.mkdir(parents=True, exist_ok=True)
    log = (CACHE / "moto.log").open("ab")
    # A separate process (not a thread of the test process), so concurrency tests measure the
    # service and not the GIL; it outlives the run and is reused by the next one. It is the
    # project's emulator: moto with DynamoDB requests applied atomically, as DynamoDB does.
    subprocess.Popen(
        [sys.executable, "-m", "pickup.cli.main", "aws-emulator", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _moto_ready(endpoint):
            return endpoint
        time.sleep(0.2)
    raise ServiceError(f"the moto server did not start at {endpoint}; see {CACHE / 'moto.log'}")


@dataclass
class RedisClaim:
    url: str
    _client: Any
    _key: str

    def release(self) -> None:
        self._client.delete(self._key)
        self._client.close()


def claim_redis_database(url: str) -> RedisClaim:
    """A Redis database (1-15) no other running test session holds, claimed for an hour.

    The database in ``url`` is tried first. Claims are keys in database 0, which tests never
    empty, set only if absent, so two sessions can never hold the same database.
    """
    import redis

    parts = urlsplit(url)
    preferred = int(parts.path.lstrip("/") or 15)
    registry = redis.Redis.from_url(parts._replace(path="/0").geturl())
    for index in [preferred, *(i for i in range(15, 0, -1) if i != preferred)]:
        key = f"pickup-test:claim:{index}"
        if registry.set(key, str(os.getpid()), nx=True, ex=3600):
            return RedisClaim(parts._replace(path=f"/{index}").geturl(), registry, key)
    registry.close()
    raise ServiceError("every Redis database 1-15 is claimed by another test session")


def ensure_services() -> Services:
    """Find or start PostgreSQL, Redis and moto; raise :class:`ServiceError` if one can't be had."""
    containers: list[Any] = []
    docker = _docker_available()
    return Services(
        database_url=_postgres(containers, docker),
        redis_url=_redis(containers, docker),
        aws_endpoint=_moto(),
        _containers=containers,
    )


if __name__ == "__main__":
    found = ensure_services()
    print(f"PostgreSQL {found.database_url}")
    print(f"Redis      {found.redis_url}")
    print(f"moto       {found.aws_endpoint}")
