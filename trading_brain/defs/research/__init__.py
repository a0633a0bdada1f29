"""Dagster wiring of the `research` group: strategy versions and backtests."""
