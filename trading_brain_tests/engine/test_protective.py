"""engine/executor/protective.py: the pure decisions over (rows, venue answers) for one position."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from trading_brain.domain.orders import OrderStatus, derive_client_order_id
from trading_brain.domain.records import OrderRow
from trading_brain.engine.executor import protective as pr

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ENTRY = derive_client_order_id("pos-1")


def row(leg: str, n: int, state: str, reason: str | None = None, purpose: str | None = None
        ) -> OrderRow:
    return OrderRow(pr.leg_cid(ENTRY, leg, n), "pos-1", "active", "kraken", "BTC/USD", "sell",
                    "stop-loss" if leg == "sl" else "market",
                    purpose or ("stop_loss" if leg == "sl" else "take_profit"), Decimal("0.01"),
                    state, T0 + timedelta(minutes=n), T0 + timedelta(minutes=n), reason=reason)


def test_attempt_ids_are_derived_and_distinct() -> None:
    assert pr.leg_cid(ENTRY, "sl") == derive_client_order_id(ENTRY, "sl")
    assert pr.leg_cid(ENTRY, "sl", 2) == derive_client_order_id(ENTRY, "sl2")
    assert len({pr.leg_cid(ENTRY, leg, n) for leg in ("sl", "tp") for n in (1, 2, 3)}) == 6


def test_a_new_position_arms_one_stop_and_nothing_while_it_is_live() -> None:
    assert pr.plan(ENTRY, True, [], [], False, False, None).arm == pr.leg_cid(ENTRY, "sl")
    for state in pr.LIVE_STATES:
        d = pr.plan(ENTRY, True, [row("sl", 1, state)], [], False, False, None)
        assert (d.arm, d.take_profit, d.blocked) == (None, None, None)
    assert pr.plan(ENTRY, False, [], [], False, False, None).arm is None  # no stop level


def test_take_profit_cancels_the_live_stops_first_and_waits_for_its_sell() -> None:
    stop = row("sl", 1, "open")
    d = pr.plan(ENTRY, True, [stop], [], True, False, None)
    assert (d.take_profit, d.live_stops, d.arm) == (pr.leg_cid(ENTRY, "tp"),
                                                    [stop.client_order_id], None)
    d = pr.plan(ENTRY, True, [row("sl", 1, "canceled")], [row("tp", 1, "unresolved")], True,
                False, None)
    assert (d.take_profit, d.arm) == (None, None)  # the sell is on its way: nothing else
    assert pr.plan(ENTRY, True, [stop], [], True, True, None).take_profit is None  # exiting


@pytest.mark.parametrize(("state", "reason", "rearm"), [
    ("canceled", "User requested", True), ("expired", None, True),
    ("rejected", "not_at_venue", True), ("rejected", "order_minimum", False),
    ("filled", None, False)])
def test_a_closed_stop_is_replaced_only_when_a_retry_can_help(state: str, reason: str | None,
                                                              rearm: bool) -> None:
    d = pr.plan(ENTRY, True, [row("sl", 1, state, reason)], [], False, False, None)
    assert d.arm == (pr.leg_cid(ENTRY, "sl", 2) if rearm else None)
    assert (d.blocked is not None) == (state == "rejected" and not rearm)


def test_a_leg_refused_for_funds_waits_for_a_changed_fingerprint() -> None:
    refused = row("sl", 1, "rejected", pr.funds_reason("abc"))
    assert pr.refused_fp(refused) == "abc" and pr.needs_fingerprint([refused], [])
    for now in (None, "abc"):  # not read, or unchanged: never resent
        d = pr.plan(ENTRY, True, [refused], [], False, False, now)
        assert d.arm is None and "insufficient_funds" in (d.blocked or "")
    assert pr.plan(ENTRY, True, [refused], [], False, False, "xyz").arm == pr.leg_cid(
        ENTRY, "sl", 2)


def test_a_blocked_take_profit_still_rearms_the_stop() -> None:
    tp = row("tp", 1, "rejected", pr.funds_reason("abc"))
    d = pr.plan(ENTRY, True, [row("sl", 1, "canceled")], [tp], True, False, "abc")
    assert d.take_profit is None and d.arm == pr.leg_cid(ENTRY, "sl", 2) and d.blocked
    d = pr.plan(ENTRY, True, [row("sl", 1, "canceled")], [tp], True, False, "new")
    assert d.take_profit == pr.leg_cid(ENTRY, "tp", 2)


def test_the_fingerprint_ignores_the_positions_own_legs_and_sees_everything_else() -> None:
    def st(cid: str, qty: str = "0.01") -> OrderStatus:
        return OrderStatus(client_order_id=cid, venue_order_id="V" + cid, symbol="BTC/USD",
                           side="sell", order_type="stop-loss", quantity=Decimal(qty),
                           state="open", updated_at=T0)
    base = pr.venue_fingerprint(Decimal("0.01"), Decimal("0.005"), "BTC/USD", [])
    own = pr.venue_fingerprint(Decimal("0.01"), Decimal("0.005"), "BTC/USD", [st("mine")],
                               own=["mine"])
    assert base == own
    assert base != pr.venue_fingerprint(Decimal("0.01"), Decimal("0.01"), "BTC/USD", [])
    assert base != pr.venue_fingerprint(Decimal("0.02"), Decimal("0.005"), "BTC/USD", [])
    assert base != pr.venue_fingerprint(Decimal("0.01"), Decimal("0.005"), "BTC/USD",
                                        [st("other")])
    assert base == pr.venue_fingerprint(Decimal("0.010"), Decimal("0.0050"), "BTC/USD", [])


@pytest.mark.parametrize(("bars", "last", "hit"), [
    ([(T0, 100, 106, 99)], None, True),  # the high reaches the level
    ([(T0, 100, 106, 94)], None, False),  # both touched: the stop-loss wins (venue's stop)
    ([(T0, 107, 108, 106)], None, True),  # opens beyond the level
    ([(T0, 94, 100, 93), (T0, 100, 106, 99)], None, False),  # the stop fired first
    ([(T0, 100, 101, 99)], 105.0, True),  # the last price between bars
    ([(T0, 100, 101, 99)], 104.9, False),
    ([], None, False)])
def test_take_profit_reached_uses_the_fill_model(bars: list, last: float | None,
                                                 hit: bool) -> None:
    assert pr.take_profit_reached(bars, last, 95.0, 105.0) is hit
