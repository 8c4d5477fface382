"""Benchmarks of the pickup platform (``python -m bench.run``); see docs/performance.md."""
