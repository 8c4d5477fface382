"""For ``kopf run -m pickup_operator.kopf_entry``: the handlers on kopf's default registry.

The settings are read here, once, because the timer's interval is fixed at registration;
``pickup operator`` is the usual way in and does the same without a module-level side effect.
"""

from __future__ import annotations

import kopf

from pickup.settings import load_settings
from pickup_operator.main import register

_settings = load_settings()
register(
    kopf.get_default_registry(),
    reconcile_interval=_settings.operator_reconcile_interval_seconds,
    event_check_interval=_settings.operator_event_check_seconds,
)
