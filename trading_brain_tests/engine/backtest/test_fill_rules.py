"""Each fill rule on hand-built bars, checked on both engines (fast = vectorbt, exact = replay)."""

from __future__ import annotations

import math

import pytest

from trading_brain.engine.backtest import run_exact, run_fast
from trading_brain_tests.engine.backtest.helpers import assert_same_trades, frame, signals

FLAT = (100.0, 101.0, 99.0, 100.0)


def both(bars, sig, **kw):
    """Run both engines, assert they agree, return the exact engine's result."""
    fast = run_fast(bars, sig, **kw)
    exact = run_exact(bars, sig, **kw)
    assert_same_trades(fast.trades, exact.trades)
    assert math.isclose(fast.metrics.final_equity, exact.metrics.final_equity, rel_tol=1e-9)
    assert fast.metrics.fees_paid == pytest.approx(exact.metrics.fees_paid, rel=1e-9)
    assert fast.rejections == exact.rejections
    return exact


def trades(res):
    return res.trades.select(
        "entry_time", "exit_time", "entry_price", "exit_price", "exit_reason"
    ).rows()


def test_decision_fills_at_next_open_with_slippage_and_fees():
    bars = frame([FLAT, FLAT, FLAT, FLAT, (104.0, 105.0, 103.0, 104.0), FLAT])
    sig = signals(bars, {0: "enter", 3: "exit"}, size=0.5)
    res = both(bars, sig, cash=1000.0, fee=0.01, slippage=0.001)
    (t,) = res.trades.iter_rows(named=True)
    assert t["entry_time"] == bars["ts"][1] and t["exit_time"] == bars["ts"][4]
    assert t["entry_price"] == pytest.approx(100.1) and t["exit_price"] == pytest.approx(
        104 * 0.999
    )
    spend = 500.0  # size x cash, fee included
    qty = spend / 1.01 / 100.1
    assert t["quantity"] == pytest.approx(qty, rel=1e-12)
    entry_fee = spend - spend / 1.01
    exit_fee = qty * 104 * 0.999 * 0.01
    assert entry_fee == pytest.approx(0.01 * qty * 100.1, rel=1e-12)  # fee = rate * qty * price
    assert t["fees"] == pytest.approx(entry_fee + exit_fee, rel=1e-12)
    assert t["pnl"] == pytest.approx(qty * (104 * 0.999 - 100.1) - entry_fee - exit_fee, rel=1e-12)
    assert res.metrics.final_equity == pytest.approx(1000.0 + t["pnl"], rel=1e-12)
    assert res.metrics.fees_paid == pytest.approx(entry_fee + exit_fee, rel=1e-12)
    assert t["exit_reason"] == "signal"


def test_gap_through_stop_loss_exits_at_the_open_without_slippage():
    bars = frame([FLAT, FLAT, (85.0, 86.0, 84.0, 85.0), FLAT])
    res = both(bars, signals(bars, {0: "enter"}, stop_loss=0.1), slippage=0.01, fee=0.0)
    assert trades(res) == [(bars["ts"][1], bars["ts"][2], 101.0, 85.0, "stop_loss")]


def test_entry_bar_is_not_checked_for_stops():
    bars = frame([FLAT, (100.0, 101.0, 80.0, 100.0), FLAT, (100.0, 101.0, 90.0, 100.0)])
    res = both(bars, signals(bars, {0: "enter"}, stop_loss=0.05), slippage=0.0, fee=0.0)
    assert trades(res) == [(bars["ts"][1], bars["ts"][3], 100.0, 95.0, "stop_loss")]


def test_stop_loss_wins_when_both_levels_are_touched():
    bars = frame([FLAT, FLAT, (100.0, 120.0, 90.0, 100.0), FLAT])
    res = both(bars, signals(bars, {0: "enter"}, stop_loss=0.05, take_profit=0.05), slippage=0.0)
    assert trades(res)[0][3:] == (95.0, "stop_loss")


def test_take_profit_at_level_and_gap_above_it_at_the_open():
    bars = frame([FLAT, FLAT, (100.0, 112.0, 99.0, 100.0), FLAT, (130.0, 131.0, 129.0, 130.0)])
    sig = signals(bars, {0: "enter", 2: "enter"}, stop_loss=0.1, take_profit=0.1)
    res = both(bars, sig, slippage=0.0, fee=0.001)
    assert [t[3:] for t in trades(res)] == [
        (pytest.approx(110.0), "take_profit"),
        (130.0, "take_profit"),
    ]


def test_stop_comes_before_a_pending_signal_exit_on_the_same_bar():
    bars = frame([FLAT, FLAT, (100.0, 101.0, 90.0, 100.0), FLAT])
    res = both(bars, signals(bars, {0: "enter", 1: "exit"}, stop_loss=0.05), slippage=0.01)
    assert trades(res)[0][3:] == (pytest.approx(101.0 * 0.95), "stop_loss")


def test_no_reentry_on_the_bar_where_a_position_was_closed():
    bars = frame([FLAT, FLAT, (100.0, 101.0, 90.0, 100.0), FLAT, FLAT])
    # enter decisions on bars 0, 1 and 2: the one on bar 1 is pending when the stop fires on bar 2
    sig = signals(bars, {0: "enter", 1: "enter", 2: "enter"}, stop_loss=0.05)
    res = both(bars, sig, slippage=0.0)
    ts = bars["ts"]
    assert [(t[0], t[1]) for t in trades(res)] == [(ts[1], ts[2]), (ts[3], None)]


def test_level_uses_float_arithmetic_of_the_fill_price():
    # 101 * (1 - 0.05) == 95.94999999999999 < 95.95: touching 95.95 does not stop out
    bars = frame([FLAT, FLAT, (100.0, 101.0, 95.95, 100.0), FLAT])
    res = both(bars, signals(bars, {0: "enter"}, stop_loss=0.05), slippage=0.01, fee=0.0)
    assert res.closed_trades().height == 0 and res.trades.height == 1


def test_ignored_orders_entry_in_position_exit_when_flat_and_zero_size():
    bars = frame([FLAT] * 6)
    res = both(bars, signals(bars, {0: "exit", 1: "enter", 2: "enter", 3: "exit"}))
    assert [(t[0], t[1]) for t in trades(res)] == [(bars["ts"][2], bars["ts"][4])]
    zero = both(bars, signals(bars, {0: "enter"}, size=0.0))
    assert zero.trades.height == 0 and zero.metrics.final_equity == 10_000.0


def test_open_position_is_reported_with_null_exit():
    bars = frame([FLAT, FLAT, (100.0, 101.0, 99.0, 110.0)])
    res = both(bars, signals(bars, {0: "enter"}), fee=0.0, slippage=0.0)
    (t,) = res.trades.iter_rows(named=True)
    assert t["exit_time"] is None and t["exit_reason"] is None
    assert t["pnl"] == pytest.approx(t["quantity"] * 10.0)
    assert res.metrics.n_trades == 0 and res.metrics.final_equity == pytest.approx(11_000.0)
