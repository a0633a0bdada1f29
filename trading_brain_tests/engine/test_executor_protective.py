"""Issue 15, executor level against the fake Kraken in BOTH venue models (untriggered trigger
sells hold their coins, or hold nothing): one exchange-native stop-loss per position, the
take-profit done by the executor (cancel the stop, confirm, sell), no AddOrder refused for
funds repeated while nothing changed, and protective rows that follow the venue after a fill,
a cancel, a trigger and a crash between two venue calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.app.notify import LogNotifier, deliver
from trading_brain.domain.orders import derive_client_order_id
from trading_brain_tests.fakes import kraken_private as fp
from trading_brain_tests.fakes.kraken_live import LiveWorld

HOLDS = pytest.mark.parametrize("hold", [True, False], ids=["holds", "no_hold"])
SL, TP = Decimal("29694.1"), Decimal("31209.2")  # 30300.1 * 0.98 (up) / * 1.03


def _world(tmp_path: Any, fk: Any, hold: bool) -> tuple[LiveWorld, str, str]:
    """A filled 0.01 BTC entry with sl 2 % / tp 3 %, its stop armed; (world, entry, iid)."""
    fk.state.private.hold_trigger_funds = hold
    w = LiveWorld(tmp_path / "w.duckdb", fk)
    iid = w.intent("enter", "0.01", sl=0.02, tp=0.03)
    w.tick()
    w.tick()
    return w, derive_client_order_id(iid), iid


def _cid(entry: str, leg: str) -> str:
    return derive_client_order_id(entry, leg)


def _open_triggers(w: LiveWorld) -> list[fp.FakeOrder]:
    with w.fk.state.lock:
        return [o for o in w.fk.state.private.orders.values()
                if o.ordertype in fp.TRIGGERS and o.status in ("open", "pending")]


def _protective_rows(w: LiveWorld) -> list[Any]:
    return [o for o in w.store.orders("active") if o.purpose in ("stop_loss", "take_profit")]


def _assert_rows_match_venue(w: LiveWorld) -> None:
    """Every protective row says what the venue says (state, venue id, filled quantity)."""
    rows = _protective_rows(w)
    assert rows
    for row in rows:
        st = w.ex.order_by_client_id(row.client_order_id)
        if st is None:
            assert row.state in ("rejected", "canceled") and row.venue_order_id is None, row
            continue
        assert (row.state, row.venue_order_id, row.filled_qty) == (
            st.state, st.venue_order_id, st.filled_qty), row


def _one_stop(w: LiveWorld) -> fp.FakeOrder:
    (stop,) = _open_triggers(w)
    assert (stop.ordertype, stop.side) == ("stop-loss", "sell")
    return stop


def _calls(w: LiveWorld) -> list[tuple[str, str | None]]:
    with w.fk.state.lock:
        return [(e, p.get("cl_ord_id")) for e, p, _ in w.fk.state.requests]


@HOLDS
def test_every_open_position_has_exactly_one_stop_loss_at_the_venue(tmp_path, fk,
                                                                    hold: bool) -> None:
    w, entry, _ = _world(tmp_path, fk, hold)
    stop = _one_stop(w)
    assert (stop.cl_ord_id, stop.price, stop.vol) == (_cid(entry, "sl"), SL, Decimal("0.01"))
    for _ in range(3):
        r = w.tick().slots["active"]
        assert r.errors == [] and r.warnings == [] and r.alerts == [] and r.unprotected == []
    assert _one_stop(w).txid == stop.txid
    assert len(w.adds(_cid(entry, "sl"))) == 1 and w.adds(_cid(entry, "tp")) == []
    row = w.store.order(_cid(entry, "sl"))
    assert (row.state, row.venue_order_id, row.stop_price) == ("open", stop.txid, SL)
    (pos,) = w.store.positions("active")
    assert abs(pos.stop_loss_price - SL) < 1 and abs(pos.take_profit_price - TP) < 1
    _assert_rows_match_venue(w)


@HOLDS
@pytest.mark.parametrize("via", ["bar", "last_price"])
def test_a_take_profit_reached_exits_by_cancel_confirm_then_sell(tmp_path, fk, hold: bool,
                                                                 via: str) -> None:
    w, entry, _ = _world(tmp_path, fk, hold)
    sl, tp = _cid(entry, "sl"), _cid(entry, "tp")
    stop = _one_stop(w)
    w.clock.advance(timedelta(minutes=2))
    if via == "bar":  # the last price is below the level again; the bar's high reached it
        w.bar("30400", "31250", "30350", "31000")
    else:
        w.reach("31250")
    start = len(_calls(w))
    rep = w.tick()
    calls = _calls(w)[start:]
    cancel = calls.index(("CancelOrder", sl))
    confirm = next(i for i, (e, c) in enumerate(calls)
                   if e in ("OpenOrders", "QueryOrders") and c == sl and i > cancel)
    add = calls.index(("AddOrder", tp))
    assert cancel < confirm < add
    assert [c for e, c in calls if e == "AddOrder"] == [tp]
    (sent,) = w.adds(tp)
    assert (sent["type"], sent["ordertype"], sent["volume"]) == ("sell", "market", "0.01000000")
    (closed,) = w.store.positions("active", status="closed")  # its fill booked at once
    assert closed.exit_reason == "take_profit" and closed.sold_qty == Decimal("0.01")
    r = rep.slots["active"]
    assert r.orders_cancelled == [sl] and r.ok, (r.errors, r.mismatches)
    w.tick()  # the sell's row takes its final state from the venue's lookup
    s, t = w.store.order(sl), w.store.order(tp)
    assert (s.state, s.reason, s.venue_order_id) == ("canceled", "canceled_for_take_profit",
                                                     stop.txid)
    assert (t.state, t.purpose, t.filled_qty) == ("filled", "take_profit", Decimal("0.01"))
    assert _open_triggers(w) == []
    _assert_rows_match_venue(w)
    assert len(w.adds(tp)) == 1 and len(w.adds(sl)) == 1  # nothing re-armed or resent


class _StopFiresOnCancel:
    """The venue's stop fills while its cancel is on the way (the cancel then finds it closed)."""

    def __init__(self, ex: Any, w: LiveWorld) -> None:
        self._ex, self._w, self.fired = ex, w, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ex, name)

    def cancel_order(self, **kw: Any) -> bool:
        if not self.fired:
            self.fired = bool(self._w.reach("29000"))
        return self._ex.cancel_order(**kw)


@HOLDS
def test_no_take_profit_sell_when_the_stop_filled_meanwhile(tmp_path, fk, hold: bool) -> None:
    w, entry, _ = _world(tmp_path, fk, hold)
    w.clock.advance(timedelta(minutes=2))
    w.bar("30400", "31250", "30350", "31000")
    w.ex = _StopFiresOnCancel(w.ex, w)  # type: ignore[assignment]
    rep = w.tick()
    assert w.ex.fired and w.adds(_cid(entry, "tp")) == []
    (closed,) = w.store.positions("active", status="closed")
    assert closed.exit_reason == "stop_loss"
    assert w.store.order(_cid(entry, "sl")).state == "filled"
    assert w.store.order(_cid(entry, "tp")) is None and rep.invariant_ok
    _assert_rows_match_venue(w)


def _withdraw(w: LiveWorld, qty: str) -> None:
    with w.fk.state.lock:
        w.fk.state.private.balances["XXBT"] -= Decimal(qty)


@HOLDS
def test_a_sell_refused_for_funds_is_never_repeated_until_something_changed(tmp_path, fk,
                                                                            hold: bool) -> None:
    w, entry, _ = _world(tmp_path, fk, hold)
    sl, sl2, tp, tp2 = (_cid(entry, s) for s in ("sl", "sl2", "tp", "tp2"))
    _withdraw(w, "0.005")  # someone moved half the coins away by hand
    w.clock.advance(timedelta(minutes=1))
    w.reach("31250")
    r = w.tick().slots["active"]
    t = w.store.order(tp)
    assert (t.state, t.reason.split(" fp=")[0]) == ("rejected", "insufficient_funds")
    (alert,) = r.alerts
    assert alert.kind == "protective_refused" and tp in alert.text
    assert any("refused" in x for x in r.warnings)
    events = w.store.execute("SELECT reason, details FROM risk_events WHERE reason = "
                             "'insufficient_funds'")
    assert events and any(tp in str(d) for _, d in events)
    for _ in range(4):  # nothing changed: neither leg is sent again
        w.clock.advance(timedelta(seconds=15))
        w.tick()
    assert len(w.adds(tp)) == 1 and w.adds(tp2) == []
    assert w.store.order(sl).state == "canceled" and len(w.adds(sl)) == 1
    (sl2_add,) = w.adds(sl2)  # the stop is re-armed once (refused too when triggers hold)
    assert w.store.order(sl2).state == ("rejected" if hold else "open")
    assert len(_open_triggers(w)) == (0 if hold else 1)
    refused = {o.client_order_id for o in _protective_rows(w) if o.state == "rejected"}
    assert refused == ({sl2, tp} if hold else {tp})
    # the alerts go out once per key through the notifier and the notifications table
    sent = deliver(r.alerts, [LogNotifier()], w.store, w.clock.now())
    again = deliver(r.alerts, [LogNotifier()], w.store, w.clock.now())
    assert (sent, again) == ((1, 0), (0, 0))
    with w.fk.state.lock:  # something changed: the coins are back
        w.fk.state.private.balances["XXBT"] += Decimal("0.005")
    w.tick()
    assert len(w.adds(tp2)) == 1
    w.tick()  # the sell's row takes its final state from the venue's lookup
    (closed,) = w.store.positions("active", status="closed")
    assert closed.exit_reason == "take_profit"
    assert _open_triggers(w) == []
    for o in _protective_rows(w):  # no client id was ever sent twice
        assert len(w.adds(o.client_order_id)) <= 1
    _assert_rows_match_venue(w)


class _CrashAfter:
    """Raises (a crash: not a venue error) right after the venue answered ``after`` for the
    client id ``cid``: the next venue call never happens."""

    def __init__(self, ex: Any, after: str, cid: str) -> None:
        self._ex, self._after, self._cid, self.crashed = ex, after, cid, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ex, name)

    def reconcile_protective(self, entry: Any, stop_cid: str | None = None) -> Any:
        if self._after == "AddOrder":  # crash between AddOrder and its confirming lookup
            ex = self._ex
            original = ex.order_by_client_id

            def crash(cid: str) -> Any:
                ex.order_by_client_id = original
                self.crashed = True
                raise RuntimeError("process killed")
            ex.order_by_client_id = crash
        return self._ex.reconcile_protective(entry, stop_cid=stop_cid)

    def cancel_order(self, **kw: Any) -> bool:
        gone = self._ex.cancel_order(**kw)
        if self._after == "CancelOrder" and kw.get("client_order_id") == self._cid:
            self.crashed = True
            raise RuntimeError("process killed")
        return gone


@HOLDS
@pytest.mark.parametrize("event", ["fill", "trigger", "cancel", "crash_placing_the_stop",
                                   "crash_then_the_stop_fills", "crash_between_cancel_and_sell"])
def test_protective_rows_follow_the_venue(tmp_path, fk, hold: bool, event: str) -> None:
    fk.state.private.hold_trigger_funds = hold
    w = LiveWorld(tmp_path / "w.duckdb", fk)
    iid = w.intent("enter", "0.01", sl=0.02, tp=0.03)
    entry = derive_client_order_id(iid)
    sl, sl2, tp = _cid(entry, "sl"), _cid(entry, "sl2"), _cid(entry, "tp")
    w.tick()
    if event.startswith("crash_") and "stop" in event:
        w.ex = _CrashAfter(w.ex, "AddOrder", sl)  # type: ignore[assignment]
        with pytest.raises(RuntimeError):
            w.tick()
        assert w.ex.crashed and w.store.order(sl).state == "submitting"
        w.restart()
        if event == "crash_then_the_stop_fills":  # it fired while the process was down
            w.reach("29000")
            w.tick()
            row = w.store.order(sl)
            assert (row.state, row.filled_qty, row.venue_order_id) == (
                "filled", Decimal("0.01"), w.venue_orders(sl)[0].txid)
            (closed,) = w.store.positions("active", status="closed")
            assert closed.exit_reason == "stop_loss" and len(w.adds(sl)) == 1
            _assert_rows_match_venue(w)
            return
        w.tick()  # the lookup by client id finds the stop the crashed tick placed
        assert len(w.adds(sl)) == 1 and _one_stop(w).cl_ord_id == sl
        assert w.store.order(sl).state == "open"
    else:
        w.tick()
    stop = _one_stop(w)
    if event == "fill":
        w.reach("29000")
        w.tick()
        assert w.store.order(sl).state == "filled"
        (closed,) = w.store.positions("active", status="closed")
        assert closed.exit_reason == "stop_loss"
    elif event == "trigger":  # triggered at the venue, partly executed so far
        fp.fill(fk.state, stop.txid, "0.004", "29600")
        w.tick()
        row = w.store.order(sl)
        assert (row.state, row.filled_qty) == ("partially_filled", Decimal("0.004"))
        assert [p.quantity for p in w.store.positions("active")] == [Decimal("0.006")]
        assert _one_stop(w).txid == stop.txid  # nothing else armed meanwhile
    elif event == "cancel":  # cancelled at the venue by hand: re-armed under a new id
        with fk.state.lock:
            fp.cancel(fk.state, stop)
        w.tick()
        assert w.store.order(sl).state == "canceled"
        assert _one_stop(w).cl_ord_id == sl2 and len(w.adds(sl)) == 1
    elif event == "crash_between_cancel_and_sell":
        w.clock.advance(timedelta(minutes=2))
        w.bar("30400", "31250", "30350", "31000")
        w.ex = _CrashAfter(w.ex, "CancelOrder", sl)  # type: ignore[assignment]
        with pytest.raises(RuntimeError):
            w.tick()
        assert w.store.order(sl).state == "open" and w.adds(tp) == []
        w.restart()
        w.tick()  # the stop's row follows the venue (cancelled); the take-profit is sold
        assert w.store.order(sl).state == "canceled" and len(w.adds(tp)) == 1
        (closed,) = w.store.positions("active", status="closed")
        assert closed.exit_reason == "take_profit"
    w.tick()
    assert len(_open_triggers(w)) == (1 if w.store.positions("active") else 0)
    _assert_rows_match_venue(w)
    assert w.tick().invariant_ok


def test_alerts_are_recorded_once_per_key_in_the_notifications_table(tmp_path) -> None:
    from trading_brain.app.notify import Alert

    store = Store.open(tmp_path / "w.duckdb")
    a = Alert("protective_refused:x", "ERROR", "protective_refused", "active BTC/USD", "t")
    got: list[tuple[str, str]] = []

    class Channel:
        name = "test"

        def notify(self, level: str, text: str) -> None:
            got.append((level, text))

    assert deliver([a, a], [Channel()], store, datetime.now(UTC)) == (1, 0)
    assert got == [("ERROR", "t")]
    assert store.execute("SELECT kind, channels FROM notifications") == [
        ("protective_refused", "test")]
