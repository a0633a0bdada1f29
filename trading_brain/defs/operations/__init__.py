"""Dagster wiring of the `operations` group: the nightly warehouse backup."""
