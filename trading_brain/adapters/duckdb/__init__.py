"""The DuckDB warehouse adapter: short connections, numbered migrations, idempotent upserts."""

from trading_brain.adapters.duckdb.store import Store

__all__ = ["Store"]
