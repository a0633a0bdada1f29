"""Standalone trading asset checks (runnable from the UI; pool ``warehouse``, resource ``tb``).

ERROR, and they stop new entries by halting the failing slots in the risk state (see
``engine/trading_checks.py``; a passing check never resumes — a human runs
``trading-brain resume``):
- ``portfolio_reconciled`` on ``portfolio``: ledger invariant of every slot to the cent, and in
  live mode (``execution = "kraken"``) the active slot's cash and holdings against the venue;
- ``drawdown_within_limit`` on ``portfolio``: drawdown from the persisted peak below
  ``settings.risk.drawdown_halt_pct``;
Stale data is ``candles_5m_fresh`` (``defs/market/checks.py``, evaluated in every scan's
``candles_5m`` step; it halts every slot through ``stop_entries`` below).
WARN (report only): ``risk_halt_active`` on ``portfolio``, ``signal_drought`` on ``scan_signals``.

Checks on ``scan_signals`` also run inside every ``scan_job`` run (selecting
an asset selects its checks); the ``portfolio`` checks run when selected (UI, a job, a schedule).
None is blocking: failure stops entries through the halt, not by skipping steps.
``portfolio_reconciled`` and ``drawdown_within_limit`` are also evaluated by the executor sensor
with each ``portfolio`` event (``evaluate_portfolio``, ``portfolio.py``), so the latest
materialization always carries its own check results.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

import dagster as dg

from trading_brain.app.runtime import Runtime, build_exchange
from trading_brain.defs.market.checks import to_result
from trading_brain.defs.resources import WAREHOUSE_POOL as POOL
from trading_brain.defs.resources import TradingBrainResource
from trading_brain.domain.risk import RiskState
from trading_brain.engine import trading_checks as tc
from trading_brain.engine.executor.book import slot_invariant
from trading_brain.engine.executor.report import SlotReport
from trading_brain.engine.market_checks import CheckOutcome
from trading_brain.engine.valuation import Mismatch, reconcile_balances

WARN = dg.AssetCheckSeverity.WARN


def stop_entries(rt: Runtime, check: str, outcome: CheckOutcome, slots: list[str],
                 now: datetime) -> list[str]:
    """Halt ``slots`` because ``check`` failed; returns the slots halted now (not before)."""
    halted: list[str] = []
    store = rt.store
    with store.session():
        for slot in slots:
            state = store.load_risk_state(slot) or RiskState()
            new, events = tc.halt_for_check(state, check, outcome.description, now)
            if events:
                store.save_risk_state(slot, new, now)
                store.record_risk_events(slot, events)
                halted.append(slot)
    return halted


def _result(rt: Runtime, check: str, evaluation: tc.Evaluation, now: datetime,
            severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckResult:
    outcome, failing = evaluation
    if not outcome.passed and severity == dg.AssetCheckSeverity.ERROR and failing:
        halted = stop_entries(rt, check, outcome, failing, now)
        outcome.metadata["halted_now"] = ", ".join(halted) or "none (already halted)"
    return to_result(check, outcome, severity)


def _marks(rt: Runtime, symbols: set[str]) -> dict[str, Decimal]:
    if not symbols:
        return {}
    return {s: Decimal(repr(float(t.last))) for s, t in rt.market.tickers(sorted(symbols)).items()}


def _venue_mismatches(rt: Runtime, slot: str) -> list[Mismatch]:
    """Venue balances minus the coins held before the bot's first tick vs the ledger; nothing
    to compare before that first tick opened the live book (no deposit yet)."""
    from trading_brain.engine.executor.book import baseline_of
    from trading_brain.engine.executor.reconcile import without_baseline

    pairs = rt.store.read_asset_pairs()
    with rt.store.session():
        if rt.store.starting_capital(slot) is None:
            return []
        baseline = baseline_of(rt.store, slot)
    venue = without_baseline(build_exchange(rt, slot, pairs).balances(), baseline)
    with rt.store.session():
        cash = rt.store.cash_balance(slot)
        holdings = {(pairs[p.symbol].base if p.symbol in pairs else p.symbol.split("/")[0]):
                    p.quantity for p in rt.store.positions(slot)}
    return reconcile_balances(cash, holdings, venue)


def evaluate_portfolio(rt: Runtime, slots: Mapping[str, SlotReport], now: datetime
                       ) -> list[dg.AssetCheckEvaluation]:
    """``portfolio_reconciled`` and ``drawdown_within_limit`` on one executor tick's figures
    (its invariants, venue mismatches and snapshot equities), as evaluations the executor
    sensor reports with the ``portfolio`` event they describe; failures halt like the
    scheduled checks."""
    invariants = {s: r.invariant for s, r in slots.items() if r.invariant is not None}
    mismatches = {s: r.mismatches for s, r in slots.items()}
    live = rt.settings.execution == "kraken"
    equities = {s: r.snapshot.equity for s, r in slots.items() if r.snapshot is not None}
    with rt.store.session():
        states = {s: rt.store.load_risk_state(s) for s in equities}
    results = [
        _result(rt, "portfolio_reconciled",
                tc.portfolio_reconciled(invariants, mismatches, live), now),
        _result(rt, "drawdown_within_limit", tc.drawdown_within_limit(
            states, equities, rt.risk_limits.drawdown_halt_pct), now)]
    return [dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey("portfolio"), check_name=str(r.check_name), passed=r.passed,
        metadata=r.metadata, severity=r.severity, description=r.description) for r in results]


@dg.asset_check(asset="portfolio", name="portfolio_reconciled", pool=POOL,
                description="ERROR: ledger invariant to the cent per slot; live: balances match "
                            "the venue. Failure halts the slot's entries.")
def portfolio_reconciled(tb: TradingBrainResource) -> dg.AssetCheckResult:
    rt = tb.runtime
    now, store = rt.clock.now(), rt.store
    with store.session():
        slots = store.known_slots()
        held = {s: {p.symbol for p in store.positions(s)} for s in slots}
    marks = _marks(rt, set().union(*held.values()))
    invariants = {s: slot_invariant(store, s, marks) for s in slots}
    live = rt.settings.execution == "kraken"
    mismatches = {"active": _venue_mismatches(rt, "active")} if live else {}
    return _result(rt, "portfolio_reconciled", tc.portfolio_reconciled(invariants, mismatches,
                                                                       live), now)


@dg.asset_check(asset="portfolio", name="drawdown_within_limit", pool=POOL,
                description="ERROR: drawdown from the persisted peak below "
                            "risk.drawdown_halt_pct. Failure halts the slot's entries.")
def drawdown_within_limit(tb: TradingBrainResource) -> dg.AssetCheckResult:
    rt = tb.runtime
    with rt.store.session():
        equities = rt.store.latest_equity()
        states = {s: rt.store.load_risk_state(s) for s in equities}
    return _result(rt, "drawdown_within_limit", tc.drawdown_within_limit(
        states, equities, rt.risk_limits.drawdown_halt_pct), rt.clock.now())


@dg.asset_check(asset="portfolio", name="risk_halt_active", pool=POOL,
                description="WARN while a slot is halted or its kill switch is on, with why.")
def risk_halt_active(tb: TradingBrainResource) -> dg.AssetCheckResult:
    rt = tb.runtime
    with rt.store.session():
        states = {s: rt.store.load_risk_state(s) for s in rt.store.known_slots()}
    return to_result("risk_halt_active", tc.risk_halt_active(states)[0], WARN)


@dg.asset_check(asset="scan_signals", name="signal_drought", pool=POOL,
                description=f"WARN: no entry signal in {tc.DROUGHT_HOURS:g} h of scans (at least "
                            f"{tc.DROUGHT_MIN_SCANS} scans).")
def signal_drought(tb: TradingBrainResource) -> dg.AssetCheckResult:
    rt = tb.runtime
    with rt.store.session():
        scans, entries = rt.store.drought_figures(rt.clock.now(), tc.DROUGHT_HOURS)
    return to_result("signal_drought", tc.signal_drought(scans, entries)[0], WARN)


trading_checks = [portfolio_reconciled, drawdown_within_limit, risk_halt_active, signal_drought]

# The portfolio's checks run on their own every 5 minutes (offset from the scan), so a broken
# ledger or a deep drawdown halts entries without anyone opening the UI.
portfolio_checks_job = dg.define_asset_job(
    "portfolio_checks_job",
    selection=dg.AssetSelection.checks(portfolio_reconciled, drawdown_within_limit,
                                       risk_halt_active),
    description="Ledger invariant/venue reconciliation, drawdown and halt checks.")

portfolio_checks_schedule = dg.ScheduleDefinition(
    name="portfolio_checks_schedule", job=portfolio_checks_job, cron_schedule="2-59/5 * * * *",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)
