"""Risk types: limit defaults and bounds, strict validation, derived portfolio figures."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from trading_brain.domain.risk import PortfolioView, Proposal, RiskLimits, RiskSettings
from trading_brain_tests.engine.test_risk_fixtures import D, pending, position


def test_defaults_are_the_issue_s():
    lim = RiskLimits()
    assert (lim.max_trade_pct, lim.max_position_pct, lim.max_open_positions,
            lim.max_exposure_pct, lim.daily_loss_halt_pct, lim.drawdown_halt_pct,
            lim.rollback_daily_drop_pct, lim.probation_half_pct, lim.probation_quarter_pct) == (
        0.10, 0.25, 5, 0.80, 0.10, 0.40, 0.15, 0.05, 0.10)
    assert RiskSettings is RiskLimits


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"max_trade_pct": 0}, "max_trade_pct"),  # zero would forbid every trade silently
    ({"max_trade_pct": 1.01}, "max_trade_pct"),  # above 100 % of equity
    ({"max_open_positions": 0}, "max_open_positions"),
    ({"daily_loss_halt_pct": 1.0}, "daily_loss_halt_pct"),  # a halt at -100 % never fires
    ({"drawdown_halt_pct": -0.1}, "drawdown_halt_pct"),
    ({"price_buffer_pct": 0.5}, "price_buffer_pct"),
    ({"max_leverage": 3}, "max_leverage"),  # unknown keys are rejected
    ({"probation_half_pct": 0.1, "probation_quarter_pct": 0.05}, "probation_quarter_pct"),
])
def test_limits_reject_insane_values(kwargs, field):
    with pytest.raises(ValidationError, match=field):
        RiskLimits(**kwargs)


def test_limits_are_frozen():
    with pytest.raises(ValidationError):
        RiskLimits().max_trade_pct = 0.9


@pytest.mark.parametrize("kwargs", [
    {"size": 1.5},  # more than all the cash
    {"size": -0.1},
    {"price": Decimal(0)},  # no reference price
    {"stop_loss": 1.5},  # a stop below zero
    {"take_profit": float("inf")},  # the strategy contract forbids infinities too
    {"size": float("nan")},
    {"quantity": Decimal(0)},
    {"intent_id": ""},
])
def test_proposal_validation(kwargs):
    base = {"intent_id": "a", "symbol": "AAA/USD", "action": "enter", "price": Decimal(1)}
    with pytest.raises(ValidationError):
        Proposal(**{**base, **kwargs})


def test_portfolio_figures():
    pf = PortfolioView(
        equity=D(1000), cash=D(300),
        positions={"A/USD": position("1", "500"), "B/USD": position("0", "0")},
        pending=(pending("e", "C/USD", reserved="100"), pending("x", "A/USD", action="exit")))
    assert pf.reserved_cash == D(100) and pf.available_cash == D(200)
    assert pf.exposure == D(600)  # held value + pending entry cash
    assert pf.open_symbols() == {"A/USD", "C/USD"}  # B is flat, the exit adds nothing
    assert pf.held("A/USD") == 1 and pf.held("Z/USD") == 0


def test_available_cash_never_negative_and_sums_stay_exact():
    over = PortfolioView(equity=D(10), cash=D(10), pending=(pending("e", "C/USD", reserved="11"),))
    assert over.available_cash == 0
    tiny = D("0.000000000000000000001")
    pf = PortfolioView(equity=D(10**9), cash=D(10**9),
                       pending=(pending("a", "A/USD", reserved="999999999.999999999999999999999"),))
    assert pf.available_cash == tiny  # the default 28-digit context would give 0
