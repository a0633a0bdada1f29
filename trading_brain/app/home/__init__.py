"""Use cases of one home: ``init`` (create it), ``config_file`` (the commented TOML),
``status`` (mode, candle coverage, halts), ``control`` (halt, resume, kill), ``history``
(bootstrap backfill)."""
