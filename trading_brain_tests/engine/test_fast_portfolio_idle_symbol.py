"""run_fast_portfolio with a symbol that never trades beside one that does (regression: the
idle symbol's empty trade frame had Null-typed columns and the concat failed)."""

from __future__ import annotations

import polars as pl

from trading_brain.engine.backtest.exact import run_exact_portfolio
from trading_brain.engine.backtest.fast import run_fast_portfolio
from trading_brain_tests.conftest import make_candles


def _signals(bars: pl.DataFrame, enter_at: int | None) -> pl.DataFrame:
    action = ["hold"] * bars.height
    if enter_at is not None:
        action[enter_at] = "enter"
        action[enter_at + 5] = "exit"
    return pl.DataFrame({"action": action, "size": 0.1, "stop_loss": None,
                         "take_profit": None}, schema_overrides={"stop_loss": pl.Float64,
                                                                 "take_profit": pl.Float64})


def test_a_symbol_without_trades_beside_one_with_trades() -> None:
    bars = {"BTC/USD": make_candles("BTC/USD", n=40, seed=1),
            "ETH/USD": make_candles("ETH/USD", n=40, seed=2)}
    # the idle symbol comes first in the portfolio's order
    signals = {"BTC/USD": _signals(bars["BTC/USD"], None), "ETH/USD": _signals(bars["ETH/USD"], 3)}
    fast = run_fast_portfolio(bars, signals)
    exact = run_exact_portfolio(bars, signals)
    assert fast.metrics.n_trades == exact.metrics.n_trades == 1
    assert fast.trades["symbol"].to_list() == ["ETH/USD"]
    assert abs(fast.metrics.final_equity - exact.metrics.final_equity) < 1e-6
