"""Pure domain types and rules: no I/O, no dagster, no duckdb."""
