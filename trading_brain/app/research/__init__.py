"""Research use cases: ``register`` (validate and record versions; bars and sources),
``backtest`` (one version over bars; the worker, data checks, metrics), ``optimize`` (parameter
sweeps, walk-forward), ``version_backtest`` (the ``backtests`` asset's run over the warehouse),
``strategy_files`` (the shipped strategy modules). ``backtest`` may import ``register``, never
the reverse (no cycle)."""
