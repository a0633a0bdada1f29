"""Recording the venue's answers in the executor tick (``engine.executor``, phases 3 and 5):
an order's venue status taken into its row and intent, an order unknown at the venue settled
after the grace period, protective legs armed or canceled, placement answers (accepted,
rejected, ambiguous -> ``unresolved``) and refusals recorded as risk events. Each function only
changes the tick context (``TickContext``); the tick writes it in its own transaction."""

from __future__ import annotations

from trading_brain.domain.intents import OrderIntent
from trading_brain.domain.orders import OrderStatus, derive_client_order_id
from trading_brain.domain.risk import RiskEvent
from trading_brain.engine.executor_types import ORDER_PURPOSES, PROTECTIVE, TickContext
from trading_brain.engine.ledger import OrderRow
from trading_brain.errors import OrderRejected


def unknown_at_venue(ctx: TickContext, row: OrderRow) -> None:
    if row.state not in ("submitting", "unresolved"):
        ctx.rep.errors.append(f"order {row.client_order_id} ({row.state}) unknown at the venue")
        return
    if ctx.now - row.created_at >= ctx.config.unresolved_grace:
        ctx.update_order(row.client_order_id, state="rejected", reason="not_at_venue")
        finish_intent(ctx, row.intent_id, "rejected", "not_at_venue")
    elif row.state == "submitting":
        ctx.update_order(row.client_order_id, state="unresolved")
    ctx.rep.orders_updated.append(row.client_order_id)


def apply_status(ctx: TickContext, row: OrderRow, st: OrderStatus) -> None:
    """Take the venue's view of an order (state, fill, fee, venue id, trigger price as held)."""
    stop = st.stop_price if st.stop_price is not None else row.stop_price
    if (st.state, st.filled_qty, st.fee, st.venue_order_id, stop) != (
            row.state, row.filled_qty, row.fee, row.venue_order_id, row.stop_price):
        ctx.update_order(row.client_order_id, state=st.state, venue_order_id=st.venue_order_id,
                         filled_qty=st.filled_qty, avg_price=st.avg_price, fee=st.fee,
                         reason=st.reason, stop_price=stop)
        ctx.rep.orders_updated.append(row.client_order_id)
    if st.is_terminal and row.purpose in ORDER_PURPOSES:
        final = ("done" if st.filled_qty > 0 else
                 "cancelled" if st.state == "canceled" else "rejected")
        finish_intent(ctx, row.intent_id, final, st.reason or st.state)


def finish_intent(ctx: TickContext, intent_id: str | None, status: str, reason: str) -> None:
    intent = ctx.intent(intent_id) if intent_id else None
    if intent is None or ctx.status_of(intent.intent_id) in ("done", "rejected", "cancelled"):
        return
    if ctx.status_of(intent.intent_id) == "pending":
        ctx.set_status(intent.intent_id, "submitted")
    ctx.set_status(intent.intent_id, status)
    if status != "done":
        refuse(ctx, intent, reason, status, record_status=False)


# ---- phase 5: record answers, fills, marks, snapshot, invariant (warehouse) ------------------
def record_answers(ctx: TickContext) -> None:
    legs: dict[str, list[OrderRow]] = {}  # entry client order id -> its submitting legs
    for o in ctx.open_rows() if ctx.to_protect else []:
        if o.purpose in PROTECTIVE and o.state == "submitting":
            legs.setdefault(derive_client_order_id(o.intent_id or ""), []).append(o)
    for cid, st in ctx.confirmed.items():  # protective legs cancelled before an exit
        row = ctx.rows[cid]
        if st is None:
            ctx.update_order(cid, state="canceled", reason="canceled_for_exit (not at venue)")
        else:
            apply_status(ctx, row, st)
            if st.state == "canceled" and st.filled_qty == 0:
                ctx.update_order(cid, reason="canceled_for_exit")
    for intent, cid, ans in ctx.answers:
        if intent is None:
            record_protective(ctx, cid, ans, legs)
        elif isinstance(ans, OrderRejected):
            ctx.update_order(cid, state="rejected", reason=ans.reason)
            ctx.set_status(intent.intent_id, "rejected")
            refuse(ctx, intent, ans.reason, "rejected", record_status=False)
        elif isinstance(ans, Exception):
            ctx.update_order(cid, state="unresolved", reason=str(ans)[:200])
            ctx.rep.errors.append(f"order {cid} unresolved: {ans}")
        else:
            ctx.update_order(cid, state=ans.state,  # type: ignore[attr-defined]
                             venue_order_id=ans.venue_order_id)  # type: ignore[attr-defined]
            ctx.rep.orders_placed.append(cid)


def record_protective(ctx: TickContext, cid: str, ans: object,
                       legs: dict[str, list[OrderRow]]) -> None:
    """Legs armed for entry ``cid``: the venue's status of each when its answer carries one
    (Kraken's ``Protection``: venue order id, trigger price as sent), else ``open``; or a
    protective order of a closed position cancelled."""
    if isinstance(ans, tuple) and ans[0] == "protected":
        for o in legs.get(cid, []):
            st = getattr(ans[1], o.purpose, None)
            if isinstance(st, OrderStatus):
                ctx.update_order(o.client_order_id, state=st.state,
                                 venue_order_id=st.venue_order_id, filled_qty=st.filled_qty,
                                 avg_price=st.avg_price, fee=st.fee, stop_price=(
                                     st.stop_price if st.stop_price is not None
                                     else o.stop_price))
            else:
                ctx.update_order(o.client_order_id, state="open")
    else:
        ctx.update_order(cid, state="canceled", reason=f"position_closed ({ans})")


def refuse(ctx: TickContext, intent: OrderIntent, reason: str, status: str,
            record_status: bool = True) -> None:
    if record_status:
        ctx.set_status(intent.intent_id, status)
    ctx.rep.intents_rejected[intent.intent_id] = reason
    ctx.rep.events.append(RiskEvent(
        ts=ctx.now, kind="decision", symbol=intent.symbol, reason=reason,
        details={"intent_id": intent.intent_id, "action": intent.action, "status": status,
                 "stage": "executor", "slot": ctx.slot}))
