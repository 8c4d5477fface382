"""Garbage-collector tuning for a process that serves one app for its whole life.

Kept apart from the app (it imports nothing of pickup), so the benchmarks' bare baseline
process runs with exactly the same tuning as the API.
"""

from __future__ import annotations

import gc

# A young collection every 20,000 net allocations of tracked objects instead of Python's 700:
# a request allocates a few hundred, so the default collected every two or three requests.
SERVING_GC_THRESHOLDS = (20_000, 20, 20)


def tune_gc_for_serving() -> None:
    """Collect and then freeze the heap (``gc.freeze``), so the cyclic garbage collector never
    scans again what the process holds for its whole life (modules, the ORM's and the AWS
    SDK's models, the app), and collect young objects less often (docs/performance.md,
    step 6). For the whole process: call it once start-up is done."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_GC_THRESHOLDS)
