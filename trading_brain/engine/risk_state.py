"""Risk state transitions: equity updates, closed trades, restarts and human controls (pure).

Every function takes a ``RiskState`` and returns ``(new_state, events)``; nothing is mutated and
nothing is read from a clock (``now`` must be timezone-aware UTC). Rules, with their boundaries:

- Day: the UTC date of ``now``. The first equity seen on a new day becomes ``day_start_equity``;
  the rollover clears the daily-loss halt and every symbol's ``day_pnl``. A clock going back to an
  earlier day raises ``DataError``.
- Peak: ``peak_equity`` = the highest equity ever seen (persisted; reset only by ``resume``).
- Daily-loss halt: ``(day_start - equity) / day_start >= daily_loss_halt_pct`` (inclusive);
  it lasts until the next UTC day or a human ``resume``.
- Drawdown halt: ``(peak - equity) / peak >= drawdown_halt_pct``; it lasts until a human
  ``resume``. Resume makes the current equity the new peak and day start (else the halts would
  re-fire on the next equity update).
- Rollback trigger: a daily drop ``>= rollback_daily_drop_pct`` (once per UTC day) or
  ``rollback_consecutive_losses`` losing closes in a row (``pnl < 0``; any ``pnl >= 0`` resets the
  count). The trigger stays pending until ``clear_rollback`` (after the deployment reverted);
  clearing also resets the consecutive-loss count. It does not block trading by itself. A new
  deployment (``new_deployment``) also resets the count: the streak judges the version that is
  deployed, never the losses of the one it replaced.
- Probation (per symbol): the sum of the returns (``pnl / cost``) of the symbol's trades closed in
  the last ``probation_window_hours``. At ``<= -probation_half_pct`` entries are half size, at
  ``<= -probation_quarter_pct`` a quarter. Probation ends when losing trades age out of the
  window or later wins lift the sum above the threshold; it does not end at midnight.
- Cooldown: a close with ``exit_reason == "stop_loss"`` blocks new entries on that symbol for
  ``cooldown_minutes``.
- Kill switch: set and cleared only by a human (``set_kill_switch``); ``resume`` clears halts,
  and the kill switch only when asked to.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from trading_brain.domain.risk import (
    ClosedTrade,
    EventKind,
    Halt,
    HaltKind,
    PortfolioView,
    RiskEvent,
    RiskLimits,
    RiskState,
    RollbackReason,
    RollbackTrigger,
    Scalar,
    SymbolRisk,
)
from trading_brain.errors import DataError

Result = tuple[RiskState, list[RiskEvent]]
SCALES = (1.0, 0.5, 0.25)


def check_utc(now: datetime) -> None:
    """Raise DataError unless ``now`` is timezone-aware UTC."""
    if now.tzinfo is None or now.utcoffset() != timedelta(0):
        raise DataError(f"risk shell needs a UTC-aware time, got {now!r}")


def _event(now: datetime, kind: EventKind, reason: str, symbol: str | None = None,
           **details: Scalar) -> RiskEvent:
    return RiskEvent(ts=now, kind=kind, reason=reason, symbol=symbol, details=details)


def _loss(reference: Decimal | None, equity: Decimal) -> float:
    """Fractional loss of ``equity`` against ``reference`` (0 when there is no reference)."""
    if reference is None or reference <= 0:
        return 0.0
    return float((reference - equity) / reference)


def update_state_on_equity(
    state: RiskState, equity: Decimal, now: datetime, limits: RiskLimits
) -> Result:
    """Roll the day, track the peak, and fire halts / the daily-drop rollback trigger."""
    check_utc(now)
    if equity < 0:
        raise DataError(f"equity must be >= 0, got {equity}")
    state, events = _rollover(state, equity, now)
    if events:  # a new day: drop memory that no longer matters
        state = _prune(state, now, limits)
    peak = equity if state.peak_equity is None else max(state.peak_equity, equity)
    state = state.model_copy(update={"peak_equity": peak, "updated_at": now})
    daily = _loss(state.day_start_equity, equity)
    if daily >= limits.daily_loss_halt_pct:
        state, events = _halt(state, events, "daily_loss", now,
                              f"equity down {daily:.2%} today "
                              f"(limit {limits.daily_loss_halt_pct:.0%})")
    drawdown = _loss(peak, equity)
    if drawdown >= limits.drawdown_halt_pct:
        state, events = _halt(state, events, "drawdown", now,
                              f"drawdown {drawdown:.2%} from peak {peak} "
                              f"(limit {limits.drawdown_halt_pct:.0%})")
    if daily >= limits.rollback_daily_drop_pct and state.rollback_drop_day != state.day:
        state = state.model_copy(update={"rollback_drop_day": state.day})
        state, events = _trigger(state, events, now, "daily_drop",
                                 f"equity down {daily:.2%} today "
                                 f"(trigger {limits.rollback_daily_drop_pct:.0%})")
    return state, events


def _rollover(state: RiskState, equity: Decimal, now: datetime) -> Result:
    today = now.date()
    if state.day is not None and today < state.day:
        raise DataError(f"clock went back from {state.day} to {today}")
    if state.day == today:
        return state, []
    events = [_event(now, "day_rollover", "new UTC day", day=today.isoformat(),
                     day_start_equity=str(equity))]
    halts = dict(state.halts)
    if halts.pop("daily_loss", None) is not None:
        events.append(_event(now, "halt_cleared", "daily_loss", why="new UTC day"))
    symbols = {s: r.model_copy(update={"day_pnl": Decimal(0)}) for s, r in state.symbols.items()}
    new = state.model_copy(update={"day": today, "day_start_equity": equity, "halts": halts,
                                   "symbols": symbols})
    return new, events


def _halt(state: RiskState, events: list[RiskEvent], kind: HaltKind, now: datetime,
          reason: str) -> Result:
    if kind in state.halts:
        return state, events
    halts = {**state.halts, kind: Halt(reason=reason, since=now)}
    return state.model_copy(update={"halts": halts}), [*events, _event(now, "halt", kind,
                                                                      message=reason)]


def _trigger(state: RiskState, events: list[RiskEvent], now: datetime, reason: RollbackReason,
             detail: str) -> Result:
    if state.rollback is not None:
        return state, events
    trig = RollbackTrigger(reason=reason, since=now, detail=detail)
    return state.model_copy(update={"rollback": trig}), [
        *events, _event(now, "rollback_trigger", reason, message=detail)]


def probation_level(state: RiskState, symbol: str, now: datetime, limits: RiskLimits) -> int:
    """0 = full size, 1 = half, 2 = quarter (see the module rules)."""
    since = now - timedelta(hours=limits.probation_window_hours)
    total = sum(c.ret for c in state.symbol(symbol).closes if c.ts > since)
    if total <= -limits.probation_quarter_pct:
        return 2
    if total <= -limits.probation_half_pct:
        return 1
    return 0


def probation_scale(state: RiskState, symbol: str, now: datetime, limits: RiskLimits) -> float:
    """The size multiplier of the symbol's probation level (1, 0.5 or 0.25)."""
    return SCALES[probation_level(state, symbol, now, limits)]


def update_state_on_close(
    state: RiskState, symbol: str, pnl: Decimal, cost: Decimal, exit_reason: str,
    now: datetime, limits: RiskLimits,
) -> Result:
    """Record a closed trade (``pnl`` net of fees, ``cost`` = entry notional > 0)."""
    check_utc(now)
    if cost <= 0:
        raise DataError(f"trade cost must be > 0, got {cost}")
    before = probation_level(state, symbol, now, limits)
    since = now - timedelta(hours=limits.probation_window_hours)
    old = state.symbol(symbol)
    closes = (*[c for c in old.closes if c.ts > since], ClosedTrade(ts=now, pnl=pnl, cost=cost))
    sym = old.model_copy(update={"day_pnl": old.day_pnl + pnl, "closes": closes})
    events: list[RiskEvent] = []
    if exit_reason == "stop_loss" and limits.cooldown_minutes > 0:
        until = now + timedelta(minutes=limits.cooldown_minutes)
        sym = sym.model_copy(update={"cooldown_until": until})
        events.append(_event(now, "cooldown", "stop_loss", symbol, until=until.isoformat()))
    losses = state.consecutive_losses + 1 if pnl < 0 else 0
    state = state.model_copy(update={"symbols": {**state.symbols, symbol: sym},
                                     "consecutive_losses": losses, "updated_at": now})
    after = probation_level(state, symbol, now, limits)
    if after != before:
        events.append(_event(now, "probation", f"level {before} -> {after}", symbol,
                             level=after, scale=SCALES[after]))
    if losses >= limits.rollback_consecutive_losses:
        state, events = _trigger(state, events, now, "consecutive_losses",
                                 f"{losses} losing trades in a row")
    return state, events


def restore(state: RiskState, portfolio: PortfolioView, now: datetime,
            limits: RiskLimits) -> Result:
    """Re-evaluate persisted state at start: roll the day, re-check halts, prune stale memory."""
    state, events = update_state_on_equity(state, portfolio.equity, now, limits)
    state = _prune(state, now, limits)
    events.append(_event(now, "restore", "state re-evaluated at start",
                         halts=",".join(sorted(state.halts)) or None,
                         kill_switch=state.kill_switch is not None,
                         peak_equity=str(state.peak_equity), equity=str(portfolio.equity),
                         rollback=state.rollback.reason if state.rollback else None))
    return state, events


def _prune(state: RiskState, now: datetime, limits: RiskLimits) -> RiskState:
    """Forget expired cooldowns, closes outside the probation window and idle symbols."""
    since = now - timedelta(hours=limits.probation_window_hours)
    symbols: dict[str, SymbolRisk] = {}
    for sym, risk in state.symbols.items():
        cool = risk.cooldown_until if risk.cooldown_until and risk.cooldown_until > now else None
        closes = tuple(c for c in risk.closes if c.ts > since)
        if closes or cool or risk.day_pnl:
            symbols[sym] = risk.model_copy(update={"closes": closes, "cooldown_until": cool})
    return state.model_copy(update={"symbols": symbols})


def halt(state: RiskState, reason: str, now: datetime) -> Result:
    """A human halt: no new entries until ``resume``."""
    check_utc(now)
    return _halt(state, [], "manual", now, reason)


def set_kill_switch(state: RiskState, on: bool, reason: str, now: datetime) -> Result:
    """Turn the kill switch on or off (humans only)."""
    check_utc(now)
    if on == (state.kill_switch is not None):
        return state, []
    value = Halt(reason=reason, since=now) if on else None
    return state.model_copy(update={"kill_switch": value}), [
        _event(now, "kill_switch", "on" if on else "off", message=reason)]


def resume(state: RiskState, equity: Decimal, now: datetime, reason: str,
           clear_kill_switch: bool = False) -> Result:
    """A human resume: clear every halt; ``equity`` becomes the new peak and day start."""
    check_utc(now)
    events = [_event(now, "resume", reason, cleared=",".join(sorted(state.halts)) or None,
                     peak_equity=str(equity))]
    state = state.model_copy(update={"halts": {}, "peak_equity": equity,
                                     "day_start_equity": equity})
    if clear_kill_switch:
        state, more = set_kill_switch(state, False, reason, now)
        events += more
    return state, events


def clear_rollback(state: RiskState, now: datetime, reason: str) -> Result:
    """Mark the rollback trigger handled and reset the consecutive-loss count."""
    check_utc(now)
    if state.rollback is None:
        return state, []
    return state.model_copy(update={"rollback": None, "consecutive_losses": 0}), [
        _event(now, "rollback_cleared", reason, was=state.rollback.reason)]


def new_deployment(state: RiskState, now: datetime, ref: str) -> Result:
    """A new version now trades this slot: its losing streak starts at 0 (module docstring).

    Halts, the kill switch, a pending trigger, peak and probation are untouched."""
    check_utc(now)
    if state.consecutive_losses == 0:
        return state, []
    return state.model_copy(update={"consecutive_losses": 0, "updated_at": now}), [
        _event(now, "deployment", f"{ref} deployed: losing streak reset",
               was=state.consecutive_losses)]
