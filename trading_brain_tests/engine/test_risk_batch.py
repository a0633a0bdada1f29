"""Batches and cash reservation: two intents can never spend the same money."""

from __future__ import annotations

import itertools

import pytest

from trading_brain.domain.risk import Decision, PortfolioView, RiskLimits
from trading_brain.engine.risk import (
    batch_order,
    evaluate,
    evaluate_batch,
    exit_all,
    release,
    reserve,
)
from trading_brain.engine.risk_state import set_kill_switch
from trading_brain.errors import DataError, OrderRejected
from trading_brain_tests.engine.test_risk_fixtures import (
    EXACT,
    LIMITS,
    NOW,
    D,
    enter,
    pair,
    pending,
    portfolio,
    position,
    ready_state,
    sell,
    unit_pair,
)

PAIRS = {s: unit_pair(s) for s in ("AAA/USD", "BBB/USD", "CCC/USD", "DDD/USD", "EEE/USD")}


def by_intent(result):
    return {d.intent_id: d for d in result.decisions}


def test_reservation_race_cash_for_one():
    # 1 000 free cash, each entry wants all of it (max trade 1 000): only the first gets it
    pf = portfolio(cash="1000", positions={"EEE/USD": position("1", "5000")})
    res = evaluate_batch([enter("BBB/USD", intent="b"), enter("AAA/USD", intent="a")], pf,
                         ready_state(), EXACT, PAIRS, NOW)
    got = by_intent(res)
    assert (got["a"].status, got["a"].quantity) == ("approved", D(1000))  # AAA sorts first
    assert (got["b"].status, got["b"].reason) == ("rejected", "insufficient_cash")
    assert res.portfolio.reserved_cash == D(1000) == pf.cash
    assert [o.intent_id for o in res.portfolio.pending] == ["a"]


def test_without_reservation_both_would_have_been_approved():
    # the same two proposals evaluated independently each see the full 1 000: the race is real
    pf = portfolio(cash="1000", positions={"EEE/USD": position("1", "5000")})
    for symbol in ("AAA/USD", "BBB/USD"):
        assert evaluate(enter(symbol), pf, ready_state(), EXACT, PAIRS[symbol], NOW).approved


def test_partial_sizes_share_the_remaining_cash():
    pf = portfolio(cash="1000", positions={"EEE/USD": position("1", "5000")})
    res = evaluate_batch([enter(s, size=0.5, intent=s) for s in ("AAA/USD", "BBB/USD",
                                                                 "CCC/USD")],
                         pf, ready_state(), EXACT, PAIRS, NOW)
    assert [d.quantity for d in res.decisions] == [D(500), D(250), D(125)]  # half of what is left
    assert res.portfolio.reserved_cash == D(875) <= pf.cash


def test_batch_counts_positions_and_exposure_as_it_reserves():
    pf = portfolio(positions={"X1/USD": position("1", "1000"), "X2/USD": position("1", "1000"),
                              "X3/USD": position("1", "5500")}, cash="2500")
    res = evaluate_batch([enter(s, size=0.1, intent=s) for s in ("AAA/USD", "BBB/USD",
                                                                 "CCC/USD")],
                         pf, ready_state(), EXACT, PAIRS, NOW)
    got = [(d.status, d.reason, d.quantity) for d in res.decisions]
    assert got == [
        ("approved", "ok", D(250)),  # 10 % of 2 500 free; exposure 7 750 after
        ("approved", "ok", D(225)),  # 10 % of the 2 250 left; exposure 7 975, 5 positions
        ("rejected", "max_positions", D(0)),  # 3 held + 2 pending = 5
    ]


def test_order_is_deterministic_whatever_the_input_order():
    props = [enter("CCC/USD", intent="c"), sell("EEE/USD", intent="x"),
             enter("AAA/USD", intent="a"), sell("EEE/USD", action="protect", intent="p"),
             enter("BBB/USD", intent="b", slot="shadow-1")]
    pf = portfolio(cash="1500", positions={"EEE/USD": position("3", "3")})
    results = [evaluate_batch(list(perm), pf, ready_state(), EXACT, PAIRS, NOW)
               for perm in itertools.permutations(props)]
    first = results[0]
    assert [d.intent_id for d in first.decisions] == ["x", "p", "a", "c", "b"]
    assert all(r.decisions == first.decisions and r.portfolio == first.portfolio for r in results)
    assert [p.intent_id for p in batch_order(props)] == ["x", "p", "a", "c", "b"]


def test_duplicate_intents_and_unknown_pairs():
    props = [enter("AAA/USD", size=0.01, intent="same"), enter("BBB/USD", size=0.01, intent="same"),
             enter("ZZZ/USD", intent="z")]
    res = evaluate_batch(props, portfolio(), ready_state(), EXACT, PAIRS, NOW)
    assert [(d.intent_id, d.reason) for d in res.decisions] == [
        ("same", "ok"), ("same", "duplicate_intent"), ("z", "unknown_pair")]
    assert len(res.portfolio.pending) == 1


def test_every_decision_is_recorded_with_its_reason():
    res = evaluate_batch([enter("AAA/USD", intent="a"), enter("AAA/USD", intent="b")],
                         portfolio(), ready_state(), EXACT, PAIRS, NOW)
    assert [(e.kind, e.symbol, e.reason, e.details["intent_id"], e.details["status"])
            for e in res.events] == [("decision", "AAA/USD", "max_trade_size", "a", "resized"),
                                     ("decision", "AAA/USD", "duplicate_pending", "b",
                                      "rejected")]
    assert D(res.events[0].details["reserved_cash"]) == D(1000)


def test_exits_in_a_halted_batch_pass_and_entries_do_not():
    state, _ = set_kill_switch(ready_state(), True, "stop", NOW)
    pf = portfolio(positions={"EEE/USD": position("3", "3")})
    res = evaluate_batch([enter("AAA/USD", intent="a"), sell("EEE/USD", intent="x")], pf, state,
                         EXACT, PAIRS, NOW)
    assert [(d.intent_id, d.status) for d in res.decisions] == [("x", "approved"),
                                                                ("a", "rejected")]
    assert res.portfolio.pending[0].qty == D(3) and res.portfolio.reserved_cash == 0


def test_reserve_and_release():
    pf = portfolio(cash="1000")
    d = evaluate(enter("BTC/USD", size=0.5, price="100"), pf, ready_state(), LIMITS,
                 pair(), NOW)
    after = reserve(pf, d)
    assert after.reserved_cash == d.reserved_cash
    assert after.available_cash == D(1000) - d.reserved_cash
    assert pf.pending == ()  # the input view is not mutated
    assert release(after, d.intent_id) == pf
    assert release(pf, "unknown") == pf  # idempotent


def _decision(intent="a", reserved="10", status="approved") -> Decision:
    return Decision(intent_id=intent, symbol="AAA/USD", action="enter", status=status,
                    reason="ok" if status == "approved" else "max_positions", message="",
                    quantity=D(1), limit_price=D(10), reserved_cash=D(reserved))


@pytest.mark.parametrize(("pf", "decision", "reason"), [
    (portfolio(cash="9"), _decision(reserved="10"), "insufficient_cash"),  # over-commit
    (portfolio(cash="100", pend=[pending("a", "BBB/USD", reserved="1")]), _decision(),
     "duplicate_intent"),  # reserved twice
    (portfolio(), _decision(status="rejected"), "max_positions"),  # a rejection holds nothing
])
def test_reserve_refuses(pf: PortfolioView, decision, reason):
    with pytest.raises(OrderRejected) as e:
        reserve(pf, decision)
    assert e.value.reason == reason


def test_reserve_exactly_all_cash_is_allowed():
    assert reserve(portfolio(cash="10"), _decision(reserved="10")).available_cash == 0


def test_real_pair_batch_never_over_commits():
    pairs = {s: pair(s) for s in ("BTC/USD", "ETH/USD", "SOL/USD")}
    pf = portfolio(cash="1500", positions={"X/USD": position("1", "3000")})
    props = [enter(s, price=p, intent=s) for s, p in
             (("BTC/USD", "64321.7"), ("ETH/USD", "3123.4"), ("SOL/USD", "145.6"))]
    res = evaluate_batch(props, pf, ready_state(), RiskLimits(), pairs, NOW)
    # BTC: capped at max trade 1 000; ETH: all of the ~500 left; SOL: only cents remain
    assert [(d.status, d.reason) for d in res.decisions] == [
        ("resized", "max_trade_size"), ("approved", "ok"), ("rejected", "below_ordermin")]
    assert res.portfolio.reserved_cash <= pf.cash
    left = pf.cash - res.portfolio.reserved_cash
    assert 0 <= left < D("0.0001") * D("145.6") * D("1.01") * D("1.004")  # less than one ordermin


def test_kill_switch_flattens_everything_through_exit_all():
    state, _ = set_kill_switch(ready_state(), True, "flatten now", NOW)
    pf = portfolio(positions={"CCC/USD": position("7", "7"), "AAA/USD": position("2", "2"),
                              "BBB/USD": position("0", "0")})
    props = exit_all(pf, {"AAA/USD": D(1), "BBB/USD": D(1), "CCC/USD": D(1)}, "kill-1")
    assert [p.intent_id for p in props] == ["kill-1:AAA/USD", "kill-1:CCC/USD"]  # flat B skipped
    res = evaluate_batch(props, pf, state, EXACT, PAIRS, NOW)
    assert [(d.status, d.quantity) for d in res.decisions] == [("approved", D(2)),
                                                               ("approved", D(7))]
    with pytest.raises(DataError, match="no price to exit CCC/USD"):
        exit_all(pf, {"AAA/USD": D(1)}, "kill-2")
