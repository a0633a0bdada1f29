"""Live-mode executor behaviour against the fake Kraken (real ``run_tick``, real warehouse):
the venue's balances as starting capital with a baseline of coins held before the bot, exits
that find a protective order filled while its cancel was on the way, and kill exits labelled
by the executor itself (purpose ``kill`` -> ``exit_reason = "kill"``)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from trading_brain.app.runtime import build_runtime, executor_slots
from trading_brain.domain.intents import OrderIntent, intent_id_for
from trading_brain.domain.orders import derive_client_order_id
from trading_brain.domain.risk import RiskLimits
from trading_brain.engine.executor.context import VENUE_BASELINE_KEY
from trading_brain.engine.executor.tick import SlotSetup, TickReport, run_tick
from trading_brain.settings import Home
from trading_brain_tests.fakes import kraken_private as fp
from trading_brain_tests.fakes.kraken_live import LiveWorld, live_settings
from trading_brain_tests.fakes.kraken_server import FakeKraken


def _venue_tick(w: LiveWorld) -> TickReport:
    """One tick with the active slot's capital taken from the venue (live mode)."""
    return run_tick(w.store, {"active": SlotSetup(w.ex, Decimal(1), venue_capital=True)},
                    w.market, w.clock, w.pairs, RiskLimits(), w.config)


def _set_balances(fk: FakeKraken, balances: dict[str, Decimal]) -> None:
    with fk.state.lock:
        fk.state.private.balances = dict(balances)


def _change_balance(fk: FakeKraken, asset: str, delta: str) -> None:
    with fk.state.lock:
        fk.state.private.balances[asset] += Decimal(delta)


def test_live_capital_is_the_venue_balance_and_coins_held_before_are_a_baseline(tmp_path,
                                                                               fk) -> None:
    default = dict(fk.state.private.balances)  # the captured account: 200000 USD, 0.5 BTC, 2 ETH
    assert {k: v for k, v in default.items() if v} == {
        "ZUSD": Decimal(200000), "XXBT": Decimal("0.5"), "ETH": Decimal(2)}
    w = LiveWorld(tmp_path / "w.duckdb", fk)
    _set_balances(fk, default)
    iid = w.intent("enter", "0.01")
    rep = _venue_tick(w).slots["active"]
    assert rep.invariant is not None and rep.invariant.ok, rep.invariant
    assert rep.mismatches == [] and rep.ok
    assert rep.fills and w.store.starting_capital("active") == Decimal(200000)
    base = json.loads(w.store.get_meta(VENUE_BASELINE_KEY) or "{}")["active"]
    assert {a: Decimal(q) for a, q in base["assets"].items()} == {"BTC": Decimal("0.5"),
                                                                  "ETH": Decimal(2)}
    assert Decimal(base["deposit"]) == Decimal(200000)
    for _ in range(2):  # the bot's 0.01 BTC on top of the 0.5 held before: nothing flagged
        rep = _venue_tick(w).slots["active"]
        assert rep.ok and rep.mismatches == [], rep.mismatches
    assert w.status(iid) == "done"
    with fk.state.lock:
        assert w.store.cash_balance("active") == fk.state.private.balances["ZUSD"]
        assert fk.state.private.balances["XXBT"] == Decimal("0.51")
    _set_balances(fk, {**fk.state.private.balances, "ZUSD": Decimal(1)})
    rep = _venue_tick(w).slots["active"]  # the deposit is taken once: not re-read later
    assert w.store.starting_capital("active") == Decimal(200000)
    assert {m.asset for m in rep.mismatches} == {"USD"}


def test_a_venue_balance_changed_by_hand_after_the_first_tick_is_flagged(tmp_path, fk) -> None:
    default = dict(fk.state.private.balances)
    w = LiveWorld(tmp_path / "w.duckdb", fk)
    _set_balances(fk, default)
    assert _venue_tick(w).invariant_ok
    _change_balance(fk, "ZUSD", "-12.5")  # someone withdrew cash and deposited BTC and ETH
    _change_balance(fk, "XXBT", "0.3")
    _change_balance(fk, "ETH", "-2")
    rep = _venue_tick(w).slots["active"]
    assert rep.invariant is not None and rep.invariant.ok and not rep.ok
    got = {m.asset: m.ledger - m.venue for m in rep.mismatches}
    assert got == {"USD": Decimal("12.5"), "BTC": Decimal("-0.3"), "ETH": Decimal(2)}


def test_unreadable_opening_balances_defer_the_first_live_tick(tmp_path, fk) -> None:
    w = LiveWorld(tmp_path / "w.duckdb", fk)
    fk.state.add_fault("Balance", status=503, times=None)
    w.intent("enter", "0.01")
    rep = _venue_tick(w).slots["active"]
    assert any("opening balances" in e for e in rep.errors) and not rep.ok
    assert w.store.starting_capital("active") is None and fk.state.calls("AddOrder") == []
    fk.state.clear_faults()
    rep = _venue_tick(w).slots["active"]
    assert rep.ok and len(rep.orders_placed) == 1
    assert w.store.starting_capital("active") == Decimal(10_000)  # LiveWorld's account


def test_runtime_gives_the_live_active_slot_the_venue_capital(tmp_path, fk,
                                                              monkeypatch) -> None:
    monkeypatch.setenv("KRAKEN_API_KEY", fp.TEST_KEY)
    monkeypatch.setenv("KRAKEN_API_SECRET", fp.TEST_SECRET)
    home = Home(tmp_path)
    live = build_runtime(home, settings=live_settings(fk))
    assert executor_slots(live, {})["active"].venue_capital
    paper = build_runtime(home, settings=live_settings(fk).model_copy(
        update={"execution": "paper"}))
    assert not executor_slots(paper, {})["active"].venue_capital


class _FiresOnCancel:
    """The venue, except that the stop-loss triggers just before the first cancel arrives (a
    protective sell fills while the executor is clearing the way for an exit)."""

    def __init__(self, ex: Any, fk: FakeKraken) -> None:
        self._ex, self._fk, self.fired = ex, fk, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ex, name)

    def cancel_order(self, **kw: Any) -> bool:
        if not self.fired:
            self.fired = bool(fp.set_price(self._fk.state, "XBTUSD", "29000"))
        return self._ex.cancel_order(**kw)


def test_exit_is_not_sent_when_a_protective_order_filled_meanwhile(tmp_path, fk) -> None:
    w = LiveWorld(tmp_path / "w.duckdb", fk)
    iid = w.intent("enter", "0.01", sl=0.02, tp=0.03)
    entry = derive_client_order_id(iid)
    sl, tp = (derive_client_order_id(entry, s) for s in ("sl", "tp"))
    w.tick()
    w.tick()  # filled, the stop armed
    xid = w.intent("exit", "0.01")
    w.ex = _FiresOnCancel(w.ex, fk)  # type: ignore[assignment]
    rep = w.tick()
    assert w.ex.fired and w.adds(derive_client_order_id(xid)) == []  # never sent
    (closed,) = w.store.positions("active", status="closed")  # the stop's fill, this tick
    assert closed.exit_reason == "stop_loss" and closed.sold_qty == Decimal("0.01")
    assert (w.store.order(sl).state, w.store.order(tp)) == ("filled", None)
    assert w.status(xid) == "pending"
    r = rep.slots["active"]
    assert r.invariant is not None and r.invariant.ok and r.mismatches == []
    rep = w.tick()  # the exit finds no position any more
    assert rep.slots["active"].intents_rejected == {xid: "no_position"}
    assert w.status(xid) == "rejected" and w.adds(derive_client_order_id(xid)) == []
    assert rep.invariant_ok


def _kill_intent(w: LiveWorld, qty: str) -> str:
    """An exit intent as `trading-brain kill` writes it (commands/control.py)."""
    now = w.clock.now()
    iid = intent_id_for("kill", 1, "active", "BTC/USD", now, "exit")
    scan = dict(scan_id=f"kill-{now:%Y%m%dT%H%M%S}", bar_time=now, started_at=now,
                duration_ms=0.0, symbols=1, signals=0, intents=1, rejected=0,
                details={"kill": True, "slot": "active"})
    w.store.record_scan(scan, [], [OrderIntent(
        intent_id=iid, scan_id=scan["scan_id"], strategy_id="kill", version=1, slot="active",
        symbol="BTC/USD", bar_time=now, action="exit", quantity=Decimal(qty),
        reference_price=Decimal("30300"), created_at=now)])
    return iid


def test_a_kill_exit_is_an_order_of_purpose_kill_and_closes_with_reason_kill(tmp_path,
                                                                             fk) -> None:
    w = LiveWorld(tmp_path / "w.duckdb", fk)
    w.intent("enter", "0.01")
    w.tick()
    fk.state.private.fill_market = False  # the kill's sell rests: it is pending meanwhile
    kid = _kill_intent(w, "0.01")
    kcid = derive_client_order_id(kid)
    w.tick()
    row = w.store.order(kcid)
    assert (row.purpose, row.side, row.quantity) == ("kill", "sell", Decimal("0.01"))
    (pending,) = w.store.portfolio_view("active", {"BTC/USD": Decimal(30300)}).pending
    assert (pending.intent_id, pending.action, pending.qty) == (kid, "exit", Decimal("0.01"))
    again = _kill_intent(w, "0.01")  # a second kill while the first sell is open: refused
    assert w.tick().slots["active"].intents_rejected == {again: "duplicate_pending"}
    fp.fill(fk.state, kcid, None, "30000")
    rep = w.tick()
    (closed,) = w.store.positions("active", status="closed")
    assert closed.exit_reason == "kill" and w.status(kid) == "done"
    assert w.store.order(kcid).state == "filled" and rep.invariant_ok


def test_an_unconfirmed_cancel_holds_the_exit_until_a_later_tick(tmp_path, fk) -> None:
    w = LiveWorld(tmp_path / "w.duckdb", fk)
    iid = w.intent("enter", "0.01", sl=0.02, tp=0.03)
    sl = derive_client_order_id(derive_client_order_id(iid), "sl")
    w.tick()
    w.tick()
    xid = w.intent("exit", "0.01")
    xcid = derive_client_order_id(xid)
    fk.state.add_fault("CancelOrder", status=503, times=None)
    rep = w.tick().slots["active"]
    assert any("before exit" in e for e in rep.errors)
    assert w.adds(xcid) == [] and w.status(xid) == "pending"  # not sent, not lost
    assert w.store.order(xcid) is None and w.store.order(sl).state == "open"
    fk.state.clear_faults()
    w.tick()
    assert len(w.adds(xcid)) == 1 and w.store.order(sl).state == "canceled"
    w.tick()
    assert w.status(xid) == "done" and w.store.positions("active") == []
