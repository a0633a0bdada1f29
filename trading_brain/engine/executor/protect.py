"""Protective orders in the executor tick (engine/executor/tick.py), over the pure decisions of
engine/executor/protective.py (its docstring is the contract: one exchange-native stop-loss per
position, the take-profit done by the executor — cancel the stop, confirm, sell).

Per phase:
- ask (phase 2, venue): on venues that hold the stop (``TickContext.guards_exits``: not
  paper), whether each position's take-profit was reached (bars of
  ``TickConfig.tp_timeframe`` after the entry bar and at most ``tp_lookback`` old, then the
  last price); the protective fingerprint of each symbol whose latest leg was refused for
  funds (one ``balances`` + one ``open_orders`` call);
- plan (phase 3): open stops of closed positions are cancelled (each cancel confirmed by a
  lookup, the row then says what the venue says); per open position ``protective.plan``: a stop
  row written ahead and ``reconcile_protective`` asked to place it, or a take-profit sell that
  cancels the live stop first (``place.clear_for_exits``), or nothing (blocked);
- act (phase 4): ``reconcile_protective(entry, stop_cid)`` per stop to place;
- record (phase 5): the stop row takes what the venue answered (``reconcile.protection``: venue
  id, state, trigger price) — also after a partial failure; confirmed cancels take
  ``reconcile.confirmed_cancel``; a refusal is recorded on the row (``insufficient_funds
  fp=<fingerprint>``), as a risk event and as an alert (``SlotReport.alerts``, delivered once
  per key by ``trading_brain.app.notify``); an ambiguous answer is a warning, the row stays
  ``submitting`` and the next tick's lookup by client id settles it;
- fills of a protective sell the executor has no row for (the paper venue's take-profit, a
  crash between a venue call and its record) get their row from the fills
  (``reconcile.adopted_rows``, applied by book.record_fills).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from trading_brain.domain.alerts import Alert
from trading_brain.domain.orders import OrderRequest, derive_client_order_id
from trading_brain.domain.records import OrderRow, PositionRecord
from trading_brain.domain.risk import RiskEvent
from trading_brain.domain.timeframes import delta, floor_time
from trading_brain.engine import fills as fm
from trading_brain.engine.executor import protective as pr
from trading_brain.engine.executor.context import PROTECTIVE, Protective, TickContext
from trading_brain.engine.executor.reconcile import confirmed_cancel, protection
from trading_brain.errors import TradingBrainError


# ---- phase 2 ---------------------------------------------------------------------------------
def ask_protection(ctx: TickContext) -> None:
    """Take-profits reached and the fingerprints of blocked legs (venues that hold the stop)."""
    if not ctx.guards_exits:
        return
    legs = _legs(ctx)
    watched = [p for p in ctx.positions.values() if p.take_profit_price is not None]
    last: dict[str, float] = {}
    if watched:
        try:
            last = {s: float(t.last) for s, t in ctx.market.tickers(
                sorted({p.symbol for p in watched})).items()}
        except TradingBrainError as e:
            ctx.rep.errors.append(f"take-profit prices: {e}")
    for p in watched:
        try:
            bars = _bars_after_entry(ctx, p)
        except TradingBrainError as e:
            ctx.rep.errors.append(f"take-profit bars {p.symbol}: {e}")
            bars = []
        sl = float(p.stop_loss_price) if p.stop_loss_price is not None else None
        if pr.take_profit_reached(bars, last.get(p.symbol), sl, float(p.take_profit_price or 0)):
            ctx.tp_hits.add(p.position_id)
    blocked = [p for p in ctx.positions.values()
               if pr.needs_fingerprint(*legs.get(p.position_id, ([], [])))]
    if blocked:
        read_fingerprints(ctx, [p.symbol for p in blocked])


def _bars_after_entry(ctx: TickContext, p: PositionRecord) -> list[tuple]:
    tf = ctx.config.tp_timeframe
    start = max(floor_time(p.entry_time, tf) + delta(tf), ctx.now - ctx.config.tp_lookback)
    if start >= ctx.now:
        return []
    df = ctx.market.candles(p.symbol, tf, start, ctx.now)
    if df.height == 0:
        return []
    return list(zip(*(df.get_column(c).to_list() for c in ("ts", "open", "high", "low")),
                    strict=True))


def read_fingerprints(ctx: TickContext, symbols: list[str]) -> None:
    """``ctx.fps[symbol]``: the protective fingerprint of each symbol's position now."""
    try:
        bal = ctx.ex.balances()
        orders = ctx.ex.open_orders()
    except TradingBrainError as e:
        ctx.rep.errors.append(f"protective fingerprint: {e}")
        return
    for s in symbols:
        pos = ctx.positions.get(s)
        base = ctx.pairs[s].base if s in ctx.pairs else s.split("/")[0]
        own = [o.client_order_id for o in ctx.rows.values()
               if pos is not None and o.intent_id == pos.position_id and o.purpose in PROTECTIVE]
        ctx.fps[s] = pr.venue_fingerprint(pos.quantity if pos else Decimal(0), bal.get(base),
                                          s, orders, own)


def _legs(ctx: TickContext) -> dict[str, tuple[list[OrderRow], list[OrderRow]]]:
    """Per held position id: its (stop-loss rows, take-profit rows)."""
    held = {p.position_id for p in ctx.positions.values()}
    out: dict[str, tuple[list[OrderRow], list[OrderRow]]] = {}
    for o in ctx.rows.values():
        if o.slot == ctx.slot and o.intent_id in held and o.purpose in PROTECTIVE:
            out.setdefault(o.intent_id, ([], []))[o.purpose == "take_profit"].append(o)
    return out


# ---- phase 3 ---------------------------------------------------------------------------------
def plan_protection(ctx: TickContext, open_rows: list[OrderRow], exiting: set[str]) -> None:
    held = {p.position_id for p in ctx.positions.values()}
    for o in open_rows:
        if o.purpose in PROTECTIVE and o.intent_id not in held:
            ctx.to_cancel.append(o.client_order_id)
            ctx.cancel_reason[o.client_order_id] = "position_closed"
    legs = _legs(ctx)
    todo = [p for p in ctx.positions.values() if p.symbol not in exiting]
    ctx.load_intents([p.position_id for p in todo])
    for pos in todo:
        entry_cid = derive_client_order_id(pos.position_id)
        entry = ctx.rows.get(entry_cid)
        if entry is None or entry.is_open:
            continue  # protected once the entry is done (its whole quantity)
        pos, fixed = _levels(ctx, pos)
        if pos.stop_loss_price is None and pos.take_profit_price is None:
            continue
        stops, tps = legs.get(pos.position_id, ([], []))
        d = pr.plan(entry_cid, pos.stop_loss_price is not None, stops, tps,
                    pos.position_id in ctx.tp_hits, False, ctx.fps.get(pos.symbol))
        req = OrderRequest(client_order_id=entry_cid, symbol=pos.symbol, side="buy",
                           type="market", quantity=pos.quantity, stop_loss=pos.stop_loss_price,
                           take_profit=pos.take_profit_price)
        if d.blocked:  # reported each tick; the stop may still be (re-)armed below
            ctx.rep.unprotected.append(f"{pos.symbol} {pos.position_id}: {d.blocked}")
        if d.arm:
            ctx.insert_order(OrderRow(
                d.arm, pos.position_id, ctx.slot, ctx.ex.name, pos.symbol, "sell", "stop-loss",
                "stop_loss", pos.quantity, "submitting", ctx.now, ctx.now,
                stop_price=pos.stop_loss_price))
            ctx.to_protect.append((req, d.arm))
        elif d.take_profit:
            _take_profit(ctx, pos, d.take_profit, d.live_stops)
        elif fixed and not ctx.guards_exits:  # a take-profit without a stop: modelled by
            ctx.to_protect.append((req, None))  # the venue (paper), no row


def _levels(ctx: TickContext, pos: PositionRecord) -> tuple[PositionRecord, bool]:
    """The position with its levels, fixed from the entry fill once (True: fixed now)."""
    if pos.stop_loss_price is not None or pos.take_profit_price is not None:
        return pos, False
    intent = ctx.intent(pos.position_id)
    if intent is None or not (intent.stop_loss or intent.take_profit):
        return pos, False
    sl, tp = fm.stop_levels(float(pos.entry_price), intent.stop_loss, intent.take_profit)
    pos = replace(pos, stop_loss_price=Decimal(repr(sl)) if sl == sl else None,
                  take_profit_price=Decimal(repr(tp)) if tp == tp else None)
    ctx.positions[pos.symbol] = pos
    ctx.save_position(pos)
    return pos, True


def _take_profit(ctx: TickContext, pos: PositionRecord, cid: str, live: list[str]) -> None:
    """The executor's take-profit: a market sell of the position, sent once the live stop is
    cancelled and the cancel confirmed (``clear_for_exits``), never when the stop filled."""
    row = OrderRow(cid, pos.position_id, ctx.slot, ctx.ex.name, pos.symbol, "sell", "market",
                   "take_profit", pos.quantity, "submitting", ctx.now, ctx.now,
                   stop_price=pos.take_profit_price)
    for c in live:
        ctx.cancel_reason[c] = "canceled_for_take_profit"
    if live:
        ctx.guarded.append((None, row, live))
        return
    ctx.insert_order(row)
    ctx.to_place.append((None, OrderRequest(client_order_id=cid, symbol=pos.symbol, side="sell",
                                            type="market", quantity=pos.quantity)))


# ---- phase 4 ---------------------------------------------------------------------------------
def act_protection(ctx: TickContext) -> None:
    """Confirmed cancels of stops whose position closed, then each stop to place."""
    for cid in ctx.to_cancel:
        try:  # cancelled now or closed already: the lookup says which (it may have filled)
            ctx.ex.cancel_order(client_order_id=cid)
            ctx.confirmed[cid] = ctx.ex.order_by_client_id(cid)
        except TradingBrainError as e:
            ctx.rep.errors.append(f"cancel {cid}: {e}")
    ex = ctx.ex
    if not isinstance(ex, Protective):
        return
    for req, cid in ctx.to_protect:
        ctx.protected.append((cid, answer := ex.reconcile_protective(req, stop_cid=cid)))
        if answer.refused == pr.FUNDS:
            read_fingerprints(ctx, [req.symbol])  # the state a retry must see changed


# ---- phase 5 ---------------------------------------------------------------------------------
def record_protection(ctx: TickContext) -> None:
    """Rows of this tick's protective calls and confirmed cancels (see the module docstring)."""
    for cid, st in ctx.confirmed.items():
        why = ctx.cancel_reason.get(cid, "canceled_for_exit")
        ctx.apply_fix(confirmed_cancel(ctx.rows[cid], st, why))
    for cid, p in ctx.protected:
        if cid is None or cid not in ctx.rows:
            continue
        row = ctx.rows[cid]
        kind, fields = protection(row, p)
        if fields:
            ctx.update_order(cid, **fields)
        if kind == "placed":
            ctx.rep.orders_placed.append(cid)
        elif kind == "refused":
            refused(ctx, row, p.refused or pr.FUNDS, p.error or p.refused or pr.FUNDS)
        elif kind == "ambiguous":  # fate unknown: the row stays submitting, looked up by id
            ctx.rep.warn(f"protect {row.symbol} {cid}: {p.error}")


def refused(ctx: TickContext, row: OrderRow, reason: str, text: str) -> None:
    """A protective leg refused by the venue: row, risk event and one alert (never resent
    blindly: a leg refused for funds is retried only when its fingerprint changed)."""
    fp = ctx.fps.get(row.symbol)  # read right after the refusal (phase 4)
    stored = pr.funds_reason(fp or "?") if reason == pr.FUNDS else reason
    ctx.update_order(row.client_order_id, state="rejected", reason=stored)
    ctx.rep.events.append(RiskEvent(
        ts=ctx.now, kind="decision", symbol=row.symbol, reason=reason,
        details={"stage": "protect", "action": "protect", "leg": row.purpose, "status": "rejected",
                 "client_order_id": row.client_order_id, "position_id": row.intent_id,
                 "fingerprint": fp, "slot": ctx.slot, "text": text[:200]}))
    msg = (f"{ctx.slot} {row.symbol}: the {row.purpose.replace('_', '-')} sell "
           f"{row.client_order_id} was refused ({reason}); the position is not protected by "
           f"it. Retried only when the position, the venue balance or its open orders change.")
    ctx.rep.alerts.append(Alert(f"protective_refused:{row.client_order_id}", "ERROR",
                                "protective_refused", f"{ctx.slot} {row.symbol}", msg))
    ctx.rep.warn(msg)
