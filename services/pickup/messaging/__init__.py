"""Queue consumption shared by the worker and the notifier: a long-polling SQS consumer and an
AWS Lambda adapter that run the same handlers (see :mod:`pickup.messaging.consumer`)."""
