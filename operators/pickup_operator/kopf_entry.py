"""For ``kopf run -m pickup_operator.kopf_entry``: the handlers on kopf's default registry.

The settings are read here, once, because the timer's interval is fixed at registration;
``pickup operator`` is the usual way in and does the same without a module-level side effect.
"""

from __future__ import annotations

import kopf

from pickup.settings import load_settings
from pickup_operator.main import register

register(
    kopf.get_default_registry(),
    reconcile_interval=load_settings().operator_reconcile_interval_seconds,
)
