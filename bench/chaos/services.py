"""Private PostgreSQL, Redis and AWS emulator for one chaos run.

Restarting a server that other test runs use would break them, so the suite runs its own:
a PostgreSQL cluster made with ``initdb`` in a temporary directory, a ``redis-server`` without
persistence, and ``pickup aws-emulator`` (from :mod:`bench.env`) behind a
:class:`~bench.chaos.proxy.CuttableProxy` (restarting moto would lose every table and queue,
so "AWS unreachable" is a cut line, not a restart). Each is on a free port and stopped by its
own process id or data directory at the end.

PostgreSQL refuses to run as root; as root the cluster belongs to the ``postgres`` user
(``runuser``), as docs/TOOLCHAIN-style setups do.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos.proxy import CuttableProxy
from bench.env import ROOT, Process, _port_open, _start_emulator, free_port

LOGS = ROOT / ".cache" / "chaos"

PG_BIN = Path(os.environ.get("PICKUP_PG_BIN", "/usr/lib/postgresql/15/bin"))


class ServiceStartError(RuntimeError):
    pass


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ServiceStartError("running as root needs runuser to start PostgreSQL as postgres")
    return [runuser, "-u", "postgres", "--", *command]


def _run(command: list[str], timeout: float = 60) -> None:
    completed = subprocess.run(  # noqa: S603 (our own fixed command line)
        command, capture_output=True, text=True, timeout=timeout, check=False
    )
    if completed.returncode != 0:
        raise ServiceStartError(f"{' '.join(command)} failed: {completed.stderr.strip()}")


@dataclass
class PrivatePostgres:
    """One PostgreSQL cluster in a temporary directory, on a free port."""

    port: int = field(default_factory=free_port)
    directory: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="pickup-chaos-pg-"))
    )

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> PrivatePostgres:
        if not (PG_BIN / "initdb").exists():
            raise ServiceStartError(f"no initdb in {PG_BIN} (set PICKUP_PG_BIN)")
        data = self.directory / "data"
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        command = [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
        _run(_as_postgres([*command, "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]), 120)
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            # fsync off is safe here: the faults kill processes, never the machine, and the
            # OS keeps what was written. synchronous_commit stays on: a crash must not lose
            # a commit PostgreSQL already acknowledged.
            "-c fsync=off "
            "-c max_connections=200"
        )
        log = self.directory / "postgres.log"
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-w", "-t", "60"]
        _run(_as_postgres([*command, "-l", str(log), "-o", options, "start"]), 90)

    def stop(self, mode: str = "fast") -> None:
        """``immediate`` is a crash: no checkpoint, recovery from the WAL at the next start."""
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-m", mode]
        _run(_as_postgres([*command, "-w", "stop"]), 60)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("fast")
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class PrivateRedis:
    """``redis-server`` without persistence: a restart loses every key, like a cache node."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceStartError("redis-server is not installed (make services-install)")
        LOGS.mkdir(parents=True, exist_ok=True)
        with (LOGS / "chaos-redis.log").open("ab") as log:
            command = [binary, "--bind", "127.0.0.1", "--port", str(self.port)]
            self.process = subprocess.Popen(  # noqa: S603 (our own fixed command line)
                [*command, "--save", "", "--appendonly", "no"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while not _port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise ServiceStartError(f"redis-server did not start; see {LOGS}")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def close(self) -> None:
        self.stop()


@dataclass
class PrivateAWS:
    """The AWS emulator, reached through a proxy the harness cuts and restores."""

    emulator: Process
    proxy: CuttableProxy

    @classmethod
    def start(cls) -> PrivateAWS:
        emulator = _start_emulator(LOGS)
        assert emulator.url is not None
        port = int(emulator.url.rsplit(":", 1)[1])
        return cls(emulator, CuttableProxy("127.0.0.1", port).start())

    @property
    def url(self) -> str:
        """What the platform is given: the proxy."""
        return f"http://127.0.0.1:{self.proxy.port}"

    @property
    def direct_url(self) -> str:
        """The emulator itself, for the reconciliation (which must see through a cut)."""
        assert self.emulator.url is not None
        return self.emulator.url

    def close(self) -> None:
        self.proxy.close()
        self.emulator.stop()
