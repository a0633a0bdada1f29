"""One executor tick: reconcile, take pending intents, place, record fills, ledger, risk, snapshot.

Contract (DESIGN §6.2; the ``executor_sensor`` calls ``run_tick`` and turns the report into asset
events). Pure over ports: the warehouse (``ExecutorStore``), one ``Exchange`` per slot (active
and shadow slots each have their own cash pool and risk state), a ``MarketData`` for marks and
a ``Clock``. Per slot, in order:
1. deposit the starting capital once; load the risk state;
2. reconcile orders: every open order row is looked up by client order id (the venue is the
   truth) and updated; ``submitting``/``unresolved`` rows the venue does not know become
   ``unresolved`` and, after ``unresolved_grace``, ``rejected`` (``not_at_venue``) — never resent;
3. record fills (``fills_since`` a watermark: the oldest open order/position or the newest
   stored fill, minus ``fill_lookback``; stored fill ids are skipped): each
   fill writes the fill, its cash entries and the position in one transaction; a closed
   position feeds ``update_state_on_close``;
4. protect: a filled entry with stop-loss/take-profit fractions gets levels fixed from its
   average fill price (``fills.stop_levels``), protective order rows and
   ``reconcile_protective`` on the venue; closed positions get their protective orders canceled;
5. intents (``store.intents("pending", slot)``, at most ``max_orders``): entries are refused
   while halted or already holding the symbol, exits always pass (and sell the whole position);
   write-ahead ``submitting`` row, intent ``submitted``, then ``place_order``. ``OrderRejected`` ->
   order and intent rejected with the reason; ``AmbiguousOrderError``/``TemporaryError`` ->
   ``unresolved`` (settled by step 2 on a later tick). Other exceptions propagate (a crash):
   the next tick finds the order by its client id, so an intent is never sent twice;
6. mark positions (ticker last), update max adverse excursion, ``update_state_on_equity``,
   snapshot, risk events, the invariant and the balance reconcile against the venue.
Given the same clock readings and market, a tick is deterministic.

I/O shape (a connection costs ~25 ms): each slot runs three warehouse phases, each inside one
``store.session()`` (load; apply answers + write-ahead; record + snapshot), with the venue calls
between them outside any session — except with ``TickConfig.local_venues`` (paper venue over a
local sim/replay market: no network), where the venue phases share the session too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.intents import OrderIntent
from trading_brain.domain.orders import (
    Fill,
    OrderRequest,
    OrderStatus,
    derive_client_order_id,
)
from trading_brain.domain.risk import RiskEvent, RiskLimits, RiskState
from trading_brain.engine import fills as fm
from trading_brain.engine.executor_books import (
    finish_slot,
    marks_for,
    record_fills,
)
from trading_brain.engine.executor_types import (
    PROTECTIVE,
    ExecutorStore,
    Protective,
    SlotReport,
    SlotSetup,
    TickConfig,
    TickContext,
    TickReport,
)
from trading_brain.engine.ledger import (
    OrderRow,
    PositionRecord,
)
from trading_brain.errors import AmbiguousOrderError, OrderRejected, TemporaryError
from trading_brain.ports import Clock, MarketData


def run_tick(store: ExecutorStore, slots: Mapping[str, SlotSetup], market: MarketData,
             clock: Clock, pairs: Mapping[str, AssetPair], limits: RiskLimits,
             config: TickConfig | None = None) -> TickReport:
    """Run one bounded, idempotent executor tick over every slot (sorted by name)."""
    config = config or TickConfig()
    started, now = time.monotonic(), clock.now()
    report = TickReport(now, {})
    with store.session() if config.local_venues else nullcontext():
        for slot in sorted(slots):
            setup = slots[slot]
            ctx = TickContext(store, market, pairs, limits, config, now, slot, setup.exchange,
                       SlotReport(slot), started)
            with store.session():
                _load(ctx, setup.starting_capital)
            _ask_venue(ctx)
            with store.session():
                _apply_answers(ctx)
                _plan(ctx)
            _act(ctx)
            with store.session():
                _record_answers(ctx)
                record_fills(ctx)
                finish_slot(ctx)
            report.slots[slot] = ctx.rep
    report.duration_s = time.monotonic() - started
    return report


def _load(ctx: TickContext, capital: Decimal) -> None:
    s = ctx.store
    ctx.capital = s.starting_capital(ctx.slot)
    if ctx.capital is None:
        s.ensure_deposit(ctx.slot, capital, ctx.now)
        ctx.capital = capital
    ctx.state = s.load_risk_state(ctx.slot) or RiskState()
    ctx.open_orders = s.orders(ctx.slot, open_only=True)
    ctx.positions = {p.symbol: p for p in s.positions(ctx.slot)}
    ctx.intents = s.intents("pending", ctx.slot)[: ctx.config.max_orders]
    times = [t for t in [s.last_fill_ts(ctx.slot)] if t is not None]
    times += [p.entry_time for p in ctx.positions.values()]
    times += [o.created_at for o in ctx.open_orders]
    since = min(times) if times else ctx.now - timedelta(days=1)
    ctx.since = since - ctx.config.fill_lookback  # late venue fills; stored ids are skipped


# ---- phase 2: ask the venue (it is the truth) ------------------------------------------------
def _ask_venue(ctx: TickContext) -> None:
    for row in ctx.open_orders:
        if row.purpose in PROTECTIVE and row.state == "submitting":
            continue  # placed through reconcile_protective, not place_order
        try:
            ctx.statuses[row.client_order_id] = ctx.ex.order_by_client_id(row.client_order_id)
        except TemporaryError as e:
            ctx.rep.errors.append(f"lookup {row.client_order_id}: {e}")
    ctx.venue_fills = _fetch_fills(ctx)


def _fetch_fills(ctx: TickContext) -> list[Fill]:
    try:
        return ctx.ex.fills_since(ctx.since or ctx.now)
    except TemporaryError as e:
        ctx.rep.errors.append(f"fills: {e}")
        return []


# ---- phase 3: apply answers, plan protection and orders (warehouse) --------------------------
def _apply_answers(ctx: TickContext) -> None:
    for row in ctx.open_orders:
        if row.client_order_id not in ctx.statuses:
            continue
        st = ctx.statuses[row.client_order_id]
        if st is None:
            _unknown_at_venue(ctx, row)
        else:
            _apply_status(ctx, row, st)
    record_fills(ctx)


def _unknown_at_venue(ctx: TickContext, row: OrderRow) -> None:
    if row.state not in ("submitting", "unresolved"):
        ctx.rep.errors.append(f"order {row.client_order_id} ({row.state}) unknown at the venue")
        return
    if ctx.now - row.created_at >= ctx.config.unresolved_grace:
        ctx.store.update_order(row.client_order_id, ctx.now, state="rejected",
                               reason="not_at_venue")
        _finish_intent(ctx, row.intent_id, "rejected", "not_at_venue")
    elif row.state == "submitting":
        ctx.store.update_order(row.client_order_id, ctx.now, state="unresolved")
    ctx.rep.orders_updated.append(row.client_order_id)


def _apply_status(ctx: TickContext, row: OrderRow, st: OrderStatus) -> None:
    if (st.state, st.filled_qty, st.fee) != (row.state, row.filled_qty, row.fee):
        ctx.store.update_order(row.client_order_id, ctx.now, state=st.state,
                               venue_order_id=st.venue_order_id, filled_qty=st.filled_qty,
                               avg_price=st.avg_price, fee=st.fee, reason=st.reason)
        ctx.rep.orders_updated.append(row.client_order_id)
    if st.is_terminal and row.purpose in ("entry", "exit"):
        final = ("done" if st.filled_qty > 0 else
                 "cancelled" if st.state == "canceled" else "rejected")
        _finish_intent(ctx, row.intent_id, final, st.reason or st.state)


def _finish_intent(ctx: TickContext, intent_id: str | None, status: str, reason: str) -> None:
    intent = ctx.store.intent_by_id(intent_id) if intent_id else None
    if intent is None or intent.status in ("done", "rejected", "cancelled"):
        return
    if intent.status == "pending":
        ctx.store.set_intent_status(intent.intent_id, "submitted", ctx.now)
    ctx.store.set_intent_status(intent.intent_id, status, ctx.now)
    if status != "done":
        _refuse(ctx, intent, reason, status, record_status=False)


def _plan(ctx: TickContext) -> None:
    """Protective orders to arm or cancel, and the write-ahead rows of this tick's orders."""
    held = {p.position_id for p in ctx.positions.values()}
    open_rows = ctx.store.orders(ctx.slot, open_only=True)
    for o in open_rows:
        if o.purpose in PROTECTIVE and o.state != "submitting" and o.intent_id not in held:
            ctx.to_cancel.append(o.client_order_id)
    rows = ctx.store.orders(ctx.slot, intent_ids=sorted(held))
    for pos in ctx.positions.values():
        entry = next((o for o in rows if o.client_order_id == derive_client_order_id(
            pos.position_id)), None)
        legs = [o for o in rows if o.intent_id == pos.position_id and o.purpose in PROTECTIVE]
        if entry is None or entry.is_open or (legs and all(o.state != "submitting" for o in legs)):
            continue
        req = _protective_request(ctx, pos, legs)
        if req is not None:
            ctx.to_protect.append(req)
    _write_ahead(ctx, open_rows)


def _protective_request(ctx: TickContext, pos: PositionRecord, legs: list[OrderRow]
                        ) -> OrderRequest | None:
    intent = ctx.intent(pos.position_id)
    if intent is None or not (intent.stop_loss or intent.take_profit):
        return None
    sl, tp = fm.stop_levels(float(pos.entry_price), intent.stop_loss, intent.take_profit)
    sl_d = Decimal(repr(sl)) if sl == sl else None
    tp_d = Decimal(repr(tp)) if tp == tp else None
    entry_cid = derive_client_order_id(pos.position_id)
    if not legs:
        pos = replace(pos, stop_loss_price=sl_d, take_profit_price=tp_d)
        ctx.positions[pos.symbol] = pos
        ctx.store.save_position(pos)
        for purpose, suffix, level in (("stop_loss", "sl", sl_d), ("take_profit", "tp", tp_d)):
            if level is not None:
                ctx.store.insert_order(OrderRow(
                    derive_client_order_id(entry_cid, suffix), pos.position_id, ctx.slot,
                    ctx.ex.name, pos.symbol, "sell", purpose.replace("_", "-"), purpose,
                    pos.quantity, "submitting", ctx.now, ctx.now, stop_price=level))
    return OrderRequest(client_order_id=entry_cid, symbol=pos.symbol, side="buy", type="market",
                        quantity=pos.quantity, stop_loss=sl_d, take_profit=tp_d)


def _write_ahead(ctx: TickContext, rows: list[OrderRow]) -> None:
    selling = {o.symbol for o in rows if o.purpose == "exit" and o.is_open}
    buying = {o.symbol for o in rows if o.purpose == "entry" and o.is_open}
    ordered = {o.intent_id for o in rows}
    for intent in ctx.intents:
        if intent.intent_id in ordered:  # a crashed tick wrote its order: settle, never resend
            ctx.store.set_intent_status(intent.intent_id, "submitted", ctx.now)
            continue
        if ctx.store.intent_by_id(intent.intent_id).status != "pending":
            continue  # settled above
        pos = ctx.positions.get(intent.symbol)
        if intent.action == "enter":
            refusal = ("halted" if ctx.state.halted else
                       "duplicate_position" if pos is not None else
                       "duplicate_pending" if intent.symbol in buying else None)
            qty, side, purpose = intent.quantity, "buy", "entry"
        else:
            refusal = ("no_position" if pos is None else
                       "duplicate_pending" if intent.symbol in selling else None)
            qty, side, purpose = (pos.quantity if pos else intent.quantity), "sell", "exit"
        if refusal:
            _refuse(ctx, intent, refusal, "cancelled" if refusal == "halted" else "rejected")
            continue
        cid = derive_client_order_id(intent.intent_id)
        first = ctx.store.insert_order(OrderRow(
            cid, intent.intent_id, ctx.slot, ctx.ex.name, intent.symbol, side, "market", purpose,
            qty, "submitting", ctx.now, ctx.now, limit_price=intent.limit_price))
        ctx.store.set_intent_status(intent.intent_id, "submitted", ctx.now)
        if not first:  # written by an earlier tick and already closed: take its outcome
            row = ctx.store.order(cid)
            if row is not None and not row.is_open:
                _finish_intent(ctx, intent.intent_id, "done" if row.filled_qty > 0 else
                               "rejected", row.reason or row.state)
        else:
            ctx.to_place.append((intent, OrderRequest(client_order_id=cid, symbol=intent.symbol,
                                                      side=side, type="market", quantity=qty)))
        (selling if side == "sell" else buying).add(intent.symbol)


# ---- phase 4: act on the venue ---------------------------------------------------------------
def _act(ctx: TickContext) -> None:
    for cid in ctx.to_cancel:
        try:
            gone = ctx.ex.cancel_order(client_order_id=cid)
            ctx.answers.append((None, cid, "canceled" if gone else "closed_at_venue"))
        except TemporaryError as e:
            ctx.rep.errors.append(f"cancel {cid}: {e}")
    for req in ctx.to_protect:
        if not isinstance(ctx.ex, Protective):
            break
        try:
            ctx.ex.reconcile_protective(req)
            ctx.answers.append((None, req.client_order_id, "protected"))
        except (TemporaryError, AmbiguousOrderError, OrderRejected) as e:
            ctx.rep.errors.append(f"protect {req.client_order_id}: {e}")
    for intent, req in ctx.to_place:
        if time.monotonic() - ctx.started > ctx.config.budget_s:
            ctx.answers.append((intent, req.client_order_id, AmbiguousOrderError("not sent")))
            continue
        try:
            ctx.answers.append((intent, req.client_order_id, ctx.ex.place_order(req)))
        except (OrderRejected, AmbiguousOrderError, TemporaryError) as e:
            ctx.answers.append((intent, req.client_order_id, e))
    if ctx.to_protect:  # arming may fire a stop on bars that closed already
        ctx.venue_fills = _fetch_fills(ctx)
    ctx.marks = marks_for(ctx, sorted(ctx.positions))
    ctx.balance = ctx.ex.balances()


# ---- phase 5: record answers, fills, marks, snapshot, invariant (warehouse) ------------------
def _record_answers(ctx: TickContext) -> None:
    legs = [o for o in ctx.store.orders(ctx.slot, open_only=True)
            if o.purpose in PROTECTIVE and o.state == "submitting"] if ctx.to_protect else []
    for intent, cid, ans in ctx.answers:
        if intent is None:
            _record_protective(ctx, cid, ans, legs)
        elif isinstance(ans, OrderRejected):
            ctx.store.update_order(cid, ctx.now, state="rejected", reason=ans.reason)
            ctx.store.set_intent_status(intent.intent_id, "rejected", ctx.now)
            _refuse(ctx, intent, ans.reason, "rejected", record_status=False)
        elif isinstance(ans, Exception):
            ctx.store.update_order(cid, ctx.now, state="unresolved", reason=str(ans)[:200])
            ctx.rep.errors.append(f"order {cid} unresolved: {ans}")
        else:
            ctx.store.update_order(cid, ctx.now, state=ans.state,  # type: ignore[attr-defined]
                                   venue_order_id=ans.venue_order_id)  # type: ignore[attr-defined]
            ctx.rep.orders_placed.append(cid)


def _record_protective(ctx: TickContext, cid: str, ans: object, legs: list[OrderRow]) -> None:
    if ans == "protected":
        for o in legs:
            if derive_client_order_id(o.intent_id or "") == cid:
                ctx.store.update_order(o.client_order_id, ctx.now, state="open")
    else:
        ctx.store.update_order(cid, ctx.now, state="canceled", reason=f"position_closed ({ans})")


def _refuse(ctx: TickContext, intent: OrderIntent, reason: str, status: str,
            record_status: bool = True) -> None:
    if record_status:
        ctx.store.set_intent_status(intent.intent_id, status, ctx.now)
    ctx.rep.intents_rejected[intent.intent_id] = reason
    ctx.rep.events.append(RiskEvent(
        ts=ctx.now, kind="decision", symbol=intent.symbol, reason=reason,
        details={"intent_id": intent.intent_id, "action": intent.action, "status": status,
                 "stage": "executor", "slot": ctx.slot}))


