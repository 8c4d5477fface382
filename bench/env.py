"""The bench's world: PostgreSQL, Redis, a private AWS emulator, and the processes under test.

PostgreSQL and Redis are found or started the way the test suite does it
(:func:`tests.services.ensure_services`); the bench then works in a database of its own
(created, migrated, dropped at the end) and a Redis database it claims, so a test run on the
same machine is never disturbed. The AWS emulator (``pickup aws-emulator``) is a private
process on a free port: it serialises DynamoDB requests, and sharing it with other runs would
mix their load into our figures.

The API and the bare baseline run as separate uvicorn processes with the same server
settings: no reload, log level warning, no access log, uvloop and httptools when installed.
Every process the bench starts is stopped by its own id at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / ".cache" / "bench"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def raise_nofile_limit() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard limit; processes started afterwards inherit it, so the
    API can hold thousands of SSE streams (``sse``) and the client can open them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


def server_flags() -> list[str]:
    """uvicorn flags shared by the API and the baseline: production-like, identical."""
    flags = ["--log-level", "warning", "--no-access-log", "--timeout-graceful-shutdown", "5"]
    if importlib.util.find_spec("uvloop") is not None:
        flags += ["--loop", "uvloop"]
    if importlib.util.find_spec("httptools") is not None:
        flags += ["--http", "httptools"]
    return flags


def uvicorn_command(target: str, port: int, workers: int) -> list[str]:
    """The command line serving the app factory ``target`` as the bench serves its apps."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        *server_flags(),
    ]


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    url: str | None = None
    log: Path | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is not None:
            return
        # Each process is started in a session of its own: signal that group (its workers).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)


@dataclass
class BenchEnv:
    """Addresses, settings and the processes of one bench run."""

    database_admin_url: str
    database_url: str
    redis_url: str
    aws_endpoint: str
    prefix: str
    secret_key: str
    workers: int
    # Settings every process and in-process call gets on top of the bench's own (the chaos
    # suite's short sweeper interval and grace, for one).
    overrides: dict[str, Any] = field(default_factory=dict)
    logs: Path = LOGS  # where each process's output goes, as <name>.log
    processes: dict[str, Process] = field(default_factory=dict)
    _cleanups: list[Any] = field(default_factory=list)
    _spawned: set[str] = field(default_factory=set)

    # --- settings ---------------------------------------------------------------------------

    def api_environment(self, **extra: str) -> dict[str, str]:
        """PICKUP_* variables of the API (production rules on, as deployed)."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PICKUP_", "AWS_"))
        }
        env.update(
            {
                "PICKUP_ENV": "production",
                "PICKUP_DATABASE_URL": self.database_url,
                "PICKUP_REDIS_URL": self.redis_url,
                "PICKUP_AWS_ENDPOINT_URL": self.aws_endpoint,
                "PICKUP_RESOURCE_PREFIX": self.prefix,
                "PICKUP_SECRET_KEY": self.secret_key,
                "PICKUP_LOG_LEVEL": "WARNING",
                "PICKUP_OPENING_HOURS": "mon-sun 00:00-24:00",
                "PICKUP_SLOT_CAPACITY": "10000",
                "PICKUP_RATE_LIMIT_CART_PER_MINUTE": "100000",
                "PICKUP_RATE_LIMIT_CHECKOUT_PER_MINUTE": "100000",
                # Production refuses static keys in settings: the SDK's own chain finds these.
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update({f"PICKUP_{key.upper()}": str(value) for key, value in self.overrides.items()})
        env.update(extra)
        return env

    def settings(self, **overrides: Any) -> Any:
        """The same settings for in-process work (bootstrap, seed, baselines, checks)."""
        from pickup.settings import Environment, load_settings

        values: dict[str, Any] = {
            "env": Environment.TEST,
            "database_url": self.database_url,
            "redis_url": self.redis_url,
            "aws_endpoint_url": self.aws_endpoint,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "resource_prefix": self.prefix,
            "secret_key": self.secret_key,
            "opening_hours": "mon-sun 00:00-24:00",
            "slot_capacity": 10_000,
            "rate_limit_cart_per_minute": 100_000,
            "rate_limit_checkout_per_minute": 100_000,
            "log_level": "WARNING",
        }
        values.update(self.overrides)
        values.update(overrides)
        return load_settings(**values)

    # --- processes --------------------------------------------------------------------------

    def start_uvicorn(
        self, name: str, target: str, env: dict[str, str], port: int | None = None
    ) -> Process:
        port = port or free_port()
        process = self._spawn(name, uvicorn_command(target, port, self.workers), env)
        process.url = f"http://127.0.0.1:{port}"
        _wait_http(process, process.url + "/healthz", 60)
        return process

    def start_api(self, port: int | None = None) -> Process:
        """The API, on ``port`` when given (a restart keeps its address)."""
        return self.start_uvicorn("api", "pickup.api.main:create", self.api_environment(), port)

    def start_baseline(self) -> Process:
        env = self.api_environment(BENCH_REDIS_URL=self.redis_url)
        return self.start_uvicorn("baseline", "bench.baseline:create", env)

    def start_command(self, name: str, *args: str) -> Process:
        """A ``pickup`` subcommand (worker, notifier) on the API's settings."""
        command = [sys.executable, "-m", "pickup.cli.main", *args]
        # Each gets a health port of its own (the default would clash between them).
        env = self.api_environment(PICKUP_HEALTH_PORT=str(free_port()))
        return self._spawn(name, command, env)

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> Process:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        # A restarted process (the chaos suite) appends to the log of its first start.
        handle = log.open("ab" if name in self._spawned else "wb")
        self._spawned.add(name)
        popen = subprocess.Popen(  # noqa: S603 (our own fixed command line)
            command,
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        handle.close()
        process = Process(name, popen, log=log)
        self.processes[name] = process
        return process

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is not None:
            process.stop()

    def close(self) -> None:
        for name in list(self.processes):
            self.stop(name)
        for cleanup in reversed(self._cleanups):
            with contextlib.suppress(Exception):
                cleanup()


def _wait_http(process: Process, url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited at start-up; see {process.log}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{process.name} did not answer {url} within {seconds:.0f}s")


def _start_emulator(logs: Path = LOGS) -> Process:
    port = free_port()
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / "aws-emulator.log"
    handle = log.open("wb")
    popen = subprocess.Popen(  # noqa: S603 (our own fixed command line)
        [sys.executable, "-m", "pickup.cli.main", "aws-emulator", "--port", str(port)],
        cwd=ROOT,
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    handle.close()
    process = Process("aws-emulator", popen, url=f"http://127.0.0.1:{port}", log=log)
    deadline = time.monotonic() + 30
    while not _port_open(port):
        if popen.poll() is not None or time.monotonic() > deadline:
            process.stop()
            raise RuntimeError(f"the AWS emulator did not start; see {log}")
        time.sleep(0.1)
    return process


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def _create_database(admin_url: str, name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def _drop_database(admin_url: str, name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@contextlib.contextmanager
def bench_env(workers: int = 1) -> Iterator[BenchEnv]:
    """Services up, a fresh database migrated, AWS resources bootstrapped, the menu seeded."""
    from tests.services import claim_redis_database, ensure_services

    raise_nofile_limit()
    emulator = _start_emulator()
    assert emulator.url is not None
    # ensure_services finds the emulator we just started instead of the shared one.
    previous = os.environ.get("PICKUP_TEST_AWS_ENDPOINT")
    os.environ["PICKUP_TEST_AWS_ENDPOINT"] = emulator.url
    try:
        found = ensure_services()
    finally:
        if previous is None:
            os.environ.pop("PICKUP_TEST_AWS_ENDPOINT", None)
        else:
            os.environ["PICKUP_TEST_AWS_ENDPOINT"] = previous
    claim = claim_redis_database(found.redis_url)
    name = f"pickup_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_create_database(found.database_url, name))
    env = BenchEnv(
        database_admin_url=found.database_url,
        database_url=_with_database(found.database_url, name),
        redis_url=claim.url,
        aws_endpoint=emulator.url,
        prefix=f"bench{uuid.uuid4().hex[:8]}",
        secret_key=secrets.token_urlsafe(48),
        workers=workers,
    )
    env.processes["aws-emulator"] = emulator
    env._cleanups.append(claim.release)
    env._cleanups.append(lambda: asyncio.run(_drop_database(found.database_url, name)))
    env._cleanups.append(found.stop_containers)
    try:
        asyncio.run(_prepare(env))
        yield env
    finally:
        env.close()


async def _prepare(env: BenchEnv) -> None:
    from redis.asyncio import Redis

    from pickup.adapters.database import migrate
    from pickup.provisioning import bootstrap
    from pickup.seed.loader import seed

    client = Redis.from_url(env.redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    await migrate(env.database_url)
    settings = env.settings()
    await bootstrap(settings)
    await seed(settings)
