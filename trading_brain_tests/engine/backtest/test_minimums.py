"""Lot rounding and exchange minimums: counted by backtests, enforced in paper mode."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from trading_brain.domain.instruments import AssetPair
from trading_brain.engine import fills
from trading_brain.engine.backtest import Decision, run_exact, run_fast, step
from trading_brain.engine.portfolio import Portfolio
from trading_brain_tests.engine.backtest.helpers import assert_same_trades, frame, signals

FLAT = (100.0, 101.0, 99.0, 100.0)
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def pair(ordermin: str = "0.05", costmin: str = "0", lot: int = 3) -> AssetPair:
    return AssetPair(
        symbol="BTC/USD",
        base="BTC",
        quote="USD",
        venue_name="XXBTZUSD",
        lot_decimals=lot,
        pair_decimals=1,
        ordermin=Decimal(ordermin),
        costmin=Decimal(costmin),
        fee_taker=0.0026,
        fee_maker=0.0016,
    )


@pytest.mark.parametrize(
    ("size", "p", "expected"),
    [
        (0.1, pair(), 0),  # ~9.97 units: fine
        (0.0004, pair(), 1),  # ~0.0399 units < ordermin 0.05
        (0.0004, pair(ordermin="0.001", costmin="5"), 1),  # cost ~4 < costmin 5
        (0.0004, pair(ordermin="0.001", costmin="3"), 0),
    ],
)
def test_backtests_count_would_be_rejections_and_agree(size, p, expected):
    bars = frame([FLAT] * 6)
    sig = signals(bars, {0: "enter", 2: "exit", 3: "enter"}, size=size)
    fast = run_fast(bars, sig, cash=10_000.0, pair=p)
    exact = run_exact(bars, sig, cash=10_000.0, pair=p)
    assert_same_trades(fast.trades, exact.trades)
    assert fast.trades.height == 2  # a backtest still trades
    assert fast.rejections == exact.rejections == 2 * expected


def test_paper_mode_rounds_quantity_down_to_lot_precision():
    bars = frame([FLAT, FLAT, FLAT])
    res = run_exact(
        bars,
        signals(bars, {0: "enter"}),
        cash=1000.0,
        fee=0.01,
        slippage=0.001,
        pair=pair(),
        enforce_minimums=True,
    )
    (t,) = res.trades.iter_rows(named=True)
    raw = 1000.0 / 1.01 / 100.1  # 9.8912...
    assert t["quantity"] == 9.891 and t["quantity"] < raw
    spent = 9.891 * 100.1 * 1.01
    cash_left = 1000.0 - spent
    assert res.metrics.final_equity == pytest.approx(cash_left + 9.891 * 100.0, rel=1e-12)
    assert t["fees"] == pytest.approx(9.891 * 100.1 * 0.01, rel=1e-12)


def test_paper_mode_rejects_orders_below_minimums():
    bars = frame([FLAT, FLAT, FLAT])
    res = run_exact(
        bars, signals(bars, {0: "enter"}, size=0.0004), pair=pair(), enforce_minimums=True
    )
    assert res.trades.height == 0 and res.rejections == 1
    assert res.metrics.final_equity == 10_000.0


def test_step_as_the_paper_executor_uses_it_on_ticks():
    pf = Portfolio(cash=1000.0)
    p = pair(ordermin="0.001")
    pos = step(
        pf,
        "BTC/USD",
        T0,
        200.0,
        200.0,
        200.0,
        Decision("enter", 0.5, 0.1, 0.2),
        fee=0.0026,
        slippage=0.0,
        pair=p,
        enforce_minimums=True,
    )
    assert pos is not None and pos.quantity == float(p.round_qty(500.0 / 1.0026 / 200.0))
    assert (pos.sl_level, pos.tp_level) == (200.0 * (1 - 0.1), 200.0 * (1 + 0.2))
    # a tick above the stop and below the target does nothing; a second entry is ignored
    assert step(pf, "BTC/USD", T0, 190.0, 190.0, 190.0, Decision("enter", 0.5), 0.0026, 0.0) is None
    trade = step(pf, "BTC/USD", T0, 179.0, 179.0, 179.0, None, 0.0026, 0.0)
    assert trade.exit_reason == "stop_loss" and trade.exit_price == 179.0
    assert not pf.positions and pf.cash == pytest.approx(
        1000.0 - pos.quantity * 200.0 * 1.0026 + pos.quantity * 179.0 * (1 - 0.0026), rel=1e-12
    )


def test_fill_helpers():
    assert fills.stop_exit(100.0, 101.0, 99.0, float("nan"), float("nan")) is None
    assert fills.stop_exit(100.0, 101.0, 99.0, 99.0, 101.0) == (99.0, "stop_loss")
    assert fills.stop_exit(100.0, 101.0, 99.5, 99.0, 101.0) == (101.0, "take_profit")
    assert fills.entry_fill(0.0, 1.0, 100.0, 0.01) is None
    assert fills.entry_fill(100.0, 0.0, 100.0, 0.01) is None
    assert fills.would_reject(0.0499, 100.0, pair()) and not fills.would_reject(0.05, 100.0, pair())
    assert fills.add(1.0, -1.0 + 1e-13) == 0.0 and fills.add(1.0, -0.5) == 0.5
