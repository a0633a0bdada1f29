"""Backtests: two engines that provably agree on one fill model (engine/fills.py).

- ``run_fast`` / ``run_fast_many`` / ``run_fast_portfolio``: vectorbt on its Rust engine, for
  sweeps over many parameter sets and symbols (``sweep.run_sweep`` uses both cores).
- ``run_exact`` / ``run_exact_portfolio``: a bar-by-bar replay through engine/portfolio.py with the
  same per-bar ``step`` the paper executor uses.

Both return a ``BacktestResult`` (metrics.py) with the same metrics, trades and equity curve.
"""

from trading_brain.engine.backtest.exact import Decision, run_exact, run_exact_portfolio, step
from trading_brain.engine.backtest.fast import run_fast, run_fast_many, run_fast_portfolio
from trading_brain.engine.backtest.metrics import BacktestResult, Metrics

__all__ = [
    "BacktestResult",
    "Decision",
    "Metrics",
    "run_exact",
    "run_exact_portfolio",
    "run_fast",
    "run_fast_many",
    "run_fast_portfolio",
    "step",
]
