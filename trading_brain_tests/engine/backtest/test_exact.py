"""The exact replay on its own: unaligned symbols, the simulated clock, the per-bar step."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from trading_brain.adapters.clock import SimClock
from trading_brain.engine.backtest import run_exact, run_exact_portfolio
from trading_brain_tests.engine.backtest.helpers import frame, signals

FLAT = (100.0, 101.0, 99.0, 100.0)


def test_symbols_with_different_bar_times_share_cash_in_order():
    a = frame([FLAT] * 6)
    b = frame([FLAT] * 6).filter(pl.int_range(pl.len()) != 2)  # B has no bar at 00:10
    sa = signals(a, {0: "enter"}, size=0.5)
    sb = signals(b, {1: "enter"}, size=0.5)  # decided at 00:05; B's next bar opens at 00:15
    res = run_exact_portfolio({"A": a, "B": b}, {"A": sa, "B": sb}, cash=1000.0, fee=0.0)
    t = {r["symbol"]: r for r in res.trades.iter_rows(named=True)}
    assert t["A"]["entry_time"] == a["ts"][1] and t["B"]["entry_time"] == a["ts"][3]
    assert t["A"]["quantity"] == pytest.approx(500 / 100.05)
    assert t["B"]["quantity"] == pytest.approx(250 / 100.05)
    assert res.equity.height == 6


@pytest.mark.parametrize(("order", "first"), [(None, "A"), (["B", "A"], "B")])
def test_same_bar_entries_follow_the_symbol_order(order, first):
    bars = frame([FLAT] * 4)
    sig = signals(bars, {0: "enter"}, size=0.5)
    res = run_exact_portfolio(
        {"A": bars, "B": bars},
        {"A": sig, "B": sig},
        cash=1000.0,
        fee=0.0,
        slippage=0.0,
        order=order,
    )
    qty = {r["symbol"]: r["quantity"] for r in res.trades.iter_rows(named=True)}
    second = "B" if first == "A" else "A"
    assert qty[first] == pytest.approx(5.0) and qty[second] == pytest.approx(2.5)


def test_replay_moves_a_simulated_clock_to_each_bar():
    bars = frame([FLAT] * 4)
    clock = SimClock(datetime(2023, 1, 1, tzinfo=UTC))
    run_exact(bars, signals(bars, {}), clock=clock)
    assert clock.now() == bars["ts"][-1]


def test_bars_with_duplicate_times_are_rejected():
    from trading_brain.errors import DataError

    bars = frame([FLAT] * 3)
    dup = bars.vstack(bars.tail(1))
    with pytest.raises(DataError, match="sorted"):
        run_exact(dup, signals(dup, {}))
