"""Fast (vectorbt) and exact (bar replay) engines give the same trades on real candles."""

from __future__ import annotations

import math

import pytest

from trading_brain.engine.backtest import (
    run_exact,
    run_exact_portfolio,
    run_fast,
    run_fast_portfolio,
)
from trading_brain_tests.engine.backtest.helpers import assert_same_trades, ema_cross, load_candles

FILES = {s: f"binance_{s}USDT_5m_2024H1.csv.gz" for s in ("BTC", "ETH", "SOL")}


@pytest.mark.parametrize("symbol", list(FILES))
def test_engines_agree_on_real_5m_bars(symbol):
    bars = load_candles(FILES[symbol], rows=None if symbol == "BTC" else 12_000)  # >= 6 weeks
    sig = ema_cross(bars, 12, 26, size=0.1, stop_loss=0.02, take_profit=0.04)
    fast = run_fast(bars, sig)
    exact = run_exact(bars, sig)
    closed = fast.closed_trades()
    reasons = set(closed["exit_reason"])
    assert closed.height > 30 and {"signal", "stop_loss", "take_profit"} <= reasons
    assert_same_trades(fast.trades, exact.trades, rel=1e-9)
    assert math.isclose(fast.metrics.final_equity, exact.metrics.final_equity, rel_tol=1e-6)
    for name in ("sharpe", "sortino", "max_drawdown", "win_rate", "exposure", "profit_factor"):
        assert getattr(fast.metrics, name) == pytest.approx(getattr(exact.metrics, name), rel=1e-6)
    assert fast.metrics.n_trades == exact.metrics.n_trades == closed.height
    assert fast.equity["equity"].to_numpy() == pytest.approx(
        exact.equity["equity"].to_numpy(), rel=1e-9
    )


def test_engines_agree_with_full_size_and_tight_stops():
    bars = load_candles(FILES["SOL"], rows=12_000)
    sig = ema_cross(bars, 5, 40, size=1.0, stop_loss=0.005, take_profit=0.01)
    fast, exact = run_fast(bars, sig), run_exact(bars, sig)
    reasons = fast.closed_trades()["exit_reason"].value_counts()
    assert reasons.height == 3, reasons  # all three exit kinds occur
    assert_same_trades(fast.trades, exact.trades)
    assert math.isclose(fast.metrics.final_equity, exact.metrics.final_equity, rel_tol=1e-6)


def test_shared_cash_portfolio_agrees_across_symbols():
    bars = {s: load_candles(f, rows=8_000) for s, f in FILES.items()}
    sigs = {
        s: ema_cross(b, 9, 30, size=0.5, stop_loss=0.01, take_profit=0.02) for s, b in bars.items()
    }
    fast = run_fast_portfolio(bars, sigs, cash=10_000.0)
    exact = run_exact_portfolio(bars, sigs, cash=10_000.0)
    assert set(fast.trades["symbol"]) == set(FILES)
    assert_same_trades(fast.trades, exact.trades)
    assert math.isclose(fast.metrics.final_equity, exact.metrics.final_equity, rel_tol=1e-6)
    # sharing cash matters: size 0.5 of what is left differs from three separate accounts
    alone = run_exact(bars["ETH"], sigs["ETH"], cash=10_000.0)
    eth = exact.trades.filter(symbol="ETH")
    assert eth["entry_time"].to_list() == alone.trades["entry_time"].to_list()
    assert eth["quantity"].to_list() != alone.trades["quantity"].to_list()


@pytest.mark.parametrize("varying", [False, True])
def test_direct_vectorbt_core_call_equals_portfolio_from_signals(varying):
    import numpy as np
    import polars as pl

    from trading_brain.engine.backtest.fast import Bars, shifted_orders, simulate

    bars = load_candles(FILES["ETH"], rows=10_000)
    sig = ema_cross(bars, 7, 35, size=0.3, stop_loss=0.01, take_profit=0.015)
    if varying:  # per-bar size and stops force the full (n x k) arrays
        rng = np.random.default_rng(7)
        sig = sig.with_columns(
            pl.Series("size", rng.uniform(0.05, 1.0, bars.height)),
            pl.Series("stop_loss", rng.choice([0.005, 0.01, np.nan], bars.height)).fill_nan(None),
        )
    b, o = Bars.of(bars), shifted_orders(bars, [sig])
    assert (o.size.shape[0] == 1) is not varying
    ours = simulate(b, o, 10_000.0, 0.0026, 0.0005)
    ref = simulate_reference(b, o, 10_000.0, 0.0026, 0.0005)
    assert len(ours) > 100
    for field in ("col", "idx", "size", "price", "fees", "side"):
        assert np.array_equal(ours[field], ref[field]), field


def test_direct_core_call_equals_from_signals_with_shared_cash():
    import numpy as np

    from trading_brain.engine.backtest.fast import Bars, Orders, shifted_orders, simulate

    frames = [load_candles(f, rows=5_000) for f in FILES.values()]
    sigs = [ema_cross(b, 6, 30, size=0.6, stop_loss=0.01, take_profit=0.02) for b in frames]
    bl = [Bars.of(b) for b in frames]
    per = [shifted_orders(b, [s]) for b, s in zip(frames, sigs, strict=True)]
    o = Orders(*(np.hstack([getattr(p, a) for p in per]) for a in Orders.__slots__))
    ours = simulate(bl, o, 10_000.0, 0.0026, 0.0005, shared=True)
    ref = simulate_reference(bl, o, 10_000.0, 0.0026, 0.0005, shared=True)
    assert len(set(ours["col"])) == 3
    for field in ("col", "idx", "size", "price", "fees", "side"):
        assert np.array_equal(ours[field], ref[field]), field


def simulate_reference(b, o, cash: float, fee: float, slippage: float, shared: bool = False):
    """The same run through the public ``Portfolio.from_signals``."""
    import numpy as np
    import vectorbt as vbt

    bl = b if isinstance(b, list) else [b]

    def col(name):
        return np.column_stack([getattr(x, name) for x in bl])

    pf = vbt.Portfolio.from_signals(
        col("close"),
        o.entries,
        o.exits,
        open=col("open"),
        high=col("high"),
        low=col("low"),
        price=col("open"),
        cash_sharing=shared,
        group_by=True if shared else None,
        size=o.size,
        size_type="percent",
        fees=fee,
        slippage=slippage,
        init_cash=cash,
        sl_stop=o.sl,
        tp_stop=o.tp,
        stop_entry_price="fillprice",
        stop_exit_price="stoplimit",
        accumulate=False,
        upon_opposite_entry="ignore",
        engine="rust",
    )
    return pf.orders.values
