"""Placing orders in the executor tick: pending intents -> write-ahead rows -> venue calls ->
the venue's answers in the rows (engine/executor/tick.py runs these phases in order).

Contract (DESIGN §6.2):
- ``write_ahead`` (phase 3, warehouse): per pending intent (at most ``max_orders``, oldest
  first), its order row under ``client_order_id = derive_client_order_id(intent_id)``, state
  ``submitting``, purpose the intent's ``purpose`` (``entry``, ``exit`` or ``kill``), and the
  intent ``submitted``. An entry is refused while halted (``cancelled``), while the slot holds
  the symbol or another entry of it is open (``rejected``); an exit always passes and sells the
  whole position (``no_position`` when there is none). An intent whose row exists already (a
  crashed tick wrote it) is never sent again: the row's outcome settles it. On a venue that
  holds protective orders, an exit of a position with open legs is ``guarded``: its intent
  stays pending and ``clear_for_exits`` decides in phase 4.
- ``commit_plan``: the phase's rows are written in ONE transaction before any venue call; a row
  another tick inserted meanwhile is not sent (its stored outcome settles the intent).
- ``send`` (phase 4, venue): guarded exits first (``clear_for_exits``: cancel the legs, confirm
  each by a lookup, send only if none filled), then ``place_order`` for each planned order
  in order, while the tick's ``budget_s`` lasts (later ones are answered "not sent" and
  become ``unresolved``). ``OrderRejected``/``AmbiguousOrderError``/``TemporaryError`` are
  answers; any other exception propagates (a crash: the next tick finds the row by its id).
- ``record_answers`` (phase 5): each answer taken into its row and intent
  (``reconcile.placement``): accepted -> the venue's state and id; refused -> ``rejected``
  with the reason (a take-profit sell's refusal is a protective refusal: protect.refused);
  ambiguous -> ``unresolved`` and a warning, settled by a later lookup, never resent.
"""

from __future__ import annotations

import time

from trading_brain.domain.intents import IntentPurpose
from trading_brain.domain.orders import OrderRequest, derive_client_order_id
from trading_brain.domain.records import OrderRow
from trading_brain.engine.executor.context import EXITS, PROTECTIVE, TickContext
from trading_brain.engine.executor.protect import read_fingerprints, record_protection, refused
from trading_brain.engine.executor.protective import FUNDS
from trading_brain.engine.executor.reconcile import placement, row_outcome
from trading_brain.errors import AmbiguousOrderError, OrderRejected, TemporaryError


# ---- phase 3 ---------------------------------------------------------------------------------
def write_ahead(ctx: TickContext, rows: list[OrderRow]) -> None:
    """Write-ahead rows of this tick's intents (``rows``: the slot's open orders)."""
    selling = {o.symbol for o in rows if o.purpose in EXITS and o.is_open}
    buying = {o.symbol for o in rows if o.purpose == IntentPurpose.ENTRY and o.is_open}
    ordered = {o.intent_id for o in rows}
    for intent in ctx.intents:
        if intent.intent_id in ordered:  # a crashed tick wrote its order: settle, never resend
            ctx.set_status(intent.intent_id, "submitted")
            continue
        if ctx.status_of(intent.intent_id) != "pending":
            continue  # settled by the reconcile
        pos = ctx.positions.get(intent.symbol)
        if intent.purpose == IntentPurpose.ENTRY:
            refusal = ("halted" if ctx.state.halted else
                       "duplicate_position" if pos is not None else
                       "duplicate_pending" if intent.symbol in buying else None)
            qty, side = intent.quantity, "buy"
        else:
            refusal = ("no_position" if pos is None else
                       "duplicate_pending" if intent.symbol in selling else None)
            qty, side = (pos.quantity if pos else intent.quantity), "sell"
        if refusal:
            ctx.refuse(intent, refusal, "cancelled" if refusal == "halted" else "rejected")
            continue
        cid = derive_client_order_id(intent.intent_id)
        row = ctx.rows.get(cid)  # every order of a pending intent was loaded
        new = OrderRow(cid, intent.intent_id, ctx.slot, ctx.ex.name, intent.symbol, side,
                       "market", intent.purpose.value, qty, "submitting", ctx.now, ctx.now,
                       limit_price=intent.limit_price)
        legs = [o.client_order_id for o in rows if pos is not None and side == "sell"
                and o.intent_id == pos.position_id and o.purpose in PROTECTIVE
                and ctx.guards_exits]
        if legs and row is None:
            ctx.guarded.append((intent, new, legs))
            selling.add(intent.symbol)
            continue
        ctx.insert_order(new)
        ctx.set_status(intent.intent_id, "submitted")
        if row is not None:  # written by an earlier tick and already closed: take its outcome
            if not row.is_open:
                ctx.finish_intent(intent.intent_id, *row_outcome(row))
        else:
            ctx.to_place.append((intent, OrderRequest(client_order_id=cid, symbol=intent.symbol,
                                                      side=side, type="market", quantity=qty)))
        (selling if side == "sell" else buying).add(intent.symbol)


def commit_plan(ctx: TickContext) -> None:
    """Write the phase (one transaction, none when there is nothing to write), then drop the
    orders another tick wrote meanwhile: never sent, their stored outcome settles the intent."""
    inserted: set[str] = set()
    if ctx.w:  # a COMMIT costs more than a statement
        with ctx.store.atomic():
            inserted = ctx.flush()
    lost = {r.client_order_id for _, r in ctx.to_place} - inserted
    if not lost:
        return
    ctx.to_place = [p for p in ctx.to_place if p[1].client_order_id not in lost]
    for row in ctx.store.orders_by_cids(sorted(lost)):
        ctx.rows[row.client_order_id] = row
        if not row.is_open:
            ctx.finish_intent(row.intent_id, *row_outcome(row))
    with ctx.store.atomic():
        ctx.flush()


# ---- phase 4 ---------------------------------------------------------------------------------
def clear_for_exits(ctx: TickContext) -> None:
    """Guarded exits: cancel the position's protective orders (a venue may hold the coins for
    untriggered triggers) and confirm each by a lookup; an exit whose legs are all confirmed
    closed without a fill is written ahead (own transaction) and joins ``to_place``. When a
    leg filled meanwhile, or a cancel is not confirmed, the exit is not sent: its intent stays
    pending and the next tick (which records the leg's fill or retries) decides again."""
    clear = []
    for intent, row, legs in ctx.guarded:
        ok = True
        for cid in legs:
            try:
                if cid not in ctx.confirmed:
                    ctx.ex.cancel_order(client_order_id=cid)
                    ctx.confirmed[cid] = st = ctx.ex.order_by_client_id(cid)
                else:
                    st = ctx.confirmed[cid]
            except (TemporaryError, AmbiguousOrderError, OrderRejected) as e:
                ctx.rep.errors.append(f"cancel {cid} before {row.purpose}: {e}")
                ok = False
                continue
            if st is not None and (not st.is_terminal or st.filled_qty > 0):
                ok = False  # still open, or the protective sell (partly) filled: no exit now
        if ok:
            ctx.insert_order(row)
            if intent is not None:  # None: the executor's take-profit sell
                ctx.set_status(intent.intent_id, "submitted")
            clear.append((intent, row))
    if not clear:
        return
    with ctx.store.atomic():
        inserted = ctx.flush()
    for intent, row in clear:
        if row.client_order_id in inserted:  # else written by another tick: never send twice
            ctx.to_place.append((intent, OrderRequest(
                client_order_id=row.client_order_id, symbol=row.symbol, side="sell",
                type="market", quantity=row.quantity)))


def send(ctx: TickContext) -> None:
    """Guarded exits, then every planned order while the budget lasts (module contract)."""
    if ctx.guarded:
        clear_for_exits(ctx)
    for intent, req in ctx.to_place:
        cid = req.client_order_id
        if time.monotonic() - ctx.started > ctx.config.budget_s:
            ctx.answers.append((intent, cid, AmbiguousOrderError("not sent")))
            continue
        try:
            ctx.answers.append((intent, cid, ctx.ex.place_order(req)))
        except (OrderRejected, AmbiguousOrderError, TemporaryError) as e:
            ctx.answers.append((intent, cid, e))
            if isinstance(e, OrderRejected) and e.reason == FUNDS and intent is None:
                read_fingerprints(ctx, [req.symbol])  # the state a retry must see changed


# ---- phase 5 ---------------------------------------------------------------------------------
def record_answers(ctx: TickContext) -> None:
    """Protective answers and confirmed cancels (protect.record_protection), then each
    placement's answer; an answer without an intent is the executor's take-profit sell."""
    record_protection(ctx)
    for intent, cid, ans in ctx.answers:
        p = placement(ans)
        if p.kind == "rejected" and intent is None:
            refused(ctx, ctx.rows[cid], p.reason or "rejected", str(ans))
            continue
        ctx.update_order(cid, **p.fields)
        if p.kind == "rejected" and intent is not None:
            ctx.set_status(intent.intent_id, "rejected")
            ctx.refuse(intent, p.reason or "rejected", "rejected", record_status=False)
        elif p.kind == "unresolved":
            ctx.rep.errors.append(f"order {cid} unresolved: {ans}")
            ctx.rep.warn(f"order {cid} unresolved (settled by a lookup, never resent): {ans}")
        else:
            ctx.rep.orders_placed.append(cid)
