"""The API under pyinstrument, for ``python -m bench.profile``: one uvicorn worker with the
bench's server flags, the whole process sampled; the report is written when it stops."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import uvicorn
from pyinstrument import Profiler


def main() -> None:
    out = Path(os.environ["BENCH_PROFILE_OUT"])
    profiler = Profiler(interval=0.0005, async_mode="disabled")
    # uvicorn restores the previous handlers and re-raises the signal it stopped on: make that
    # previous handler a no-op, so the report below still gets written.
    signal.signal(signal.SIGTERM, lambda *_: None)
    signal.signal(signal.SIGINT, lambda *_: None)
    config = uvicorn.Config(
        "pickup.api.main:create",
        factory=True,
        host="127.0.0.1",
        port=int(os.environ["BENCH_PORT"]),
        log_level="warning",
        access_log=False,
        loop=os.environ.get("BENCH_LOOP", "auto"),
        http=os.environ.get("BENCH_HTTP", "auto"),
    )
    profiler.start()
    try:
        uvicorn.Server(config).run()
    finally:
        profiler.stop()
        out.with_suffix(".txt").write_text(
            profiler.output_text(unicode=False, color=False, show_all=False)
        )
        out.with_suffix(".html").write_text(profiler.output_html())


if __name__ == "__main__":
    main()
