"""Resident memory of the processes under test, sampled in the background.

A process's figure is the sum over its tree (uvicorn's supervisor and its workers).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import psutil


def tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time a process and its children (uvicorn's workers) have used."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        times = process.cpu_times()
        total += times.user + times.system
    return total


class RssMonitor:
    """Peak RSS per (process name, phase); ``phase`` is whatever is running now."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.pids: dict[str, int] = {}
        self.phase = "idle"
        self.peaks: dict[str, dict[str, int]] = defaultdict(dict)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-monitor", daemon=True)

    def watch(self, name: str, pid: int) -> None:
        self.pids[name] = pid

    def forget(self, name: str) -> None:
        self.pids.pop(name, None)

    def sample(self) -> dict[str, int]:
        now = {name: tree_rss(pid) for name, pid in list(self.pids.items())}
        for name, rss in now.items():
            phase = self.peaks[name]
            phase[self.phase] = max(phase.get(self.phase, 0), rss)
        return now

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval)

    def peak(self, name: str, phase: str | None = None) -> int | None:
        phases = self.peaks.get(name, {})
        if phase is not None:
            return phases.get(phase)
        return max(phases.values(), default=None)
