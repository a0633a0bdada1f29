"""Halt, resume and kill: the human controls of a home (what `trading-brain halt | resume | kill`
run), and the per-slot halts `status` shows.

- ``halt(rt, slots, reason)``: a manual halt (``risk_state.halt``) on each slot: no new
  entries; exits and stops still pass.
- ``resume(rt, slots, reason)``: clears every halt *and* the kill switch; the current equity
  (newest snapshot, else ledger cash) becomes the new peak and day start. Halts set by failed
  ERROR checks (reason ``check:<name>: …``) are only ever cleared here.
- ``kill_all(rt, slots, reason, attempts, wait_s)``: (1) the kill switch goes on first (no new
  entries); (2) pending entry intents are cancelled and open entry orders are cancelled at the
  venue; (3) one exit intent per open position (``engine.risk.exit_all``; ids
  ``intent_id_for("kill", 1, slot, symbol, now, "exit")``, stored as scan ``kill-<time>``);
  (4) executor ticks run in-process (``runtime.executor_slots`` + ``run_tick``) until every
  position is closed by a recorded fill, or ``attempts`` ticks passed (``wait_s`` seconds
  apart; a pinned ``SimClock`` is advanced by max(wait, 60 s) instead of sleeping). A venue
  error while cancelling is reported, not fatal. Not flat afterwards: ``flat`` is False and the
  kill switch stays on. Protective stop orders are cancelled by the executor (confirmed by a
  lookup) before each exit sell on a live venue, or once their position is closed;
  ``cancelled_orders`` lists every order cancelled at the venue — the entries cancelled in step
  (2) and the cancels the executor's ticks confirmed (stops). Alerts the ticks raise go
  through ``rt.notifier`` once per key (``trading_brain.app.alerts.emit``). A position
  closed by the sell of a kill exit intent gets ``exit_reason = "kill"`` from the executor
  itself (the order's purpose is ``kill``); one closed by a stop/take-profit order keeps its
  reason.
Alerts (``app.alerts.emit``: recorded once per key, logged, sent by the alert sensor; a
failure never fails the command): ``halt`` -> ``risk_halt`` per slot halt, ``resume`` ->
``risk_resume``, ``kill_all`` -> ``kill`` (keys as ``engine.executor.alerts`` makes them, so
the executor's next tick does not report them again).
Each returns plain data (per slot) for the command to print; expected failures raise
``ConfigError`` (an unknown slot) or the store's errors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast, get_args

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.duckdb import Store
from trading_brain.app.runtime import Runtime
from trading_brain.domain.alerts import Alert
from trading_brain.domain.intents import Slot
from trading_brain.domain.risk import RiskEvent, RiskState
from trading_brain.errors import ConfigError, TemporaryError
from trading_brain.ports import Exchange

if TYPE_CHECKING:
    from trading_brain.domain.records import PositionRecord

Change = Callable[[Store, str, RiskState, datetime], tuple[RiskState, list[RiskEvent]]]
AlertsOf = Callable[[str, RiskState, list[RiskEvent]], list[Alert]]


def slots_of(store: Store, slot: str | None) -> list[str]:
    """``[slot]`` after checking its name, or every slot the warehouse knows when None."""
    if slot is None:
        return store.known_slots()
    if slot not in get_args(Slot):
        raise ConfigError(f"unknown slot {slot!r}; expected one of {', '.join(get_args(Slot))}")
    return [slot]


def slot_halts(store: Store) -> dict[str, dict[str, Any]]:
    """Per slot: halted flag, halts with reasons, kill switch, peak, drawdown, equity, positions."""
    from trading_brain.engine import trading_checks as tc

    with store.session():
        equity, counts = store.latest_equity(), store.open_position_counts()
        return {s: tc.halt_status(store.load_risk_state(s), equity.get(s), counts.get(s, 0))
                for s in store.known_slots()}


def halt(rt: Runtime, slots: list[str], reason: str) -> dict[str, dict[str, bool]]:
    """A manual halt on each of ``slots``; per slot: changed, halted, kill_switch."""
    from trading_brain.engine import risk_state

    return _apply(rt, slots, lambda _s, _slot, st, now: risk_state.halt(st, reason, now),
                  _standing)


def resume(rt: Runtime, slots: list[str], reason: str) -> dict[str, dict[str, bool]]:
    """Clear every halt and the kill switch of each slot; current equity is the new peak."""
    from trading_brain.engine import risk_state

    return _apply(rt, slots, lambda store, s, st, now: (
        risk_state.resume(st, _equity(store, s), now, reason, clear_kill_switch=True)),
        _resumed)


def _standing(slot: str, state: RiskState, events: list[RiskEvent]) -> list[Alert]:
    """The slot's halts and kill switch, keyed as the executor keys them (reported once)."""
    from trading_brain.engine.executor.alerts import risk_alerts

    return risk_alerts(slot, state, [])


def _resumed(slot: str, state: RiskState, events: list[RiskEvent]) -> list[Alert]:
    e = next((e for e in events if e.kind == "resume"), None)
    if e is None:
        return []
    cleared = [str(e.details.get("cleared") or "")] + [
        "kill switch" for k in events if k.kind == "kill_switch"]
    what = ", ".join(c for c in cleared if c) or "nothing was halted"
    return [Alert(f"risk_resume:{slot}:human:{e.ts.isoformat()}", "INFO", "risk_resume", slot,
                  f"[{slot}] trading resumed ({what}): {e.reason}")]


def _equity(store: Store, slot: str) -> Decimal:
    eq = store.latest_equity().get(slot)
    return eq if eq is not None else max(store.cash_balance(slot), Decimal(0))


def _apply(rt: Runtime, slots: list[str], change: Change, alerts_of: AlertsOf | None = None
           ) -> dict[str, dict[str, bool]]:
    """Load, change and save each slot's risk state with its events (one session); then the
    alerts ``alerts_of`` makes of each change, emitted once per key (never raises)."""
    from trading_brain.app.alerts import emit

    now, store, out, alerts = rt.clock.now(), rt.store, {}, []
    with store.session():
        for slot in slots:
            state = store.load_risk_state(slot) or RiskState()
            new, events = change(store, slot, state, now)
            store.save_risk_state(slot, new, now)
            store.record_risk_events(slot, events)
            out[slot] = {"changed": bool(events), "halted": new.halted,
                         "kill_switch": new.kill_switch is not None}
            if events and alerts_of is not None:
                alerts += alerts_of(slot, new, events)
    if alerts:
        emit(store, rt.notifier, alerts, now)
    return out


def _sleeper(rt: Runtime) -> Callable[[float], None]:
    clock = rt.clock
    if not isinstance(clock, SimClock):
        return time.sleep

    def advance(seconds: float) -> None:  # a pinned clock (tests, replays) moves instead
        clock.advance(timedelta(seconds=max(seconds, 60.0)))

    return advance


def _open_positions(store: Store, slots: list[str]) -> dict[str, list[PositionRecord]]:
    with store.session():
        return {s: store.positions(s) for s in slots}


def kill_all(rt: Runtime, slots: list[str], reason: str, attempts: int = 40,
             wait_s: float = 15.0, sleep: Callable[[float], None] | None = None
             ) -> dict[str, Any]:
    """Steps (1)-(4) of the module docstring; returns what happened per slot, the ticks run,
    whether every position is closed (``flat``) and the reason."""
    from trading_brain.app.alerts import emit
    from trading_brain.app.runtime import executor_slots
    from trading_brain.engine import risk_state
    from trading_brain.engine.executor.tick import TickConfig, run_tick

    sleep = sleep or _sleeper(rt)
    _apply(rt, slots, lambda _s, _slot, st, now: risk_state.set_kill_switch(st, True, reason, now),
           _standing)
    pairs = rt.store.read_asset_pairs()
    venues = executor_slots(rt, pairs)
    report = {s: _cancel_entries(rt, s, venues[s].exchange if s in venues else None)
              for s in slots}
    before = _open_positions(rt.store, slots)
    for s in slots:
        report[s]["exit_intents"] = _exit_intents(rt, s, before[s])
    ticks, config = 0, TickConfig(local_venues=rt.market_is_local)
    while any(_open_positions(rt.store, slots).values()) and ticks < attempts:
        if ticks:
            sleep(wait_s)
        tick = run_tick(rt.store, executor_slots(rt, pairs), rt.market, rt.clock, pairs,
                        rt.risk_limits, config)
        ticks += 1
        for s in slots:  # the stops the executor cancelled (confirmed) before each exit
            done = tick.slots[s].orders_cancelled if s in tick.slots else []
            report[s]["cancelled_orders"] += [c for c in done
                                              if c not in report[s]["cancelled_orders"]]
        alerts = [a for r in tick.slots.values() for a in r.alerts]
        if alerts:  # trades closed, orders rejected…: once per key, never raises
            emit(rt.store, rt.notifier, alerts, rt.clock.now())
    after = _open_positions(rt.store, slots)
    for s in slots:
        still = {p.position_id for p in after[s]}
        report[s]["closed"] = [p.position_id for p in before[s] if p.position_id not in still]
        report[s]["open_positions"] = len(after[s])
    return {"slots": report, "ticks": ticks, "flat": not any(after.values()),
            "reason": reason}


def _cancel_entries(rt: Runtime, slot: str, exchange: Exchange | None) -> dict[str, Any]:
    """Cancel pending entry intents and open entry orders of ``slot`` at its venue."""
    store, now = rt.store, rt.clock.now()
    intents = [i for i in store.intents("pending", slot) if i.action == "enter"]
    for i in intents:
        store.set_intent_status(i.intent_id, "cancelled", now)
    cancelled, errors = [], []
    for o in store.orders(slot, open_only=True):
        if o.purpose == "entry" and exchange is not None and o.state != "submitting":
            try:  # the next tick's lookup records the venue's answer
                exchange.cancel_order(client_order_id=o.client_order_id)
                cancelled.append(o.client_order_id)
            except TemporaryError as e:
                errors.append(f"cancel {o.client_order_id}: {e}")
    return {"cancelled_intents": len(intents), "cancelled_orders": cancelled, "errors": errors}


def _exit_intents(rt: Runtime, slot: str, positions: list[PositionRecord]) -> list[str]:
    """One exit intent per open position (stored like a scan's intents; idempotent per time)."""
    from trading_brain.domain.intents import (
        KILL_STRATEGY_ID,
        IntentPurpose,
        OrderIntent,
        intent_id_for,
    )
    from trading_brain.engine.risk import exit_all

    if not positions:
        return []
    now, store = rt.clock.now(), rt.store
    marks = {s: Decimal(repr(float(t.last)))
             for s, t in rt.market.tickers(sorted({p.symbol for p in positions})).items()}
    qty = {p.symbol: p.quantity for p in positions}
    scan_id = f"kill-{now:%Y%m%dT%H%M%S}"
    intents = [OrderIntent(
        intent_id=intent_id_for(KILL_STRATEGY_ID, 1, slot, p.symbol, now, "exit"),
        scan_id=scan_id, strategy_id=KILL_STRATEGY_ID, purpose=IntentPurpose.KILL, version=1,
        slot=cast(Slot, slot), symbol=p.symbol, bar_time=now, action="exit",
        quantity=qty[p.symbol], reference_price=p.price, created_at=now)
        for p in exit_all(store.portfolio_view(slot, marks), marks, "kill", slot)]
    scan = dict(scan_id=scan_id, bar_time=now, started_at=now, duration_ms=0.0,
                symbols=len(intents), signals=0, intents=len(intents), rejected=0,
                details={"kill": True, "slot": slot})
    store.record_scan(scan, [], intents)
    return [i.intent_id for i in intents]
