"""The kopf operator reconciling InventoryThreshold resources (pickup.dev/v1alpha1).

- :mod:`pickup_operator.main` registers the handlers and runs the operator;
- :mod:`pickup_operator.handlers` orchestrates: DynamoDB, SNS, Events, status;
- :mod:`pickup_operator.builders` holds the pure decisions and builders;
- :mod:`pickup_operator.alerts` publishes the SNS alert.
"""
