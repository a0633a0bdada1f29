"""Pure evaluations behind the trading asset checks, and the halt they impose (DESIGN §5, §6).

Each evaluation returns ``(CheckOutcome, failing_slots)``; the Dagster layer
(``defs/trading/checks.py``) gathers the figures, turns the outcome into an ``AssetCheckResult``
and, for the ERROR checks, halts the failing slots. Rules, with their boundaries:

- ``portfolio_reconciled`` (ERROR): every slot's ledger invariant holds to the cent
  (``engine.valuation.check_invariant`` over every stored cash entry and fill: the full check,
  while the executor tick checks the same figures from warehouse totals, ``check_totals``)
  and, in live mode, cash and holdings match the venue's
  balances (``reconcile_balances``; the venue is the truth). Any problem fails its slot.
- ``drawdown_within_limit`` (ERROR): per slot, ``(peak - equity) / peak < limit`` where ``peak``
  is the persisted ``RiskState.peak_equity`` (raised to the current equity if lower) and equity
  the newest snapshot; at or beyond the limit fails (inclusive, like the risk shell).
- ``data_fresh`` (ERROR, the Dagster check ``candles_5m_fresh``): ``engine.market_checks.freshness``
  (newest 5m candle closed <= 15 min ago while the market is live; a replayed market is never
  stale).
- ``risk_halt_active`` (WARN): any slot halted (manual, daily loss, drawdown) or kill switch on.
- ``signal_drought`` (WARN): no entry signal in the scans of the last ``DROUGHT_HOURS`` (24 h)
  once at least ``DROUGHT_MIN_SCANS`` (12, one hour of 5-minute scans) ran in that window.
  Fewer scans pass ("not enough scans"): missing scans are the freshness check's business.

Stopping new entries: a failed ERROR check halts each failing slot through the risk state
(``halt_for_check`` = ``risk_state.halt`` with reason ``"check:<name>: <detail>"``), so the risk
shell and the executor refuse entries while exits and stops still pass. A passing check never
resumes: a human runs ``trading-brain resume`` after looking at the cause.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from trading_brain.domain.risk import RiskState
from trading_brain.engine import market_checks
from trading_brain.engine.market_checks import CheckMeta, CheckOutcome
from trading_brain.engine.risk_state import Result, halt
from trading_brain.engine.valuation import InvariantReport, Mismatch

ERROR_CHECKS = ("portfolio_reconciled", "drawdown_within_limit", "candles_5m_fresh")
WARN_CHECKS = ("risk_halt_active", "signal_drought")
DROUGHT_HOURS = 24.0
DROUGHT_MIN_SCANS = 12
Evaluation = tuple[CheckOutcome, list[str]]


def portfolio_reconciled(invariants: Mapping[str, InvariantReport],
                         mismatches: Mapping[str, Sequence[Mismatch]] | None = None,
                         live: bool = False) -> Evaluation:
    """Fails each slot whose ledger invariant is broken or whose balances differ from the venue."""
    mismatches = mismatches or {}
    problems: dict[str, list[str]] = {}
    for slot in sorted(set(invariants) | set(mismatches)):
        found = list(invariants[slot].problems) if slot in invariants else []
        found += [f"venue {m}" for m in mismatches.get(slot, ())]
        if found:
            problems[slot] = found
    meta: CheckMeta = {
        "slots": ", ".join(sorted(invariants)) or "none", "live_balances_checked": live,
        "failing_slots": ", ".join(sorted(problems)) or "none",
        "problems": "; ".join(f"{s}: {p}" for s, ps in problems.items() for p in ps) or "none"}
    if problems:
        first = next(iter(problems.items()))
        return CheckOutcome(False, f"{len(problems)} slot(s) not reconciled; {first[0]}: "
                                   f"{first[1][0]}", meta), sorted(problems)
    what = "ledger invariant and venue balances hold" if live else "ledger invariant holds"
    return CheckOutcome(True, f"{what} for {len(invariants)} slot(s)", meta), []


def drawdown(state: RiskState | None, equity: Decimal) -> tuple[float, Decimal]:
    """(drawdown fraction, peak) of ``equity`` against the persisted peak."""
    peak = equity if state is None or state.peak_equity is None else max(state.peak_equity,
                                                                          equity)
    return (float((peak - equity) / peak) if peak > 0 else 0.0), peak


def drawdown_within_limit(states: Mapping[str, RiskState | None],
                          equities: Mapping[str, Decimal], limit: float) -> Evaluation:
    """Fails each slot whose drawdown from the persisted peak is at or beyond ``limit``."""
    figures = {s: drawdown(states.get(s), e) for s, e in sorted(equities.items())}
    failing = [s for s, (dd, _) in figures.items() if dd >= limit]
    meta: CheckMeta = {
        "limit": limit, "max_drawdown": max((dd for dd, _ in figures.values()), default=0.0),
        "drawdowns": ", ".join(f"{s}: {dd:.2%} of {peak}" for s, (dd, peak) in figures.items())
        or "none", "failing_slots": ", ".join(failing) or "none"}
    if failing:
        s = failing[0]
        return CheckOutcome(False, f"drawdown {figures[s][0]:.2%} on {s} from peak "
                                   f"{figures[s][1]} (limit {limit:.0%})", meta), failing
    return CheckOutcome(True, f"drawdown within {limit:.0%} on {len(figures)} slot(s)", meta), []


def data_fresh(latest: Mapping[str, datetime], symbols: Sequence[str], now: datetime,
               live: bool, slots: Sequence[str]) -> Evaluation:
    """Stale 5m data fails every slot (no slot may enter on stale prices)."""
    outcome = market_checks.freshness(latest, symbols, now, live=live)
    return outcome, ([] if outcome.passed else sorted(slots))


def risk_halt_active(states: Mapping[str, RiskState | None]) -> Evaluation:
    """WARN while any slot is halted or its kill switch is on (with the reasons)."""
    reasons: dict[str, list[str]] = {}
    for slot, st in sorted(states.items()):
        if st is None:
            continue
        found = [f"{kind}: {h.reason}" for kind, h in sorted(st.halts.items())]
        if st.kill_switch is not None:
            found.insert(0, f"kill switch: {st.kill_switch.reason}")
        if found:
            reasons[slot] = found
    why = "; ".join(f"{s}: {r}" for s, rs in reasons.items() for r in rs) or "none"
    meta: CheckMeta = {"halted_slots": ", ".join(reasons) or "none", "reasons": why}
    if reasons:
        return CheckOutcome(False, f"{len(reasons)} slot(s) halted: " + why, meta), sorted(reasons)
    return CheckOutcome(True, "no halt active", meta), []


def signal_drought(scans: int, entries: int, hours: float = DROUGHT_HOURS,
                   min_scans: int = DROUGHT_MIN_SCANS) -> Evaluation:
    """WARN when ``scans`` >= ``min_scans`` scans in the last ``hours`` gave no entry signal."""
    meta: CheckMeta = {"window_hours": hours, "scans": scans, "entry_signals": entries,
                               "min_scans": min_scans}
    if scans < min_scans:
        return CheckOutcome(True, f"not enough scans in {hours:g} h to judge ({scans} < "
                                  f"{min_scans})", meta), []
    if entries == 0:
        return CheckOutcome(False, f"no entry signal in {scans} scans over {hours:g} h", meta), []
    return CheckOutcome(True, f"{entries} entry signal(s) in {scans} scans over {hours:g} h",
                        meta), []


def halt_for_check(state: RiskState, check: str, detail: str, now: datetime) -> Result:
    """Halt new entries because ``check`` failed (a no-op when a manual halt is already on)."""
    return halt(state, f"check:{check}: {detail}"[:300], now)


def halt_status(state: RiskState | None, equity: Decimal | None, open_positions: int) -> dict:
    """One slot's halts for ``status --json`` (JSON-ready: strings for money, ISO times)."""
    st = state or RiskState()
    dd, peak = drawdown(st, equity) if equity is not None else (None, st.peak_equity)
    return {
        "halted": st.halted,
        "halts": {k: {"reason": h.reason, "since": h.since} for k, h in sorted(st.halts.items())},
        "kill_switch": ({"reason": st.kill_switch.reason, "since": st.kill_switch.since}
                        if st.kill_switch else None),
        "peak_equity": None if peak is None else str(peak),
        "drawdown": dd,
        "equity": None if equity is None else str(equity),
        "open_positions": open_positions,
    }
