"""Dagster wiring of the `trading` group: the scan's `scan_signals` and `order_intents` assets."""
