"""Entries through the risk shell: every gate and every sizing cap, with boundaries and rounding."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from trading_brain.domain.risk import ClosedTrade, Halt, RiskLimits, SymbolRisk
from trading_brain.engine.risk import evaluate, price_down, price_up
from trading_brain.errors import DataError
from trading_brain_tests.conftest import SHARED_DATA, require_shared
from trading_brain_tests.engine.test_risk_fixtures import (
    EXACT,
    NOW,
    D,
    enter,
    pair,
    pending,
    portfolio,
    position,
    ready_state,
    unit_pair,
)

# unit_pair: price 1, fee 0, whole lots; EXACT: no price buffer -> quantity == reserved cash.
# Equity 10 000: max trade 1 000, max position 2 500, max exposure 8 000, 5 positions.
HELD4 = {s: position("1", "100") for s in ("B1/USD", "B2/USD", "B3/USD", "B4/USD")}
HELD5 = {**HELD4, "B5/USD": position("1", "100")}

SIZING = [
    # (id, portfolio, proposal, limits, status, reason, quantity)
    ("request below every cap is approved as asked",
     portfolio(), enter(size=0.05), EXACT, "approved", "ok", "500"),
    ("request exactly at max trade (10 %) passes unchanged",
     portfolio(), enter(size=0.1), EXACT, "approved", "ok", "1000"),
    ("full-cash request is cut to max trade",
     portfolio(), enter(size=1.0), EXACT, "resized", "max_trade_size", "1000"),
    ("free cash binds before max trade",
     portfolio(cash="600", positions={"B1/USD": position("1", "7000")}), enter(), EXACT,
     "approved", "ok", "600"),
    ("pending reservations reduce free cash",
     portfolio(cash="1000", pend=[pending("x", "B1/USD", reserved="400")]), enter(), EXACT,
     "approved", "ok", "600"),
    ("exposure headroom binds: 7 500 held of 8 000",
     portfolio(cash="2500", positions={"B1/USD": position("1", "7500")}), enter(), EXACT,
     "resized", "max_exposure", "500"),
    ("pending entries count toward exposure",
     portfolio(cash="2500", positions={"B1/USD": position("1", "7000")},
               pend=[pending("x", "B2/USD", reserved="700")]), enter(), EXACT,
     "resized", "max_exposure", "300"),
    ("exposure exactly at the limit leaves no room",
     portfolio(cash="2000", positions={"B1/USD": position("1", "8000")}), enter(), EXACT,
     "rejected", "max_exposure", "0"),
    ("max position binds when max trade is loose",
     portfolio(), enter(), RiskLimits(price_buffer_pct=0, max_trade_pct=0.5), "resized",
     "max_position_size", "2500"),
    ("no free cash at all",
     portfolio(cash="0", positions={"B1/USD": position("1", "100")}), enter(), EXACT,
     "rejected", "insufficient_cash", "0"),
    ("cash fully reserved by a pending entry",
     portfolio(cash="500", pend=[pending("x", "B1/USD", reserved="500")]), enter(), EXACT,
     "rejected", "insufficient_cash", "0"),
    ("4 open positions: the 5th is allowed (boundary)",
     portfolio(cash="9600", positions=HELD4), enter(), EXACT, "resized", "max_trade_size", "1000"),
    ("5 open positions: a 6th is refused",
     portfolio(cash="9500", positions=HELD5), enter(), EXACT, "rejected", "max_positions", "0"),
    ("4 held + 1 pending entry count as 5",
     portfolio(cash="9600", positions=HELD4, pend=[pending("x", "B5/USD", reserved="10")]),
     enter(), EXACT, "rejected", "max_positions", "0"),
    ("a zero-quantity position does not count as held",
     portfolio(cash="9500", positions={**HELD4, "AAA/USD": position("0", "0")}), enter(), EXACT,
     "resized", "max_trade_size", "1000"),
    ("already holding the symbol",
     portfolio(positions={"AAA/USD": position("5", "5")}), enter(), EXACT,
     "rejected", "duplicate_position", "0"),
    ("an entry for the symbol is already pending",
     portfolio(pend=[pending("x", "AAA/USD", reserved="5")]), enter(), EXACT,
     "rejected", "duplicate_pending", "0"),
    ("a pending exit on another symbol does not block",
     portfolio(pend=[pending("x", "B1/USD", action="exit")]), enter(size=0.01), EXACT,
     "approved", "ok", "100"),
    ("the same intent id is already pending",
     portfolio(pend=[pending("enter-AAA/USD", "B1/USD", reserved="5")]), enter(), EXACT,
     "rejected", "duplicate_intent", "0"),
    ("zero size is not an order",
     portfolio(), enter(size=0.0), EXACT, "rejected", "invalid_proposal", "0"),
    ("zero equity cannot be sized against",
     portfolio(equity="0", cash="0"), enter(), EXACT, "rejected", "invalid_proposal", "0"),
    ("budget below one whole lot is below ordermin",
     portfolio(), enter(size=0.1, price="1001"), EXACT, "rejected", "below_ordermin", "0"),
    ("budget of exactly one lot passes",
     portfolio(), enter(size=0.1, price="1000"), EXACT, "approved", "ok", "1"),
]


@pytest.mark.parametrize(("case", "pf", "proposal", "limits", "status", "reason", "qty"),
                         SIZING, ids=[c[0] for c in SIZING])
def test_entry_sizing_table(case, pf, proposal, limits, status, reason, qty):
    d = evaluate(proposal, pf, ready_state(limits=limits), limits, unit_pair(), NOW)
    assert (d.status, d.reason, d.quantity) == (status, reason, D(qty)), d.message
    if d.approved:
        assert d.reserved_cash == d.quantity * d.limit_price  # fee 0, buffer 0
        assert d.reserved_cash <= pf.available_cash
    else:
        assert d.reserved_cash == 0 and d.quantity == 0


def _yesterday_state():
    return ready_state(now=NOW - timedelta(days=1))


def _cooldown(until):
    return {"AAA/USD": SymbolRisk(cooldown_until=until)}


GATES = [
    # (id, state, pair kwargs, expected reason or "ok")
    ("kill switch blocks entries", ready_state(kill_switch=Halt(reason="k", since=NOW)), {},
     "kill_switch"),
    ("manual halt", ready_state(halts={"manual": Halt(reason="h", since=NOW)}), {}, "halt_manual"),
    ("daily-loss halt", ready_state(halts={"daily_loss": Halt(reason="d", since=NOW)}), {},
     "halt_daily_loss"),
    ("drawdown halt", ready_state(halts={"drawdown": Halt(reason="d", since=NOW)}), {},
     "halt_drawdown"),
    ("kill switch wins over halts", ready_state(kill_switch=Halt(reason="k", since=NOW),
                                                halts={"manual": Halt(reason="h", since=NOW)}),
     {}, "kill_switch"),
    ("state last updated yesterday is stale", _yesterday_state(), {}, "state_stale"),
    ("never-initialised state is stale", ready_state(peak_equity=None), {}, "state_stale"),
    ("pair in cancel_only", ready_state(), {"status": "cancel_only"}, "pair_unavailable"),
    ("pair in maintenance", ready_state(), {"status": "maintenance"}, "pair_unavailable"),
    ("limit_only pair accepts our limit orders", ready_state(), {"status": "limit_only"}, "ok"),
    ("cooldown still running", ready_state(symbols=_cooldown(NOW + timedelta(seconds=1))), {},
     "cooldown"),
    ("cooldown ending exactly now has ended", ready_state(symbols=_cooldown(NOW)), {}, "ok"),
    ("cooldown on another symbol does not matter",
     ready_state(symbols={"B1/USD": SymbolRisk(cooldown_until=NOW + timedelta(hours=1))}), {},
     "ok"),
]


@pytest.mark.parametrize(("case", "state", "pair_kw", "reason"), GATES, ids=[g[0] for g in GATES])
def test_entry_gates(case, state, pair_kw, reason):
    d = evaluate(enter(size=0.05), portfolio(), state, EXACT, unit_pair(**pair_kw), NOW)
    assert d.reason == reason, d.message
    assert d.approved == (reason == "ok")


def _probation(*returns: float, hours_ago: float = 1.0):
    ts = NOW - timedelta(hours=hours_ago)
    closes = tuple(ClosedTrade(ts=ts, pnl=D(repr(r * 100)), cost=D(100)) for r in returns)
    return {"AAA/USD": SymbolRisk(closes=closes)}


PROBATION = [
    # (id, recent returns on the symbol, expected reason, expected quantity for a 500 request)
    ("no losses: full size", (), "ok", "500"),
    ("-4.99 %: still full size", (-0.0499,), "ok", "500"),
    ("exactly -5 %: half size", (-0.05,), "probation", "250"),
    ("two -3 % trades add up to half size", (-0.03, -0.03), "probation", "250"),
    ("exactly -10 %: quarter size", (-0.10,), "probation", "125"),
    ("-12 % then +5 %: back to half", (-0.12, 0.05), "probation", "250"),
    ("-6 % then +2 %: recovered to full", (-0.06, 0.02), "ok", "500"),
]


@pytest.mark.parametrize(("case", "returns", "reason", "qty"), PROBATION,
                         ids=[p[0] for p in PROBATION])
def test_probation_scales_entries(case, returns, reason, qty):
    state = ready_state(symbols=_probation(*returns))
    d = evaluate(enter(size=0.05), portfolio(), state, EXACT, unit_pair(), NOW)
    assert (d.reason, d.quantity) == (reason, D(qty)), d.message


def test_probation_ends_when_losses_leave_the_window():
    state = ready_state(symbols=_probation(-0.2, hours_ago=24))  # window is (now-24h, now]
    d = evaluate(enter(size=0.05), portfolio(), state, EXACT, unit_pair(), NOW)
    assert (d.reason, d.quantity) == ("ok", D(500))


def test_probation_applies_after_a_cap_and_keeps_the_cap_reason():
    state = ready_state(symbols=_probation(-0.10))
    d = evaluate(enter(size=1.0), portfolio(), state, EXACT, unit_pair(), NOW)
    assert (d.status, d.reason, d.quantity) == ("resized", "max_trade_size", D(250))
    assert "probation x0.25" in d.message


def test_btc_sizing_rounds_down_to_lot_and_reserves_fee_and_buffer():
    # limit = 50 000 x 1.01 = 50 500.0; unit = 50 500 x 1.004 = 50 702; budget 1 000 (max trade)
    d = evaluate(enter("BTC/USD", price="50000"), portfolio(), ready_state(), RiskLimits(),
                 pair(), NOW)
    assert d.limit_price == D("50500.0")
    assert d.quantity == D("0.01972308")  # floor(1000 / 50702, 8 decimals)
    assert d.reserved_cash == d.quantity * D("50702")
    assert d.reserved_cash <= D(1000) < (d.quantity + D("1e-8")) * D("50702")
    assert d.quantity.as_tuple().exponent >= -8


@pytest.mark.parametrize(("price", "decimals", "tick", "up", "down"), [
    ("100.01", 1, None, "100.1", "100.0"),  # up and down to 0.1
    ("100.10", 1, None, "100.1", "100.1"),  # already on the grid: unchanged both ways
    ("100.26", 2, "0.25", "100.50", "100.25"),  # tick coarser than decimals wins
    ("0.123456789", 6, None, "0.123457", "0.123456"),  # small prices keep their digits
])
def test_price_rounding(price, decimals, tick, up, down):
    p = pair(pair_decimals=decimals, tick_size=D(tick) if tick else None)
    assert price_up(p, D(price)) == D(up)
    assert price_down(p, D(price)) == D(down)


@pytest.mark.parametrize(("costmin", "ordermin", "reason"), [
    ("600", "0.0001", "below_costmin"),  # 0.0098 BTC x 50 500 = 494.9 < 600
    ("494.9", "0.0001", "ok"),  # exactly at costmin passes
    ("0.5", "0.01", "below_ordermin"),  # 0.0098 < 0.01
    ("0.5", "0.0098", "ok"),  # exactly at ordermin passes
])
def test_exchange_minimums_at_the_limit_price(costmin, ordermin, reason):
    p = pair(costmin=D(costmin), ordermin=D(ordermin), fee_taker=0.0)
    d = evaluate(enter("BTC/USD", size=0.05, price="50000"), portfolio(), ready_state(),
                 RiskLimits(), p, NOW)
    assert d.reason == reason, d.message


def test_real_kraken_pair_precision():
    path = SHARED_DATA / "kraken_api" / "rest" / "http_asset_pairs.json"
    require_shared(path, "real Kraken AssetPairs payload")
    from trading_brain.adapters.kraken.parse import asset_pair

    key, row = next(iter(json.loads(path.read_text())["result"].items()))
    real = asset_pair(key, row)
    d = evaluate(enter(real.symbol, price="63123.45"), portfolio(), ready_state(), RiskLimits(),
                 real, NOW)
    assert d.approved and d.quantity >= real.ordermin and d.quantity * d.limit_price >= real.costmin
    assert d.quantity == real.round_qty(d.quantity)
    assert d.limit_price % (real.tick_size or Decimal("0.1")) == 0
    assert d.limit_price >= D("63123.45") * D("1.01")
    assert d.reserved_cash <= D(1000)


def test_mismatched_pair_and_naive_time_are_programming_errors():
    with pytest.raises(DataError, match="evaluated with pair"):
        evaluate(enter("AAA/USD"), portfolio(), ready_state(), EXACT, pair("BTC/USD"), NOW)
    with pytest.raises(DataError, match="UTC-aware"):
        evaluate(enter(), portfolio(), ready_state(), EXACT, unit_pair(), NOW.replace(tzinfo=None))


def test_decision_carries_strategy_context():
    p = enter(size=0.05, stop_loss=0.02, take_profit=0.04, strategy_version="trend@v3",
              slot="shadow-1")
    d = evaluate(p, portfolio(), ready_state(), EXACT, unit_pair(), NOW)
    assert (d.stop_loss, d.take_profit, d.strategy_version, d.slot) == (
        0.02, 0.04, "trend@v3", "shadow-1")
