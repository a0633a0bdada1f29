"""The risk shell: pure, rigid checks and sizing between a strategy's proposal and an order.

``evaluate`` answers one proposal; ``evaluate_batch`` answers several against one portfolio,
reserving cash as it goes so that two intents can never spend the same money. Limits come from
settings (``RiskLimits``), never from strategy output. Nothing here does I/O or reads a clock.

Entries, in this order (the first failing check rejects, with its reason code):
1. kill switch; halts (manual, daily loss, drawdown); state not updated today (``state_stale``);
2. proposal/pair sanity (``invalid_proposal``, ``pair_unavailable`` unless the pair is
   ``online`` or ``limit_only``); cooldown after a stop-loss;
3. one position per symbol and slot (``duplicate_position``, ``duplicate_pending``); max open
   positions, counting pending entries;
4. sizing, all amounts being the cash an order reserves (quantity x limit price x (1 + taker fee)):
   ``budget = min(size x free cash, max_trade_pct x equity, max_position_pct x equity - position,
   max_exposure_pct x equity - exposure) x probation scale``, where free cash = cash - reserved and
   exposure = held value + cash reserved by pending entries. Exactly at a limit passes. A budget
   <= 0 rejects with the binding reason; a cap that binds makes the decision ``resized``;
5. quantity = budget / (limit x (1 + fee)) rounded DOWN to the lot; the limit price is the
   reference x (1 + price_buffer_pct) rounded UP to the pair's price precision (and tick), so the
   reservation covers the fill; rejected below ``ordermin`` then ``costmin`` (at the limit price).

Exits and protective orders are never blocked by halts, the kill switch or any limit. Their
quantity is the requested one (or everything held) capped at the sellable position (held minus
pending exits; protective orders are capped at the held quantity only) and rounded down to the
lot; they are rejected only when nothing sellable remains (``no_position``) or the rest is dust
the venue cannot take (``below_ordermin``/``below_costmin``). The exit limit is the reference x
(1 - buffer) rounded down. Sells reserve no cash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, localcontext

from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.risk import (
    MONEY_PREC,
    Decision,
    HaltKind,
    PendingOrder,
    PortfolioView,
    Proposal,
    ReasonCode,
    RiskEvent,
    RiskLimits,
    RiskState,
)
from trading_brain.engine.risk_state import check_utc, probation_scale
from trading_brain.errors import DataError, OrderRejected

PREC = MONEY_PREC  # exact for any realistic amount; the default 28 digits could round up
FLOOR = Context(prec=PREC, rounding=ROUND_FLOOR)
CEIL = Context(prec=PREC, rounding=ROUND_CEILING)
TRADABLE = ("online", "limit_only")


def _dec(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def _reject(p: Proposal, reason: ReasonCode, message: str) -> Decision:
    return Decision(intent_id=p.intent_id, symbol=p.symbol, action=p.action, status="rejected",
                    reason=reason, message=message, strategy_version=p.strategy_version,
                    slot=p.slot)


def price_up(pair: AssetPair, price: Decimal) -> Decimal:
    """Round a price UP to the pair's precision and tick size."""
    step = Decimal(1).scaleb(-pair.pair_decimals)
    if pair.tick_size is not None and pair.tick_size > step:
        step = pair.tick_size
    return CEIL.divide(price, step).to_integral_value(rounding=ROUND_CEILING) * step


def price_down(pair: AssetPair, price: Decimal) -> Decimal:
    """Round a price DOWN to the pair's precision and tick size."""
    step = Decimal(1).scaleb(-pair.pair_decimals)
    if pair.tick_size is not None and pair.tick_size > step:
        step = pair.tick_size
    return FLOOR.divide(price, step).to_integral_value(rounding=ROUND_FLOOR) * step


def evaluate(proposal: Proposal, portfolio: PortfolioView, state: RiskState, limits: RiskLimits,
             pair: AssetPair, now: datetime) -> Decision:
    """Approve, resize or reject one proposal (see the module docstring for the rules)."""
    check_utc(now)
    if proposal.symbol != pair.symbol:
        raise DataError(f"proposal for {proposal.symbol} evaluated with pair {pair.symbol}")
    if any(o.intent_id == proposal.intent_id for o in portfolio.pending):
        return _reject(proposal, "duplicate_intent", f"intent {proposal.intent_id} is pending")
    with localcontext(prec=PREC):
        if proposal.action == "enter":
            return _enter(proposal, portfolio, state, limits, pair, now)
        return _sell(proposal, portfolio, pair, limits)


# the halts that stop an entry, in the order they are reported, with their reason codes
_HALT_REASONS: tuple[tuple[HaltKind, ReasonCode], ...] = (
    ("manual", "halt_manual"), ("drawdown", "halt_drawdown"), ("daily_loss", "halt_daily_loss"))


def _gate(p: Proposal, pf: PortfolioView, state: RiskState, limits: RiskLimits,
          pair: AssetPair, now: datetime) -> Decision | None:
    """The non-sizing entry checks; a rejection or None."""
    if state.kill_switch is not None:
        return _reject(p, "kill_switch", f"kill switch on: {state.kill_switch.reason}")
    for kind, code in _HALT_REASONS:
        if kind in state.halts:
            return _reject(p, code, f"halted: {state.halts[kind].reason}")
    if state.day != now.date() or state.peak_equity is None:
        return _reject(p, "state_stale", "risk state not updated today; restore it first")
    if p.size <= 0 or pf.equity <= 0:
        return _reject(p, "invalid_proposal", f"size {p.size} on equity {pf.equity}")
    if pair.status not in TRADABLE:
        return _reject(p, "pair_unavailable", f"{pair.symbol} is {pair.status}")
    until = state.symbol(p.symbol).cooldown_until
    if until is not None and now < until:
        return _reject(p, "cooldown", f"{p.symbol} cooling down after a stop-loss until {until}")
    if pf.held(p.symbol) > 0:
        return _reject(p, "duplicate_position", f"already holding {p.symbol}")
    if any(o.symbol == p.symbol and o.action == "enter" for o in pf.pending):
        return _reject(p, "duplicate_pending", f"an entry for {p.symbol} is already pending")
    if len(pf.open_symbols()) >= limits.max_open_positions:
        return _reject(p, "max_positions", f"{limits.max_open_positions} positions already open")
    return None


def _budget(p: Proposal, pf: PortfolioView, limits: RiskLimits) -> tuple[Decimal, ReasonCode]:
    """The cash this entry may reserve and the constraint that bound it (``ok`` = the request)."""
    pos = pf.positions.get(p.symbol)
    held = pos.value if pos is not None else Decimal(0)
    caps: list[tuple[Decimal, ReasonCode]] = [
        (_dec(p.size) * pf.available_cash, "ok"),
        (_dec(limits.max_trade_pct) * pf.equity, "max_trade_size"),
        (_dec(limits.max_position_pct) * pf.equity - held, "max_position_size"),
        (_dec(limits.max_exposure_pct) * pf.equity - pf.exposure, "max_exposure"),
    ]
    amount, reason = caps[0]
    for value, code in caps[1:]:
        if value < amount:
            amount, reason = value, code
    if amount <= 0 and reason == "ok":
        reason = "insufficient_cash"
    return amount, reason


def _enter(p: Proposal, pf: PortfolioView, state: RiskState, limits: RiskLimits,
           pair: AssetPair, now: datetime) -> Decision:
    gated = _gate(p, pf, state, limits, pair, now)
    if gated is not None:
        return gated
    budget, reason = _budget(p, pf, limits)
    if budget <= 0:
        return _reject(p, reason, f"no room to buy {p.symbol}: {reason}")
    scale = probation_scale(state, p.symbol, now, limits)
    if scale < 1:
        budget *= _dec(scale)
        reason = "probation" if reason == "ok" else reason
    limit = price_up(pair, p.price * (1 + _dec(limits.price_buffer_pct)))
    unit = limit * (1 + _dec(pair.fee_taker))
    qty = pair.round_qty(FLOOR.divide(budget, unit))
    if qty <= 0 or qty < pair.ordermin:
        return _reject(p, "below_ordermin", f"quantity {qty} below ordermin {pair.ordermin}")
    if qty * limit < pair.costmin:
        return _reject(p, "below_costmin", f"cost {qty * limit} below costmin {pair.costmin}")
    status = "approved" if reason == "ok" else "resized"
    msg = f"buy {qty} {p.symbol} at <= {limit}" + ("" if reason == "ok" else f" ({reason})")
    if scale < 1:
        msg += f", probation x{scale}"
    return Decision(intent_id=p.intent_id, symbol=p.symbol, action="enter", status=status,
                    reason=reason, message=msg, quantity=qty, limit_price=limit,
                    reserved_cash=qty * unit, stop_loss=p.stop_loss, take_profit=p.take_profit,
                    strategy_version=p.strategy_version, slot=p.slot)


def _sell(p: Proposal, pf: PortfolioView, pair: AssetPair, limits: RiskLimits) -> Decision:
    sellable = pf.held(p.symbol)
    if p.action == "exit":
        sellable -= sum((o.qty for o in pf.pending if o.symbol == p.symbol
                         and o.action == "exit"), Decimal(0))
    want = p.quantity if p.quantity is not None else sellable
    qty = pair.round_qty(min(want, sellable)) if sellable > 0 else Decimal(0)
    if qty <= 0:
        return _reject(p, "no_position", f"nothing sellable in {p.symbol}")
    limit = price_down(pair, p.price * (1 - _dec(limits.price_buffer_pct)))
    if qty < pair.ordermin:
        return _reject(p, "below_ordermin", f"dust {qty} below ordermin {pair.ordermin}")
    if qty * limit < pair.costmin:
        return _reject(p, "below_costmin", f"dust cost {qty * limit} below {pair.costmin}")
    capped = p.quantity is not None and p.quantity > sellable
    reason: ReasonCode = "exit_capped" if capped else "ok"
    return Decision(intent_id=p.intent_id, symbol=p.symbol, action=p.action,
                    status="resized" if capped else "approved", reason=reason,
                    message=f"sell {qty} {p.symbol} at >= {limit}", quantity=qty,
                    limit_price=limit, stop_loss=p.stop_loss, take_profit=p.take_profit,
                    strategy_version=p.strategy_version, slot=p.slot)


def reserve(portfolio: PortfolioView, decision: Decision) -> PortfolioView:
    """Add an approved decision to the pending orders (entries hold cash, sells hold quantity)."""
    if not decision.approved:
        raise OrderRejected(f"cannot reserve a rejected decision ({decision.reason})",
                            decision.reason)
    if any(o.intent_id == decision.intent_id for o in portfolio.pending):
        raise OrderRejected(f"intent {decision.intent_id} already reserved", "duplicate_intent")
    with localcontext(prec=PREC):
        over = portfolio.reserved_cash + decision.reserved_cash > portfolio.cash
    if over:
        raise OrderRejected(f"reserving {decision.reserved_cash} would over-commit cash",
                            "insufficient_cash")
    order = PendingOrder(intent_id=decision.intent_id, symbol=decision.symbol,
                         action=decision.action, qty=decision.quantity,
                         reserved=decision.reserved_cash)
    return portfolio.model_copy(update={"pending": (*portfolio.pending, order)})


def release(portfolio: PortfolioView, intent_id: str) -> PortfolioView:
    """Drop a pending order (filled, cancelled or rejected by the venue); idempotent."""
    pending = tuple(o for o in portfolio.pending if o.intent_id != intent_id)
    return portfolio.model_copy(update={"pending": pending})


def decision_event(decision: Decision, now: datetime) -> RiskEvent:
    """The ``risk_events`` row recording one decision and its reason."""
    return RiskEvent(ts=now, kind="decision", symbol=decision.symbol, reason=decision.reason,
                     details={"intent_id": decision.intent_id, "action": decision.action,
                              "status": decision.status, "message": decision.message,
                              "quantity": str(decision.quantity),
                              "limit_price": str(decision.limit_price),
                              "reserved_cash": str(decision.reserved_cash),
                              "strategy_version": decision.strategy_version,
                              "slot": decision.slot})


def exit_all(portfolio: PortfolioView, prices: Mapping[str, Decimal], intent_prefix: str,
             slot: str = "active") -> list[Proposal]:
    """Exit proposals for every held symbol (kill switch / flatten); ids ``<prefix>:<symbol>``.

    Raises DataError when a held symbol has no reference price: flattening must not skip one.
    """
    held = sorted(s for s, p in portfolio.positions.items() if p.qty > 0)
    missing = [s for s in held if s not in prices]
    if missing:
        raise DataError(f"no price to exit {', '.join(missing)}")
    return [Proposal(intent_id=f"{intent_prefix}:{s}", symbol=s, action="exit", price=prices[s],
                     strategy_version="risk-shell", slot=slot) for s in held]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Decisions in processing order, the portfolio with their reservations, and the events."""

    decisions: list[Decision]
    portfolio: PortfolioView
    events: list[RiskEvent]


def batch_order(proposals: Sequence[Proposal]) -> list[Proposal]:
    """Sells first (exits, then protective orders), then entries; ties by slot, symbol, intent.

    The full serialised proposal breaks any remaining tie (two proposals reusing an intent id),
    so the order, hence which one wins, never depends on the input order.
    """
    rank = {"exit": 0, "protect": 1, "enter": 2}
    return sorted(proposals, key=lambda p: (rank[p.action], p.slot, p.symbol, p.intent_id,
                                            p.model_dump_json()))


def evaluate_batch(proposals: Sequence[Proposal], portfolio: PortfolioView, state: RiskState,
                   limits: RiskLimits, pairs: Mapping[str, AssetPair],
                   now: datetime) -> BatchResult:
    """Evaluate proposals in ``batch_order``, reserving each approval before the next one."""
    check_utc(now)
    decisions: list[Decision] = []
    seen: set[str] = set()
    for p in batch_order(proposals):
        pair = pairs.get(p.symbol)
        if p.intent_id in seen:
            d = _reject(p, "duplicate_intent", f"intent {p.intent_id} proposed twice")
        elif pair is None:
            d = _reject(p, "unknown_pair", f"no exchange metadata for {p.symbol}")
        else:
            d = evaluate(p, portfolio, state, limits, pair, now)
        seen.add(p.intent_id)
        if d.approved:
            portfolio = reserve(portfolio, d)
        decisions.append(d)
    return BatchResult(decisions, portfolio, [decision_event(d, now) for d in decisions])
