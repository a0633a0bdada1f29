"""Research use cases: ``register`` (validate and record versions; bars and sources),
``backtest`` (one version over bars; the worker, data checks, metrics), ``optimize`` (parameter
sweeps, walk-forward), ``data`` (bars from candle files or the warehouse), ``sweep`` (a sweep's
signals, each distinct set once), ``runs`` (the `backtest`/`optimize` commands' use cases over a
home), ``versions`` (`strategies list|show|run|check`), ``version_backtest`` (the ``backtests``
asset's run over the warehouse), ``strategy_files`` (the shipped strategy modules).
``backtest`` may import ``register``, never the reverse (no cycle)."""
