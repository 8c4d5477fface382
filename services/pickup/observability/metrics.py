"""Every Prometheus metric pickup exports, in one place.

This module is the catalogue the dashboards, the alert rules, the CloudWatch publisher and
their tests read: a metric that is not defined here is not exported. Metric objects are
created at import time (prometheus-client's way) but nothing here does I/O.

Names follow Prometheus conventions: ``pickup_`` prefix, base units (seconds, bytes),
``_total`` on counters. Labels are low-cardinality by construction: HTTP metrics carry the
route *template* (``/api/orders/{order_id}``), never the raw URL.

Gauges carry a ``multiprocess_mode`` so they aggregate sensibly when
``PROMETHEUS_MULTIPROC_DIR`` is set and several processes share one pod.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Latency buckets for HTTP requests and handler work: 5 ms to 10 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Order lifecycle delays: a second to an hour.
LIFECYCLE_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)

# --- HTTP (api) ---------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "pickup_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "pickup_http_request_duration_seconds",
    "Time to answer an HTTP request (to the response start), by method and route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_PROGRESS = Gauge(
    "pickup_http_requests_in_progress",
    "HTTP requests being answered now (server-sent event streams included).",
    ["method", "route"],
    multiprocess_mode="livesum",
)

# --- Orders -------------------------------------------------------------------------------

ORDER_EVENTS = Counter(
    "pickup_order_events_total",
    "Order lifecycle events: placed, confirmed, rejected, ready, picked_up, cancelled, expired.",
    ["event"],
)
CHECKOUT_STOCK_CONFLICTS = Counter(
    "pickup_checkout_stock_conflicts_total",
    "Checkouts refused because a line was short of stock (409 insufficient-stock).",
)
ACTIVE_RESERVATIONS = Gauge(
    "pickup_active_reservations",
    "Orders holding a stock reservation now (placed, confirmed, preparing or ready).",
    multiprocess_mode="mostrecent",
)
PLACED_TO_CONFIRMED_SECONDS = Histogram(
    "pickup_order_placed_to_confirmed_seconds",
    "Delay from an order's acceptance (202) to its confirmation by the worker.",
    buckets=LIFECYCLE_BUCKETS,
)
CONFIRMED_TO_READY_SECONDS = Histogram(
    "pickup_order_confirmed_to_ready_seconds",
    "Delay from an order's confirmation to the kitchen marking it ready.",
    buckets=LIFECYCLE_BUCKETS,
)
OUTBOX_PENDING = Gauge(
    "pickup_outbox_pending",
    "Messages written to the outbox and not yet published (grows while SQS/SNS are down).",
    multiprocess_mode="mostrecent",
)

# --- Queues -------------------------------------------------------------------------------

QUEUE_MESSAGES = Counter(
    "pickup_queue_messages_total",
    "Queue messages handled, by queue and outcome (ack, retry, poison, error).",
    ["queue", "outcome"],
)
QUEUE_HANDLING_SECONDS = Histogram(
    "pickup_queue_message_handling_seconds",
    "Time a handler took, by queue.",
    ["queue"],
    buckets=LATENCY_BUCKETS,
)
QUEUE_IN_FLIGHT = Gauge(
    "pickup_queue_messages_in_flight",
    "Messages being handled now.",
    ["queue"],
    multiprocess_mode="livesum",
)
QUEUE_LAG_SECONDS = Histogram(
    "pickup_queue_message_lag_seconds",
    "Age of a message when a consumer received it (now - SentTimestamp), by queue.",
    ["queue"],
    buckets=(*LATENCY_BUCKETS, 30.0, 60.0, 300.0),
)
QUEUE_DEPTH = Gauge(
    "pickup_queue_depth",
    "Messages in a queue (ApproximateNumberOfMessages), sampled periodically, by queue.",
    ["queue"],
    multiprocess_mode="mostrecent",
)
DLQ_DEPTH = Gauge(
    "pickup_dlq_depth",
    "Messages in a dead-letter queue, sampled periodically, by the queue it serves.",
    ["queue"],
    multiprocess_mode="mostrecent",
)
CONSUMER_LAST_POLL = Gauge(
    "pickup_consumer_last_poll_timestamp_seconds",
    "Unix time a consumer last completed a receive call, by queue (stalls show as age).",
    ["queue"],
    multiprocess_mode="max",
)

# --- Notifications ------------------------------------------------------------------------

NOTIFICATIONS = Counter(
    "pickup_notifications_total",
    "Notifications handled, by channel (email, sms, push, ...) and result (sent, failed, "
    "ambiguous, in_progress, skipped, duplicate).",
    ["channel", "result"],
)

# --- Stock and caches ---------------------------------------------------------------------

LOW_STOCK_PRODUCTS = Gauge(
    "pickup_low_stock_products",
    "Products at or under their low-stock threshold (out of stock ones included).",
    multiprocess_mode="mostrecent",
)
OUT_OF_STOCK_PRODUCTS = Gauge(
    "pickup_out_of_stock_products",
    "Products with nothing available.",
    multiprocess_mode="mostrecent",
)
CACHE_REQUESTS = Counter(
    "pickup_cache_requests_total",
    "Cache look-ups, by cache (menu, order_status, ...) and result (hit, miss).",
    ["cache", "result"],
)

ALL = (
    HTTP_REQUESTS,
    HTTP_REQUEST_SECONDS,
    HTTP_IN_PROGRESS,
    ORDER_EVENTS,
    CHECKOUT_STOCK_CONFLICTS,
    ACTIVE_RESERVATIONS,
    PLACED_TO_CONFIRMED_SECONDS,
    CONFIRMED_TO_READY_SECONDS,
    OUTBOX_PENDING,
    QUEUE_MESSAGES,
    QUEUE_HANDLING_SECONDS,
    QUEUE_IN_FLIGHT,
    QUEUE_LAG_SECONDS,
    QUEUE_DEPTH,
    DLQ_DEPTH,
    CONSUMER_LAST_POLL,
    NOTIFICATIONS,
    LOW_STOCK_PRODUCTS,
    OUT_OF_STOCK_PRODUCTS,
    CACHE_REQUESTS,
)
