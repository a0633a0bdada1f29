"""Property tests: whatever the inputs, approved orders respect every limit and exits always
pass."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from trading_brain.domain.risk import Halt, PortfolioView, RiskLimits, RiskState
from trading_brain.engine.risk import evaluate, evaluate_batch
from trading_brain.engine.risk_state import (
    restore,
    update_state_on_close,
    update_state_on_equity,
)
from trading_brain_tests.engine.test_risk_fixtures import NOW, enter, pair, pending, position, sell

SYMBOLS = ("AAA/USD", "BBB/USD", "CCC/USD", "DDD/USD", "EEE/USD", "FFF/USD", "GGG/USD")
HELD_ONLY = ("H1/USD", "H2/USD", "H3/USD")
FAST = settings(max_examples=30, deadline=None)


def money(lo: int = 0, hi: int = 10**7):
    return st.integers(lo, hi).map(lambda c: Decimal(c) / 100)


fractions = st.floats(0.02, 1.0)
limits_st = st.builds(
    RiskLimits, max_trade_pct=fractions, max_position_pct=fractions,
    max_open_positions=st.integers(1, 12), max_exposure_pct=fractions,
    price_buffer_pct=st.floats(0, 0.05))


@st.composite
def pairs_st(draw):
    lot, dec = draw(st.integers(0, 8)), draw(st.integers(0, 6))
    return {s: pair(s, lot_decimals=lot, pair_decimals=dec,
                    ordermin=Decimal(draw(st.integers(0, 10))).scaleb(-lot),
                    costmin=draw(money(0, 5000)), fee_taker=draw(st.floats(0, 0.01)))
            for s in SYMBOLS}


@st.composite
def portfolios(draw):
    held = draw(st.lists(st.sampled_from(SYMBOLS[:2] + HELD_ONLY), unique=True, max_size=4))
    positions = {s: position(str(draw(money(1, 10**6))), str(draw(money(0, 10**6)))) for s in held}
    cash = draw(money(0, 10**8))
    reserved = draw(st.lists(money(0, 10**5), max_size=2))
    reserved = [r for r in reserved if r <= cash][:1]
    pend = [pending(f"old-{i}", SYMBOLS[-1 - i], reserved=str(r)) for i, r in enumerate(reserved)]
    value = sum((p.value for p in positions.values()), Decimal(0))
    equity = cash + value + draw(money(0, 10**5))
    return PortfolioView(equity=equity, cash=cash, positions=positions, pending=tuple(pend))


def _proposals(rows):
    # mostly unique intent ids; every fifth reuses the previous one (duplicate intent)
    return [enter(s, size=size, price=str(Decimal(cents) / 100), intent=f"i{i - (i % 5 == 4)}")
            for i, (s, size, cents) in enumerate(rows)]


proposals_st = st.lists(st.tuples(st.sampled_from(SYMBOLS), st.floats(0, 1),
                                  st.integers(1, 10**6)), max_size=7).map(_proposals)


@FAST
@given(portfolios(), proposals_st, limits_st, pairs_st())
def test_approved_entries_never_exceed_any_limit(pf, props, limits, pairs):
    state, _ = restore(RiskState(), pf, NOW, limits)
    res = evaluate_batch(props, pf, state, limits, pairs, NOW)
    after = res.portfolio
    assert after.reserved_cash <= pf.cash  # never over-commit
    approved = [d for d in res.decisions if d.approved]
    for d in approved:
        p = pairs[d.symbol]
        assert d.reserved_cash <= Decimal(repr(limits.max_trade_pct)) * pf.equity
        assert d.reserved_cash <= Decimal(repr(limits.max_position_pct)) * pf.equity
        assert d.quantity == p.round_qty(d.quantity) and p.meets_minimums(d.quantity,
                                                                          d.limit_price)
        assert d.reserved_cash >= d.quantity * d.limit_price  # the fee is reserved too
        assert d.symbol not in pf.positions or pf.positions[d.symbol].qty == 0
    if approved:
        assert after.exposure <= Decimal(repr(limits.max_exposure_pct)) * pf.equity
        assert len(after.open_symbols()) <= limits.max_open_positions
    assert len({d.symbol for d in approved}) == len(approved)  # one entry per symbol


@FAST
@given(portfolios(), proposals_st, limits_st, pairs_st(),
       st.sampled_from(["kill", "manual", "daily_loss", "drawdown"]))
def test_halted_shell_approves_no_entry(pf, props, limits, pairs, kind):
    state, _ = restore(RiskState(), pf, NOW, limits)
    h = Halt(reason="test", since=NOW)
    state = state.model_copy(update={"kill_switch": h} if kind == "kill" else {"halts": {kind: h}})
    res = evaluate_batch(props, pf, state, limits, pairs, NOW)
    assert not any(d.approved for d in res.decisions)
    assert res.portfolio == pf


@FAST
@given(st.integers(1, 10**9), st.integers(0, 8), st.integers(1, 10**7), st.booleans(),
       st.sampled_from(["exit", "protect"]), limits_st)
def test_exits_always_pass(units, lot, cents, halted, action, limits):
    qty = Decimal(units).scaleb(-lot)
    p = pair("AAA/USD", lot_decimals=lot, ordermin=Decimal(1).scaleb(-lot), costmin=Decimal(0))
    pf = PortfolioView(equity=Decimal(1), cash=Decimal(0),
                       positions={"AAA/USD": position(str(qty), "1")})
    state = RiskState(kill_switch=Halt(reason="k", since=NOW)) if halted else RiskState()
    d = evaluate(sell(action=action, price=str(Decimal(cents) / 100)), pf, state, limits, p, NOW)
    assert (d.status, d.quantity, d.reserved_cash) == ("approved", qty, 0)


events_st = st.lists(st.tuples(st.sampled_from(["equity", "close"]), st.integers(0, 20000),
                               st.integers(1, 600), st.sampled_from(["signal", "stop_loss"])),
                     max_size=12)


@FAST
@given(events_st)
def test_state_survives_json_round_trip_after_any_history(events):
    limits = RiskLimits()
    state, _ = restore(RiskState(), PortfolioView(equity=Decimal(10000), cash=Decimal(10000)),
                       NOW, limits)
    now = NOW
    for kind, amount, minutes, reason in events:
        now += timedelta(minutes=minutes)
        if kind == "equity":
            state, _ = update_state_on_equity(state, Decimal(amount), now, limits)
        else:
            state, _ = update_state_on_close(state, "AAA/USD", Decimal(amount - 10000) / 100,
                                             Decimal(100), reason, now, limits)
        assert RiskState.model_validate_json(state.model_dump_json()) == state
        assert state.peak_equity >= state.day_start_equity or state.peak_equity is None


@FAST
@given(portfolios(), proposals_st, limits_st, pairs_st(), st.randoms(use_true_random=False))
def test_batch_result_does_not_depend_on_input_order(pf, props, limits, pairs, rnd):
    state, _ = restore(RiskState(), pf, NOW, limits)
    shuffled = list(props)
    rnd.shuffle(shuffled)
    a = evaluate_batch(props, pf, state, limits, pairs, NOW)
    b = evaluate_batch(shuffled, pf, state, limits, pairs, NOW)
    assert (a.decisions, a.portfolio) == (b.decisions, b.portfolio)
