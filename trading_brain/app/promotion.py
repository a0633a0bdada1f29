"""Gate 4 and after (DESIGN §8, issue 11): shadow paper tests, promotion, cancel, rollback.

Rules (pure parts in ``engine/evolution/paper.py``). ``trading`` is the store of the trading
tables (risk states, positions, intents; default ``rt.store``; ``simulate`` passes its book);
the registry and the evolution tables are always ``rt.store``.

- ``shadow_assignments(store)``: (slot, strategy_id, version) of each candidate holding a shadow
  slot — what the scan runs beside the active slot (``app.scan.shadow_slots``). Shadow slots
  trade on paper only (``runtime.build_exchange``), with their own ``starting_cash`` deposit
  and ledger.
- ``start_paper_tests(rt, now)``: each ``candidate`` without a test takes a free slot (at most
  ``[evolution] max_candidates``; oldest candidate first); its ``paper_tests`` row records the
  tier (from the version's reason ``tier N: …``), ``min_until`` by tier, ``min_trades`` and the
  baseline. A shadow slot holding positions no candidate owns any more is flattened first
  (one exit intent per position; the executor sells on paper).
- ``evaluate_paper_tests(rt, now)``: each running test, candidate slot vs ``active`` over the
  same period (``paper.verdict``); a pending rollback trigger in a candidate's slot fails it.
- ``promote(rt, ref, now)``: only a ``candidate`` whose test ``passed``, and only when the risk
  shell agrees (``paper.shell_agrees`` over the active and the candidate's slot). Through the
  registry's deployments (``set_active_version`` action ``promote``); the old version becomes
  ``retired`` (never deleted); a pending ``promotion_reviews`` row is written (id ``ID@V``); its
  slot is freed and flattened; the active slot's losing streak restarts at 0 (the rollback
  trigger judges the promoted version's own trades, ``risk_state.new_deployment``); alert
  ``candidate_promoted``. ``ConfigError`` says why not.
- ``cancel(rt, ref, now)``: a ``candidate`` becomes ``cancelled``, its running test too, its
  slot is freed and flattened; alert ``candidate_cancelled``.
- ``apply_decision(rt, now)``: the ``deployments`` step: tonight's decision (``evolution_cycles``)
  asking ``promote_candidate`` is carried out through ``promote``; a refusal is returned, not
  raised (the shell disposes).
- ``auto_rollback(rt, now)``: a pending rollback trigger of the ``active`` slot reverts the
  deployment to the previous version (``registry.rollback`` action ``auto_rollback``), marks the
  reverted version ``rolled_back`` with the trigger as its reason, clears the trigger
  (``risk_state.clear_rollback``) and alerts ``rollback``. Nothing to revert to: the trigger is
  cleared with that reason and alerted. Run by the executor's use case after each tick
  (``app.execute``): the triggers fire in the executor (closes) and the scan (equity), and the
  executor runs every ~15 s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from trading_brain.adapters.duckdb import Store
from trading_brain.app.alerts import emit
from trading_brain.app.notify import Alert
from trading_brain.app.runtime import Runtime
from trading_brain.domain.intents import OrderIntent, Slot, intent_id_for
from trading_brain.engine import registry
from trading_brain.engine.evolution import paper
from trading_brain.engine.risk_state import clear_rollback, new_deployment
from trading_brain.errors import ConfigError
from trading_brain.ports import TradingStore

_TIER = re.compile(r"^tier ([123])\b")


def min_days(rt: Runtime) -> dict[int, float]:
    es = rt.settings.evolution
    return {1: es.paper_days_tier1, 2: es.paper_days_tier2, 3: es.paper_days_tier3}


def _statuses(store: Store) -> dict[tuple[str, int], str]:
    return {(r["strategy_id"], int(r["version"])): str(r["status"])
            for r in store.strategy_versions()}


def tenants(store: Store) -> dict[str, paper.Tenant]:
    """Slot -> the candidate holding it."""
    return paper.holding(store.evolution_rows("paper_tests"), _statuses(store))


def shadow_assignments(store: Store) -> list[tuple[str, str, int]]:
    """(slot, strategy_id, version) of the candidates in paper test (module docstring)."""
    return [(t.slot, t.strategy_id, t.version) for _, t in sorted(tenants(store).items())]


def _tier(row: Mapping[str, Any]) -> int:
    """The candidate's tier from its reason (``tier N: …``, as ``app.evolve`` writes it)."""
    m = _TIER.match(str(row.get("reason") or "")) or \
        _TIER.match(str(row.get("status_reason") or ""))
    return int(m.group(1)) if m else 1


def _marks(rt: Runtime, now: datetime) -> dict[str, Decimal]:
    """The newest 5m close of each symbol at ``now`` (from the warehouse)."""
    from datetime import timedelta

    got = rt.store.read_candles(rt.settings.symbols, "5m", now - timedelta(days=3), now)
    out: dict[str, Decimal] = {}
    for (sym,), part in got.sort("ts").partition_by("symbol", as_dict=True).items():
        out[str(sym)] = Decimal(repr(float(part["close"][-1])))
    return out


def slot_equity(rt: Runtime, trading: TradingStore, slot: str, now: datetime) -> float:
    """The slot's equity now (its ledger marked at the newest closes; ``starting_cash`` before
    its first deposit)."""
    if trading.starting_capital(slot) is None:
        return float(rt.settings.starting_cash)
    return float(trading.portfolio_view(slot, _marks(rt, now)).equity)


def flatten(rt: Runtime, trading: TradingStore, slot: str, now: datetime) -> list[str]:
    """One exit intent per open position of a shadow slot (idempotent per ``now``)."""
    if slot == "active":
        raise ConfigError("flatten is for shadow slots only")
    positions = trading.positions(slot)
    marks = _marks(rt, now)
    intents = [OrderIntent(
        intent_id=intent_id_for(p.strategy_id, p.version, slot, p.symbol, now, "exit"),
        scan_id=f"release-{slot}-{now:%Y%m%dT%H%M%S}", strategy_id=p.strategy_id,
        version=p.version, slot=cast(Slot, slot), symbol=p.symbol, bar_time=now,
        action="exit", quantity=p.quantity,
        reference_price=marks.get(p.symbol, p.entry_price), created_at=now)
        for p in positions if p.quantity > 0]
    if intents:
        trading.record_intents(intents)
    return [i.intent_id for i in intents]


def start_paper_tests(rt: Runtime, now: datetime, trading: TradingStore | None = None,
                      cycle_id: str | None = None) -> list[dict[str, Any]]:
    """Give free shadow slots to the candidates waiting for one (module docstring)."""
    trading = trading or rt.store
    es, store = rt.settings.evolution, rt.store
    rows = store.strategy_versions()
    statuses = {(r["strategy_id"], int(r["version"])): str(r["status"]) for r in rows}
    tests = store.evolution_rows("paper_tests")
    held = paper.holding(tests, statuses)
    busy = trading.busy_slots()
    for slot in sorted(busy & set(paper.SHADOW_SLOTS) - set(held)):
        flatten(rt, trading, slot, now)
    tested = {(t["strategy_id"], int(t["version"])) for t in tests}
    waiting = sorted((r for r in rows if r["status"] == "candidate"
                      and (r["strategy_id"], int(r["version"])) not in tested),
                     key=lambda r: (r.get("status_changed_at") or r["created_at"],
                                    r["strategy_id"], r["version"]))
    free = paper.free_slots(held, busy, es.max_candidates)
    active = store.active_version()
    incumbent = f"{active[0]}@{active[1]}" if active else ""
    started = []
    for row, slot in zip(waiting, free, strict=False):
        equity = {"active": slot_equity(rt, trading, "active", now),
                  slot: slot_equity(rt, trading, slot, now)}
        test = paper.new_test(row["strategy_id"], int(row["version"]), slot, _tier(row), now,
                              min_days=min_days(rt), min_trades=es.min_trades,
                              incumbent=incumbent, start_equity=equity, cycle_id=cycle_id)
        if store.save_evolution_row("paper_tests", test):
            started.append(test)
    return started


def _stats(rt: Runtime, test: Mapping[str, Any], now: datetime
           ) -> tuple[paper.PaperStats, paper.PaperStats]:
    from trading_brain.adapters.duckdb.benchmark_sql import compute
    from trading_brain.engine.evolution.benchmarks import nested

    since = test["started_at"]
    with rt.store.connect() as con:
        bench = nested(compute(con, now, since))
    base = (test.get("metrics") or {}).get("start_equity") or {}

    def of(slot: str) -> paper.PaperStats:
        m = (bench.get(slot) or {}).get("slot") or {}
        return paper.slot_return(since, m.get("trades"), m.get("net_pnl"), base.get(slot))

    return of(str(test["slot"])), of("active")


def evaluate_paper_tests(rt: Runtime, now: datetime, trading: TradingStore | None = None
                         ) -> list[dict[str, Any]]:
    """Judge every running test (module docstring); returns one row per test looked at."""
    trading = trading or rt.store
    es, store = rt.settings.evolution, rt.store
    active = store.active_version()
    incumbent_now = f"{active[0]}@{active[1]}" if active else None
    out = []
    for t in store.evolution_rows("paper_tests", {"status": "running"}):
        cand, act = _stats(rt, t, now)
        start = t.get("metrics") or {}
        v = paper.verdict(cand, act, tier=int(t["tier"]), now=now, min_days=min_days(rt),
                          min_trades=int(t["min_trades"]), stale_days=es.stale_days,
                          incumbent_then=str(start.get("incumbent") or ""),
                          incumbent_now=incumbent_now)
        status, reason = v.status, v.reason
        state = trading.load_risk_state(str(t["slot"]))
        if status is None and state is not None and state.rollback is not None:
            status, reason = "failed", f"the risk shell's rollback trigger fired in the " \
                                       f"candidate's slot: {state.rollback.detail}"
            new, events = clear_rollback(state, now, f"paper test {t['test_id']} failed")
            trading.save_risk_state(str(t["slot"]), new, now)
            trading.record_risk_events(str(t["slot"]), events)
        metrics = {**start, **v.gate.metrics}
        if status is not None:
            store.finish_paper_test(t["test_id"], status, now, reason, metrics)
        out.append({"test_id": t["test_id"], "status": status or "running", "reason": reason,
                    **v.gate.metrics})
    return out


@dataclass
class Promotion:
    ref: str
    incumbent: str
    slot: str
    reason: str
    exits: list[str] = field(default_factory=list)


def _candidate(store: Store, ref: str) -> tuple[str, int, dict[str, Any]]:
    sid, ver = registry.parse_ref(ref)
    row = store.strategy_version(sid, ver) if ver is not None else None
    if row is None:
        raise ConfigError(f"unknown strategy version {ref!r} (expected ID@VERSION)")
    if row["status"] != "candidate":
        raise ConfigError(f"{sid}@{ver} is {row['status']}, not a candidate")
    return sid, int(row["version"]), row


def _alert(rt: Runtime, kind: str, key: str, subject: str, text: str, now: datetime,
           level: str = "INFO") -> None:
    emit(rt.store, rt.notifier,
         [Alert(key=key, level=level, kind=kind, subject=subject, text=text)], now)


def promote(rt: Runtime, ref: str, now: datetime, reason: str = "",
            trading: TradingStore | None = None) -> Promotion:
    """Promote a candidate whose paper test passed (module docstring)."""
    trading = trading or rt.store
    store = rt.store
    sid, ver, _row = _candidate(store, ref)
    ref = f"{sid}@{ver}"
    tests = store.evolution_rows("paper_tests", {"strategy_id": sid, "version": ver},
                                 order="started_at")
    if not tests or tests[-1]["status"] != "passed":
        state = tests[-1]["status"] if tests else "not started"
        raise ConfigError(f"{ref}: its paper test is {state}; only a passed test promotes")
    test = tests[-1]
    slot = str(test["slot"])
    ok, why = paper.shell_agrees({"active": trading.load_risk_state("active"),
                                  slot: trading.load_risk_state(slot)})
    if not ok:
        raise ConfigError(f"{ref}: the risk shell refuses the promotion: {why}")
    active = store.active_version()
    if active is None:
        raise ConfigError("no active version to replace")
    incumbent = f"{active[0]}@{active[1]}"
    text = reason or f"paper test {test['test_id']}: {test.get('reason') or 'passed'}"
    store.set_active_version(sid, ver, "promote", text[:500], now)
    _reset_streak(trading, ref, now)
    store.set_version_status(active[0], active[1], "retired", f"replaced by {ref}", now)
    store.set_version_status(sid, ver, "active", f"promoted: {text}"[:500], now)
    store.save_evolution_row("promotion_reviews", {
        "promotion_id": ref, "strategy_id": sid, "version": ver,
        "incumbent_strategy_id": active[0], "incumbent_version": active[1],
        "promoted_at": now, "verdict": "pending", "details": {"paper_test": test["test_id"]}})
    exits = flatten(rt, trading, slot, now)
    _alert(rt, "candidate_promoted", f"promote:{ref}", ref,
           f"{ref} promoted over {incumbent}: {text}", now)
    return Promotion(ref, incumbent, slot, text, exits)


def _reset_streak(trading: TradingStore, ref: str, now: datetime) -> None:
    """The active slot's losing streak belongs to the version just replaced (risk_state)."""
    state = trading.load_risk_state("active")
    if state is None:
        return
    new, events = new_deployment(state, now, ref)
    if events:
        trading.save_risk_state("active", new, now)
        trading.record_risk_events("active", events)


def cancel(rt: Runtime, ref: str, now: datetime, reason: str = "cancelled",
           trading: TradingStore | None = None) -> list[str]:
    """Cancel a candidate and free its slot; returns the exit intents written."""
    trading = trading or rt.store
    store = rt.store
    sid, ver, _row = _candidate(store, ref)
    store.set_version_status(sid, ver, "cancelled", reason[:500], now)
    exits: list[str] = []
    for t in store.evolution_rows("paper_tests", {"strategy_id": sid, "version": ver}):
        store.finish_paper_test(t["test_id"], "cancelled", now, reason)
        exits += flatten(rt, trading, str(t["slot"]), now)
    _alert(rt, "candidate_cancelled", f"cancel:{sid}@{ver}", f"{sid}@{ver}",
           f"{sid}@{ver} cancelled: {reason}", now)
    return exits


def tonights_decision(rt: Runtime, now: datetime) -> dict[str, Any] | None:
    """The decision of tonight's cycle (None before it decided)."""
    from trading_brain.adapters.duckdb.evolution_tables import cycle_id_for
    from trading_brain.app.evolve.cycle import night_of

    rows = rt.store.evolution_cycles(cycle_id_for(night_of(now, rt.settings.evolution),
                                                  str(rt.home.root)))
    return rows[0].get("decision") if rows else None


def apply_decision(rt: Runtime, now: datetime, trading: TradingStore | None = None
                   ) -> dict[str, Any]:
    """The deployments step (module docstring): what happened, as data."""
    d = tonights_decision(rt, now) or {}
    if d.get("action") != "promote_candidate":
        return {"action": d.get("action") or "none", "promoted": None,
                "outcome": "no promotion asked tonight"}
    target = str(d.get("target") or "")
    try:
        p = promote(rt, target, now, f"{d.get('reasoning') or ''}"[:500], trading)
    except ConfigError as e:
        return {"action": "promote_candidate", "promoted": None, "outcome": f"refused: {e}"}
    return {"action": "promote_candidate", "promoted": p.ref, "incumbent": p.incumbent,
            "outcome": f"{p.ref} promoted over {p.incumbent}"}


def auto_rollback(rt: Runtime, now: datetime, trading: TradingStore | None = None
                  ) -> str | None:
    """Act on a pending rollback trigger of the active slot (module docstring); returns what
    was done (None: no trigger)."""
    trading = trading or rt.store
    state = trading.load_risk_state("active")
    if state is None or state.rollback is None:
        return None
    trig, store = state.rollback, rt.store
    why = f"rollback trigger {trig.reason}: {trig.detail}"
    active = store.active_version()
    try:
        sid, ver = registry.rollback(store, why, action="auto_rollback", at=now)
    except ConfigError as e:
        done = f"{why}; not reverted: {e}"
    else:
        if active is not None:
            store.set_version_status(active[0], active[1], "rolled_back", why[:500], now)
        store.set_version_status(sid, ver, "active", f"restored by auto rollback ({why})"[:500],
                                 now)
        old = f"{active[0]}@{active[1]}" if active else "none"
        done = f"{why}; reverted {old} to {sid}@{ver}"
    new, events = clear_rollback(state, now, done[:300])
    trading.save_risk_state("active", new, now)
    trading.record_risk_events("active", events)
    _alert(rt, "rollback", f"rollback:{trig.since.isoformat()}", "active", done, now, "WARN")
    return done

