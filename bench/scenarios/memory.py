"""``memory``: peak resident memory (RSS, summed over a process's tree) of the api, worker and
notifier processes, idle and under the rush, sampled every 0.2 s while the bench runs. Runs
the rush itself when the run did not include it. The bare baseline app's idle RSS is shown
for scale; the goal is the chart's memory limit for one api pod (512 MiB)."""

from __future__ import annotations

from bench.context import Context
from bench.results import ScenarioResult
from bench.scenarios import rush

NEEDS = ("api",)
LIMIT_MIB = 512


def skip_reason(ctx: Context) -> str | None:
    return None


def _mib(value: int | None) -> float | None:
    return None if value is None else round(value / 1024 / 1024, 1)


def run(ctx: Context) -> ScenarioResult:
    monitor = ctx.monitor
    if "rush" not in ctx.results and rush.skip_reason(ctx) is None:
        monitor.phase = "rush"
        ctx.results["rush (for memory)"] = rush.run(ctx)
        monitor.phase = "memory"
    processes: dict[str, dict[str, float | None]] = {}
    for name in ("api", "worker", "notifier", "baseline"):
        if name not in monitor.peaks:
            continue
        processes[name] = {
            "idle_mib": _mib(monitor.peak(name, "idle")),
            "rush_peak_mib": _mib(monitor.peak(name, "rush")),
            "peak_mib": _mib(monitor.peak(name)),
            "peak_by_phase_mib": {
                phase: _mib(value) for phase, value in monitor.peaks[name].items()
            },
        }
    api = processes.get("api", {})
    peak = api.get("peak_mib")
    baseline_idle = processes.get("baseline", {}).get("idle_mib")
    return ScenarioResult(
        name="memory",
        unit="MiB",
        value=peak,
        baseline=baseline_idle,
        baseline_what="idle RSS of the bare baseline app (for scale)",
        ratio=None,
        goal=f"api peak < {LIMIT_MIB} MiB",
        passed=peak is not None and peak < LIMIT_MIB,
        details={
            "api_idle_mib": api.get("idle_mib"),
            "api_rush_peak_mib": api.get("rush_peak_mib"),
            "worker_idle_mib": processes.get("worker", {}).get("idle_mib"),
            "worker_rush_peak_mib": processes.get("worker", {}).get("rush_peak_mib"),
            "notifier_idle_mib": processes.get("notifier", {}).get("idle_mib"),
            "notifier_rush_peak_mib": processes.get("notifier", {}).get("rush_peak_mib"),
            "workers": ctx.env.workers,
            "processes": processes,
        },
    )
