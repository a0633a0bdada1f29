"""Recording the venue's answers in the executor tick (``engine.executor``, phases 3 and 5):
an order's venue status taken into its row and intent (``protective.correction``), an order
unknown at the venue settled after the grace period, protective answers
(``executor_protect.record_protection``), placement answers (accepted, rejected, ambiguous ->
``unresolved`` and a warning) and refusals recorded as risk events. Each function only
changes the tick context (``TickContext``); the tick writes it in its own transaction."""

from __future__ import annotations

from trading_brain.domain.intents import OrderIntent
from trading_brain.domain.orders import OrderStatus
from trading_brain.domain.records import OrderRow
from trading_brain.domain.risk import RiskEvent
from trading_brain.engine.executor.context import ORDER_PURPOSES, TickContext
from trading_brain.engine.executor.protect import record_protection, refused, warn
from trading_brain.engine.executor.protective import correction
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
    fix = correction(row, st)
    if fix:
        ctx.update_order(row.client_order_id, **fix)
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
    """Protective answers and confirmed cancels (``executor_protect.record_protection``), then
    each placement's answer; an answer without an intent is the executor's take-profit sell."""
    record_protection(ctx)
    for intent, cid, ans in ctx.answers:
        if isinstance(ans, OrderRejected):
            if intent is None:
                refused(ctx, ctx.rows[cid], ans.reason, str(ans))
                continue
            ctx.update_order(cid, state="rejected", reason=ans.reason)
            ctx.set_status(intent.intent_id, "rejected")
            refuse(ctx, intent, ans.reason, "rejected", record_status=False)
        elif isinstance(ans, Exception):
            ctx.update_order(cid, state="unresolved", reason=str(ans)[:200])
            ctx.rep.errors.append(f"order {cid} unresolved: {ans}")
            warn(ctx, f"order {cid} unresolved (settled by a lookup, never resent): {ans}")
        else:
            ctx.update_order(cid, state=ans.state,  # type: ignore[attr-defined]
                             venue_order_id=ans.venue_order_id)  # type: ignore[attr-defined]
            ctx.rep.orders_placed.append(cid)


def refuse(ctx: TickContext, intent: OrderIntent, reason: str, status: str,
            record_status: bool = True) -> None:
    if record_status:
        ctx.set_status(intent.intent_id, status)
    ctx.rep.intents_rejected[intent.intent_id] = reason
    ctx.rep.events.append(RiskEvent(
        ts=ctx.now, kind="decision", symbol=intent.symbol, reason=reason,
        details={"intent_id": intent.intent_id, "action": intent.action, "status": status,
                 "stage": "executor", "slot": ctx.slot}))
