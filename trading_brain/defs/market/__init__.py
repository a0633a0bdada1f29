"""Dagster wiring of the `market` group: asset pairs, candles, indicators, their checks and jobs."""
