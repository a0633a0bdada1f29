"""I/O adapters: DuckDB store, markets (sim, replay, Kraken), sandbox worker, clocks."""
