"""AWS Lambda entry point of the order handler: ``pickup.worker.lambda_function.handler``.

Configure the SQS event source mapping of the order queue with
``FunctionResponseTypes=["ReportBatchItemFailures"]``; settings come from ``PICKUP_*``
variables (and the SSM overlay) as for the worker process.
"""

from __future__ import annotations

from pickup.messaging.lambda_adapter import LambdaAdapter
from pickup.worker.orders import order_handler

handler = LambdaAdapter(order_handler)
