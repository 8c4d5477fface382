"""The worker process: confirms orders from the order queue, expires stale reservations and
follows the products table's DynamoDB Stream (ledger, alerts, menu cache, live stock)."""
