"""Exits and protective orders: they always pass, capped at what is held, even when halted."""

from __future__ import annotations

from datetime import timedelta

import pytest

from trading_brain.domain.risk import Halt, RiskState, SymbolRisk
from trading_brain.engine.risk import evaluate
from trading_brain_tests.engine.test_risk_fixtures import (
    EXACT,
    LIMITS,
    NOW,
    D,
    pair,
    pending,
    portfolio,
    position,
    ready_state,
    sell,
    unit_pair,
)

HELD = {"AAA/USD": position("10", "10")}
H = Halt(reason="x", since=NOW)

STATES = [
    # every state that blocks entries must let exits through
    ("normal", ready_state()),
    ("kill switch", ready_state(kill_switch=H)),
    ("all halts", ready_state(halts={"manual": H, "daily_loss": H, "drawdown": H})),
    ("stale state from yesterday", ready_state(now=NOW - timedelta(days=1))),
    ("never initialised", RiskState()),
    ("cooldown", ready_state(symbols={"AAA/USD": SymbolRisk(cooldown_until=NOW + timedelta(1))})),
]


@pytest.mark.parametrize("action", ["exit", "protect"])
@pytest.mark.parametrize(("case", "state"), STATES, ids=[s[0] for s in STATES])
def test_sells_pass_whatever_the_state(case, state, action):
    d = evaluate(sell(action=action), portfolio(positions=HELD), state, EXACT, unit_pair(), NOW)
    assert (d.status, d.reason, d.quantity) == ("approved", "ok", D(10)), d.message
    assert d.reserved_cash == 0


def test_sells_pass_on_unavailable_pair_and_with_max_positions_full():
    full = {f"B{i}/USD": position("1", "1") for i in range(6)} | HELD
    d = evaluate(sell(), portfolio(positions=full), ready_state(), EXACT,
                 unit_pair(status="cancel_only"), NOW)
    assert d.status == "approved"


SELLS = [
    # (id, action, requested qty, pending orders, status, reason, quantity)
    ("exit everything held", "exit", None, (), "approved", "ok", "10"),
    ("partial exit", "exit", "4", (), "approved", "ok", "4"),
    ("exactly the held quantity", "exit", "10", (), "approved", "ok", "10"),
    ("more than held is capped", "exit", "15", (), "resized", "exit_capped", "10"),
    ("a pending exit already sells 6: 4 left", "exit", None,
     (pending("p", "AAA/USD", "exit", qty="6"),), "approved", "ok", "4"),
    ("a pending exit covers everything", "exit", None,
     (pending("p", "AAA/USD", "exit", qty="10"),), "rejected", "no_position", "0"),
    ("protective orders ignore pending exits (they replace each other)", "protect", None,
     (pending("p", "AAA/USD", "exit", qty="10"),), "approved", "ok", "10"),
    ("protective order above held is capped", "protect", "11", (), "resized", "exit_capped", "10"),
    ("fraction below one lot rounds to nothing", "exit", "0.5", (), "rejected", "no_position",
     "0"),
    ("a pending exit on another symbol does not matter", "exit", None,
     (pending("p", "B1/USD", "exit", qty="10"),), "approved", "ok", "10"),
]


@pytest.mark.parametrize(("case", "action", "qty", "pend", "status", "reason", "quantity"),
                         SELLS, ids=[s[0] for s in SELLS])
def test_sell_quantity_table(case, action, qty, pend, status, reason, quantity):
    pf = portfolio(positions=HELD, pend=pend)
    d = evaluate(sell(action=action, qty=qty), pf, ready_state(), EXACT, unit_pair(), NOW)
    assert (d.status, d.reason, d.quantity) == (status, reason, D(quantity)), d.message


def test_exit_without_position_is_rejected_not_raised():
    d = evaluate(sell(), portfolio(), ready_state(kill_switch=H), EXACT, unit_pair(), NOW)
    assert (d.status, d.reason) == ("rejected", "no_position")


def test_exit_rounds_down_to_lot_and_limit_down_with_buffer():
    held = {"BTC/USD": position("0.123456789", "6000")}
    d = evaluate(sell("BTC/USD", price="50000.09"), portfolio(positions=held), ready_state(),
                 LIMITS, pair(), NOW)
    assert d.quantity == D("0.12345678")  # lot 8: the 9th decimal stays as dust
    assert d.limit_price == D("49500.0")  # 50 000.09 x 0.99 = 49 500.089 -> down to 0.1


@pytest.mark.parametrize(("held", "ordermin", "costmin", "reason"), [
    ("0.00009", "0.0001", "0.5", "below_ordermin"),  # dust below ordermin: venue cannot take it
    ("0.0001", "0.0001", "0.5", "ok"),  # exactly ordermin passes
    ("0.0001", "0.0001", "5", "below_costmin"),  # 0.0001 x 49 500 = 4.95 < 5
    ("0.0001", "0.0001", "4.95", "ok"),  # exactly costmin passes
])
def test_exit_dust_against_minimums(held, ordermin, costmin, reason):
    p = pair(ordermin=D(ordermin), costmin=D(costmin))
    pf = portfolio(positions={"BTC/USD": position(held, "5")})
    d = evaluate(sell("BTC/USD", price="50000"), pf, ready_state(), LIMITS,
                 p, NOW)
    assert d.reason == reason, d.message
