"""AWS Lambda entry point of the notifier: ``pickup.notifier.lambda_function.handler``.

Configure the SQS event source mapping of the notifications queue with
``FunctionResponseTypes=["ReportBatchItemFailures"]``.
"""

from __future__ import annotations

from pickup.messaging.lambda_adapter import LambdaAdapter
from pickup.notifier.handler import notification_handler

handler = LambdaAdapter(notification_handler)
