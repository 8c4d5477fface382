"""Fault injection: the platform under steady order load while its services fail and come
back (``make chaos``; a short form runs in ``make test``). See docs/reliability.md."""
