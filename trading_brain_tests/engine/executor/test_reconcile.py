"""engine/executor/reconcile.py: the pure reconcile, one table row per transition (no venue, no
store: stored rows and the venue's answers in, corrections out as data)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from trading_brain.domain.orders import Balance, Fill, OrderAck, OrderState, OrderStatus
from trading_brain.domain.records import OrderRow, PositionRecord
from trading_brain.engine.executor import reconcile as rc
from trading_brain.engine.executor.protective import Protection, leg_cid
from trading_brain.errors import AmbiguousOrderError, OrderRejected, TemporaryError

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
GRACE = timedelta(minutes=2)
Q = Decimal("0.01")
D = Decimal


def row(state: str, purpose: str = "entry", filled: str = "0", venue_id: str | None = None,
        age: timedelta = timedelta(0), intent: str | None = "int-1", reason: str | None = None,
        cid: str = "c-1") -> OrderRow:
    return OrderRow(cid, intent, "active", "kraken", "BTC/USD",
                    "buy" if purpose == "entry" else "sell", "market", purpose, Q, state,
                    T0 - age, T0 - age, venue_order_id=venue_id, filled_qty=D(filled),
                    reason=reason)


def status(state: OrderState, filled: str = "0", fee: str = "0", reason: str | None = None,
           price: str | None = None, cid: str = "c-1") -> OrderStatus:
    return OrderStatus(client_order_id=cid, venue_order_id="V1", symbol="BTC/USD", side="buy",
                       order_type="market", quantity=Q, state=state, filled_qty=D(filled),
                       avg_price=D(price) if price else None, fee=D(fee), reason=reason,
                       updated_at=T0)


Out = rc.IntentOutcome
# (stored row, the venue's status or None (unknown), fields expected, updated, intent outcome,
#  error)
CASES = {
    "submitting -> open": (
        row("submitting"), status("open"), {"state": "open", "venue_order_id": "V1"}, True,
        None, None),
    "submitting -> filled": (
        row("submitting"), status("filled", "0.01", "0.5", price="30000"),
        {"state": "filled", "filled_qty": Q, "fee": D("0.5"), "avg_price": D("30000")}, True,
        Out("int-1", "done", "filled"), None),
    "unresolved -> settled by the lookup (filled)": (
        row("unresolved", age=timedelta(hours=1)), status("filled", "0.01"),
        {"state": "filled", "filled_qty": Q}, True, Out("int-1", "done", "filled"), None),
    "unresolved -> settled by the lookup (refused)": (
        row("unresolved"), status("rejected", reason="insufficient_funds"),
        {"state": "rejected", "reason": "insufficient_funds"}, True,
        Out("int-1", "rejected", "insufficient_funds"), None),
    "open -> canceled": (
        row("open", venue_id="V1"), status("canceled"), {"state": "canceled"}, True,
        Out("int-1", "cancelled", "canceled"), None),
    "open -> partially filled (the intent waits)": (
        row("open", venue_id="V1"), status("partially_filled", "0.004"),
        {"state": "partially_filled", "filled_qty": D("0.004")}, True, None, None),
    "partially filled -> canceled: done (something filled)": (
        row("partially_filled", filled="0.004", venue_id="V1"), status("canceled", "0.004"),
        {"state": "canceled"}, True, Out("int-1", "done", "canceled"), None),
    "disagreement corrected (the venue's fill and fee win)": (
        row("filled", filled="0.02", venue_id="V1"), status("filled", "0.01", "0.26"),
        {"filled_qty": Q, "fee": D("0.26")}, True, Out("int-1", "done", "filled"), None),
    "agreement: nothing changes, not counted as updated": (
        row("open", venue_id="V1"), status("open"), {}, False, None, None),
    "exit of a kill: settles its intent too": (
        row("open", purpose="kill", venue_id="V1"), status("filled", "0.01"),
        {"state": "filled"}, True, Out("int-1", "done", "filled"), None),
    "a finished stop-loss settles no intent": (
        row("open", purpose="stop_loss", venue_id="V1"), status("filled", "0.01"), {
            "state": "filled"}, True, None, None),
    "unknown at the venue, submitting, within grace -> unresolved": (
        row("submitting", age=timedelta(seconds=30)), None, {"state": "unresolved"}, True,
        None, None),
    "unknown at the venue, unresolved, within grace -> unchanged": (
        row("unresolved", age=timedelta(seconds=30)), None, {}, True, None, None),
    "unknown at the venue after the grace -> rejected, never resent": (
        row("unresolved", age=GRACE), None, {"state": "rejected", "reason": "not_at_venue"},
        True, Out("int-1", "rejected", "not_at_venue"), None),
    "unknown at the venue, open -> an error, nothing changes": (
        row("open", venue_id="V1", age=timedelta(hours=1)), None, {}, False, None,
        "order c-1 (open) unknown at the venue"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_transition(name: str) -> None:
    stored, st, fields, updated, intent, error = CASES[name]
    (fix,) = rc.reconcile_orders([stored], {stored.client_order_id: st}, T0, GRACE)
    assert {k: fix.fields[k] for k in fields} == fields, fix.fields
    assert bool(fix.fields) == bool(fields)
    assert (fix.updated, fix.intent, fix.error) == (updated, intent, error)
    if fix.fields and st is not None:  # applied, the row agrees with the venue
        assert rc.correction(replace(stored, **fix.fields), st) is None  # type: ignore[arg-type]


def test_rows_not_asked_are_left_alone_and_the_order_is_kept() -> None:
    a, b, c = (row("open", cid=x, venue_id="V1") for x in ("a", "b", "c"))
    fixes = rc.reconcile_orders([a, b, c], {"c": status("open", cid="c"), "a": None}, T0, GRACE)
    assert [f.client_order_id for f in fixes] == ["a", "c"]


def test_the_intents_an_answer_may_settle() -> None:
    rows = [row("open", cid="a", intent="i-a"), row("open", cid="b", intent="i-b"),
            row("open", cid="c", intent="i-c"), row("open", cid="d", purpose="stop_loss",
                                                     intent="pos-1"),
            row("open", cid="e", intent=None)]
    sts = {"a": status("filled", "0.01", cid="a"), "b": status("open", cid="b"), "c": None,
           "d": status("canceled", cid="d"), "e": None}
    assert rc.settling_intents(rows, sts) == ["i-a", "i-c"]


def test_the_outcome_of_a_finished_row_found_again() -> None:
    assert rc.row_outcome(row("filled", filled="0.01")) == ("done", "filled")
    assert rc.row_outcome(row("canceled", filled="0.004")) == ("done", "canceled")
    assert rc.row_outcome(row("rejected", reason="halted")) == ("rejected", "halted")


@pytest.mark.parametrize(("st", "fields", "cancelled"), [
    (None, {"state": "canceled", "reason": "position_closed (not at venue)"}, True),
    (status("canceled"), {"state": "canceled", "reason": "position_closed"}, True),
    (status("filled", "0.01"), {"state": "filled", "filled_qty": Q}, False),
])
def test_a_confirmed_cancel(st: OrderStatus | None, fields: dict, cancelled: bool) -> None:
    fix = rc.confirmed_cancel(row("open", purpose="stop_loss"), st, "position_closed")
    assert {k: fix.fields[k] for k in fields} == fields
    assert (fix.cancelled, fix.updated, fix.intent) == (cancelled, False, None)


@pytest.mark.parametrize(("answer", "kind", "fields"), [
    (OrderAck(client_order_id="c-1", venue_order_id="V9", state="open", accepted_at=T0),
     "placed", {"state": "open", "venue_order_id": "V9"}),
    (OrderRejected("no money", "insufficient_funds"), "rejected",
     {"state": "rejected", "reason": "insufficient_funds"}),
    (AmbiguousOrderError("timeout"), "unresolved", {"state": "unresolved", "reason": "timeout"}),
    (TemporaryError("x" * 300), "unresolved", {"state": "unresolved", "reason": "x" * 200}),
])
def test_a_placement_answer(answer: OrderAck | Exception, kind: str, fields: dict) -> None:
    p = rc.placement(answer)
    assert (p.kind, dict(p.fields)) == (kind, fields)


STOP = status("open", cid="s-1")


@pytest.mark.parametrize(("answer", "kind", "fields"), [
    (Protection(None, stop_loss=STOP), "placed", {"state": "open", "venue_order_id": "V1"}),
    (Protection(None, refused="insufficient_funds"), "refused", {}),
    (Protection(None, venue_order_id="V7", error="lookup failed"), "placed",
     {"state": "open", "venue_order_id": "V7"}),
    (Protection(None, error="timeout", ambiguous=True), "ambiguous", {}),
    (Protection(None), "not_sent", {"state": "rejected", "reason": "entry_not_filled"}),
])
def test_a_protective_answer(answer: Protection, kind: str, fields: dict) -> None:
    got_kind, got = rc.protection(row("submitting", purpose="stop_loss", cid="s-1"), answer)
    assert (got_kind, {k: got[k] for k in fields}, bool(got)) == (kind, fields, bool(fields))


def _fill(fid: str, cid: str | None, qty: str, price: str = "31000") -> Fill:
    return Fill(fill_id=fid, client_order_id=cid, venue_order_id="V5", symbol="BTC/USD",
                side="sell", qty=D(qty), price=D(price), fee=D("0.1"), fee_currency="USD",
                ts=T0)


def test_fresh_fills_skip_the_stored_ones() -> None:
    fills = [_fill("f1", "a", "1"), _fill("f2", "a", "1"), _fill("f3", "b", "1")]
    assert [f.fill_id for f in rc.fresh_fills(fills, {"f2"})] == ["f1", "f3"]


def test_a_protective_sell_known_only_by_its_fills_gets_a_row() -> None:
    from trading_brain.domain.orders import derive_client_order_id

    pos = PositionRecord("pos-1", "BTC/USD", "active", "s", 1, "swing", "open", D("0.02"),
                         D("600"), D("1"), T0, T0, stop_loss_price=D("29000"),
                         take_profit_price=D("31000"))
    tp = leg_cid(derive_client_order_id("pos-1"), "tp")
    fills = [_fill("f1", tp, "0.01"), _fill("f2", tp, "0.01", "31002"),
             _fill("f3", "someone-else", "1")]
    (adopted,) = rc.adopted_rows([pos], fills, set(), "active", "paper", T0)
    assert (adopted.client_order_id, adopted.purpose, adopted.state, adopted.filled_qty,
            adopted.avg_price, adopted.fee, adopted.stop_price) == (
        tp, "take_profit", "filled", D("0.02"), D("31001"), D("0.2"), D("31000"))
    assert rc.adopted_rows([pos], fills[:1], set(), "active", "paper", T0)[0].state == \
        "partially_filled"
    assert rc.adopted_rows([pos], fills, {tp}, "active", "paper", T0) == []  # a row exists


def test_the_venue_balance_without_the_baseline() -> None:
    venue = Balance(assets={"USD": D("100"), "BTC": D("1.5")})
    assert rc.without_baseline(venue, {}) is venue
    assert rc.without_baseline(venue, {"BTC": D("1"), "ETH": D("2")}).assets == {
        "USD": D("100"), "BTC": D("0.5"), "ETH": D("-2")}
