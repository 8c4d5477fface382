"""Metrics, tracing and logs: what every pickup process tells its operators."""
