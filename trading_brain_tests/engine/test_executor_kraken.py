"""The executor tick in live mode: real ``run_tick`` over a real warehouse with the active slot on
``KrakenExecution`` against the stateful fake Kraken (REST). Every test checks both sides: the
warehouse rows (orders, fills, positions, cash ledger, snapshot, invariant, balance reconcile)
and what the venue saw (one AddOrder per intent, ``cl_ord_id`` derived from the intent id)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from trading_brain.domain.orders import derive_client_order_id
from trading_brain.engine.executor.tick import TickReport
from trading_brain_tests.fakes import kraken_private as fp
from trading_brain_tests.fakes.kraken_live import CAPITAL, LiveWorld


def _venue_usd(w: LiveWorld) -> Decimal:
    with w.fk.state.lock:
        return w.fk.state.private.balances["ZUSD"]


def _assert_books_match_venue(w: LiveWorld, rep: TickReport) -> None:
    """Invariant holds, the ledger's cash equals the venue's USD, nothing flagged."""
    r = rep.slots["active"]
    assert r.invariant is not None and r.invariant.ok, r.invariant
    assert r.mismatches == [] and r.ok
    assert w.store.cash_balance("active") == _venue_usd(w)
    assert r.snapshot is not None and r.snapshot.cash == _venue_usd(w)


def test_market_entry_is_sent_once_and_its_fill_confirmed_from_the_venue(tmp_path, fk) -> None:
    w = LiveWorld(tmp_path / "w.duckdb", fk)
    iid = w.intent("enter", "0.01")
    cid = derive_client_order_id(iid)
    first = w.tick().slots["active"]
    assert first.orders_placed == [cid] and w.status(iid) == "submitted"
    (sent,) = w.adds(cid)
    assert (sent["pair"], sent["type"], sent["ordertype"], sent["volume"]) == (
        "XBTUSD", "buy", "market", "0.01000000")
    assert w.store.order(cid).venue_order_id == w.venue_orders(cid)[0].txid
    rep = w.tick()
    assert fk.state.calls("QueryOrders")  # the fill's client id came from QueryOrders
    row = w.store.order(cid)
    assert (row.state, row.filled_qty, row.avg_price) == ("filled", Decimal("0.01"),
                                                          Decimal("30300.1"))
    (f,) = w.store.fills("active")
    (trade,) = fk.state.private.trades.values()
    assert (f.client_order_id, f.qty, f.price, f.fee, f.fee_currency) == (
        cid, Decimal("0.01"), Decimal("30300.1"), Decimal(trade["fee"]), "USD")
    (pos,) = w.store.positions("active")
    assert (pos.position_id, pos.quantity, pos.entry_fee) == (iid, Decimal("0.01"), f.fee)
    assert w.status(iid) == "done"
    causes = [(e.cause, e.amount) for e in w.store.cash_entries("active")]
    assert causes == [("deposit", CAPITAL), ("buy", -f.qty * f.price), ("fee", -f.fee)]
    _assert_books_match_venue(w, rep)
    for _ in range(2):  # idempotent: nothing new is sent or stored
        assert w.tick().count("fills") == 0
    assert len(w.adds(cid)) == 1 and len(w.store.fills("active")) == 1


def test_the_placing_tick_does_not_flag_a_false_balance_mismatch(tmp_path, fk) -> None:
    """A market order that fills at once is in the venue's balances right after placing: the
    tick fetches the fills again after acting, so its ledger and the balances it reads agree."""
    w = LiveWorld(tmp_path / "w.duckdb", fk)
    iid = w.intent("enter", "0.01")
    rep = w.tick()
    r = rep.slots["active"]
    assert r.orders_placed == [derive_client_order_id(iid)] and len(r.fills) == 1
    assert [p.quantity for p in w.store.positions("active")] == [Decimal("0.01")]
    _assert_books_match_venue(w, rep)


def test_partial_fill_then_the_rest(tmp_path, fk) -> None:
    fk.state.private.fill_market = False  # the market order rests; the test fills it in parts
    w = LiveWorld(tmp_path / "w.duckdb", fk)
    iid = w.intent("enter", "0.01")
    cid = derive_client_order_id(iid)
    w.tick()
    fp.fill(fk.state, cid, "0.004", "30000")
    rep = w.tick()
    row = w.store.order(cid)
    assert (row.state, row.filled_qty) == ("partially_filled", Decimal("0.004"))
    assert [p.quantity for p in w.store.positions("active")] == [Decimal("0.004")]
    assert w.status(iid) == "submitted"
    _assert_books_match_venue(w, rep)
    fp.fill(fk.state, cid, None, "30100")
    rep = w.tick()
    row = w.store.order(cid)
    assert (row.state, row.filled_qty) == ("filled", Decimal("0.01"))
    assert row.avg_price == Decimal("30060.0")
    assert [f.qty for f in w.store.fills("active")] == [Decimal("0.004"), Decimal("0.006")]
    (pos,) = w.store.positions("active")
    assert pos.quantity == Decimal("0.01") and pos.cost_basis == Decimal("300.6")
    assert w.status(iid) == "done" and len(w.adds(cid)) == 1
    _assert_books_match_venue(w, rep)


@pytest.mark.parametrize(("qty", "reason"), [("1", "insufficient_funds"),
                                             ("0.00005", "order_minimum")])
def test_venue_refusal_rejects_the_order_and_is_never_retried(tmp_path, fk, qty: str,
                                                               reason: str) -> None:
    w = LiveWorld(tmp_path / "w.duckdb", fk)
    iid = w.intent("enter", qty)  # 1 BTC ~ 30300 USD > 10000; 0.00005 < ordermin 0.0001
    cid = derive_client_order_id(iid)
    rep = w.tick()
    assert rep.slots["active"].intents_rejected == {iid: reason}
    row = w.store.order(cid)
    assert (row.state, row.reason) == ("rejected", reason)
    assert w.status(iid) == "rejected"
    assert reason in {r[0] for r in w.store.execute("SELECT reason FROM risk_events")}
    for _ in range(2):
        w.clock.advance(timedelta(minutes=1))
        w.tick()
    assert len(w.adds(cid)) == 1 and w.venue_orders(cid) == []
    assert w.store.fills("active") == [] and w.store.positions("active") == []
    _assert_books_match_venue(w, w.tick())


@pytest.mark.parametrize("fault", ["unavailable", "timeout"])
def test_accepted_but_unanswered_order_is_settled_by_client_id_lookup(tmp_path, fk,
                                                                       fault: str) -> None:
    if fault == "timeout":  # the venue records the order, then answers too late
        fk.state.add_fault("AddOrder", delay_s=1.5, after_handler=True)
        w = LiveWorld(tmp_path / "w.duckdb", fk, timeout_s=1.0)
    else:  # the venue records the order, then answers EService:Unavailable
        fk.state.add_fault("AddOrder", errors=["EService:Unavailable"], after_handler=True)
        w = LiveWorld(tmp_path / "w.duckdb", fk)
    iid = w.intent("enter", "0.01")
    cid = derive_client_order_id(iid)
    rep = w.tick().slots["active"]
    assert rep.orders_placed == [] and any("unresolved" in e for e in rep.errors)
    assert w.store.order(cid).state == "unresolved" and w.status(iid) == "submitted"
    assert len(w.venue_orders(cid)) == 1  # it did reach the venue
    rep = w.tick()
    row = w.store.order(cid)
    assert (row.state, row.filled_qty) == ("filled", Decimal("0.01"))
    assert row.venue_order_id == w.venue_orders(cid)[0].txid
    assert w.status(iid) == "done" and len(w.store.fills("active")) == 1
    assert len(w.adds(cid)) == 1  # settled by lookup, never resent
    _assert_books_match_venue(w, rep)


def test_order_the_venue_never_accepted_is_rejected_after_the_grace(tmp_path, fk) -> None:
    fk.state.add_fault("AddOrder", errors=["EService:Unavailable"])  # refused before the engine
    w = LiveWorld(tmp_path / "w.duckdb", fk)
    iid = w.intent("enter", "0.01")
    cid = derive_client_order_id(iid)
    w.tick()
    w.tick()
    assert w.store.order(cid).state == "unresolved" and w.status(iid) == "submitted"
    w.clock.advance(timedelta(minutes=3))  # past TickConfig.unresolved_grace
    w.tick()
    row = w.store.order(cid)
    assert (row.state, row.reason) == ("rejected", "not_at_venue")
    assert w.status(iid) == "rejected"
    assert len(w.adds(cid)) == 1 and w.venue_orders(cid) == []


def test_invalid_nonce_is_resent_once_and_the_order_exists_once(tmp_path, fk) -> None:
    fk.state.add_fault("AddOrder", errors=["EAPI:Invalid nonce"])  # refused before the engine
    w = LiveWorld(tmp_path / "w.duckdb", fk)
    iid = w.intent("enter", "0.01")
    cid = derive_client_order_id(iid)
    assert w.tick().slots["active"].orders_placed == [cid]
    assert len(w.adds(cid)) == 2 and len(w.venue_orders(cid)) == 1
    w.tick()
    assert w.store.order(cid).state == "filled" and w.status(iid) == "done"


@pytest.mark.parametrize(("price", "fired"), [("31300", "take_profit"), ("29000", "stop_loss")])
def test_one_stop_after_the_fill_and_either_exit_closes_the_position(tmp_path, fk, price: str,
                                                                     fired: str) -> None:
    """One exchange-native stop-loss per position; the take-profit is the executor's
    (cancel the stop, confirm, sell at market), the stop-loss the venue's own trigger."""
    w = LiveWorld(tmp_path / "w.duckdb", fk)
    iid = w.intent("enter", "0.01", sl=0.02, tp=0.03)
    entry = derive_client_order_id(iid)
    sl, tp = (derive_client_order_id(entry, s) for s in ("sl", "tp"))
    w.tick()
    assert w.adds(sl) == []  # nothing before the entry filled
    w.tick()  # records the fill, arms the stop on the venue
    (sl_sent,) = w.adds(sl)
    assert (sl_sent["ordertype"], sl_sent["type"], sl_sent["volume"], sl_sent["price"]) == (
        "stop-loss", "sell", "0.01000000", "29694.1")  # 30300.1 * 0.98, rounded up
    assert w.adds(tp) == []  # no second trigger for the same coins
    row = w.store.order(sl)
    assert (row.state, row.venue_order_id, row.stop_price) == (
        "open", w.venue_orders(sl)[0].txid, Decimal("29694.1"))  # stored while open
    (pos,) = w.store.positions("active")
    assert pos.stop_loss_price is not None and pos.take_profit_price is not None
    w.tick()
    assert len(w.adds(sl)) == 1  # armed once
    w.reach(price)  # the stop fires on the venue, or the executor sees the take-profit
    rep = w.tick()
    (closed,) = w.store.positions("active", status="closed")
    assert closed.exit_reason == fired and closed.sold_qty == Decimal("0.01")
    assert [f.side for f in w.store.fills("active")] == ["buy", "sell"]
    _assert_books_match_venue(w, rep)
    w.tick()
    assert w.store.order(sl).state == ("filled" if fired == "stop_loss" else "canceled")
    assert (w.store.order(tp).state if fired == "take_profit" else w.store.order(tp)) == (
        "filled" if fired == "take_profit" else None)
    (venue_stop,) = w.venue_orders(sl)
    assert venue_stop.status == ("closed" if fired == "stop_loss" else "canceled")
    assert sum(len(w.adds(c)) for c in [entry, sl, tp]) == (3 if fired == "take_profit" else 2)


def test_restart_with_entry_and_protective_orders_open_continues(tmp_path, fk) -> None:
    fk.state.private.fill_market = False
    w = LiveWorld(tmp_path / "w.duckdb", fk)
    iid = w.intent("enter", "0.01", sl=0.02, tp=0.03)
    entry = derive_client_order_id(iid)
    sl, tp = (derive_client_order_id(entry, s) for s in ("sl", "tp"))
    w.tick()
    w.restart()  # new KrakenExecution, KrakenMarket and Store on the same file and venue
    w.tick()
    assert w.store.order(entry).state == "open" and len(w.adds(entry)) == 1
    fp.fill(fk.state, entry, None, "30000")
    w.tick()  # fill recorded, the stop armed
    assert w.store.order(sl).state == "open"
    w.restart()
    w.tick()
    assert len(w.adds(sl)) == 1  # found again by client id, not re-armed
    w.reach("31000")  # above the take-profit (30900): the executor sells (the order rests)
    w.tick()
    assert w.store.order(sl).state == "canceled" and len(w.adds(tp)) == 1
    w.restart()
    w.tick()
    assert len(w.adds(tp)) == 1  # the resting sell is found by client id, never resent
    fp.fill(fk.state, tp, None, "31000")
    rep = w.tick()
    (closed,) = w.store.positions("active", status="closed")
    assert closed.exit_reason == "take_profit"
    assert w.status(iid) == "done"
    assert sum(len(w.adds(c)) for c in (entry, tp, sl)) == 3
    _assert_books_match_venue(w, rep)


def test_balance_reconcile_flags_a_venue_that_disagrees(tmp_path, fk) -> None:
    w = LiveWorld(tmp_path / "w.duckdb", fk)
    w.intent("enter", "0.01")
    w.tick()
    _assert_books_match_venue(w, w.tick())
    with fk.state.lock:  # someone withdrew cash and deposited BTC by hand
        fk.state.private.balances["ZUSD"] -= Decimal("12.5")
        fk.state.private.balances["XXBT"] += Decimal("0.3")
    rep = w.tick().slots["active"]
    assert rep.invariant is not None and rep.invariant.ok and not rep.ok
    got = {m.asset: m.ledger - m.venue for m in rep.mismatches}
    assert got == {"USD": Decimal("12.5"), "BTC": Decimal("-0.3")}


def test_exit_sells_the_position_and_cancels_its_stop(tmp_path, fk) -> None:
    w = LiveWorld(tmp_path / "w.duckdb", fk)
    iid = w.intent("enter", "0.01", sl=0.02, tp=0.03)
    entry = derive_client_order_id(iid)
    legs = [derive_client_order_id(entry, "sl")]
    w.tick()
    w.tick()  # filled, legs armed
    xid = w.intent("exit", "0.01")
    w.tick()  # the exit sell is sent and fills at once on the venue
    (sent,) = w.adds(derive_client_order_id(xid))
    assert (sent["type"], sent["ordertype"], sent["volume"]) == ("sell", "market", "0.01000000")
    rep = w.tick()  # the fill closes the position; the legs are cancelled
    (closed,) = w.store.positions("active", status="closed")
    assert closed.exit_reason == "signal" and w.status(xid) == "done"
    assert [w.store.order(c).state for c in legs] == ["canceled"]
    assert [o.status for c in legs for o in w.venue_orders(c)] == ["canceled"]
    assert w.store.order(derive_client_order_id(entry, "tp")) is None  # never a venue order
    _assert_books_match_venue(w, rep)


@pytest.mark.parametrize("holds", [True, False])
def test_exit_passes_when_the_venue_reserves_base_for_trigger_orders(tmp_path, fk,
                                                                     holds: bool) -> None:
    """Both venue models: the position's stop is cancelled (and the cancel confirmed) before
    the exit sell is sent, so a venue that holds the coins for untriggered triggers does not
    refuse it for insufficient funds."""
    fk.state.private.hold_trigger_funds = holds
    w = LiveWorld(tmp_path / "w.duckdb", fk)
    iid = w.intent("enter", "0.01", sl=0.02, tp=0.03)
    legs = [derive_client_order_id(derive_client_order_id(iid), "sl")]
    w.tick()
    w.tick()
    xid = w.intent("exit", "0.01")
    xcid = derive_client_order_id(xid)
    rep = w.tick()
    assert rep.slots["active"].orders_placed == [xcid]
    with fk.state.lock:
        calls = [(e, p.get("cl_ord_id")) for e, p, _ in fk.state.requests]
    cancels = [i for i, (e, c) in enumerate(calls) if e == "CancelOrder" and c in legs]
    (add,) = [i for i, (e, c) in enumerate(calls) if e == "AddOrder" and c == xcid]
    assert cancels and max(cancels) < add  # every leg cancelled before the exit went out
    assert w.status(xid) == "submitted" and w.store.positions("active") == []
    _assert_books_match_venue(w, rep)  # the exit's fill is booked on the tick that sent it
    rep = w.tick()
    assert w.status(xid) == "done" and w.store.order(xcid).state == "filled"
    (closed,) = w.store.positions("active", status="closed")
    assert closed.exit_reason == "signal" and closed.sold_qty == Decimal("0.01")
    assert {w.store.order(c).state for c in legs} == {"canceled"}
    assert all(o.status != "open" for c in legs for o in w.venue_orders(c))
    assert len(w.adds(xcid)) == 1
    _assert_books_match_venue(w, rep)
