"""Reconcile: the venue is the truth. Pure decisions over (stored rows, the venue's answers),
returned as data; the tick (engine/executor/tick.py) applies them and does all the I/O.

Contract (DESIGN §6.2, step 2 of a tick), one function per kind of answer:
- ``reconcile_orders(rows, statuses, now, grace)``: one ``OrderFix`` per open row the venue was
  asked about, in the rows' order. A known order takes the venue's view (``correction``: state,
  venue id, filled quantity, average price, fee, reason, trigger price as held; no fields when
  it agrees; counted as updated only when something changed); a finished order of an intent
  (purpose entry/exit/kill) settles the intent: ``done`` when anything filled, ``cancelled``
  when the venue cancelled it, else ``rejected`` (reason: the venue's, else its state). An
  order the venue does not know: a ``submitting``/``unresolved`` row becomes ``unresolved``
  and, once ``grace`` has passed since it was written, ``rejected`` (``not_at_venue``), its
  intent too; it is never resent. Any other state unknown at the venue is an error of the
  tick and changes nothing.
- ``settling_intents``: the intents those fixes may settle (the tick reads them in one query).
- ``row_outcome``: the outcome of an intent whose order row is already finished (found again
  after a crash, or written meanwhile by another tick).
- ``confirmed_cancel``: a cancel confirmed by a lookup (``None``: the venue does not know it).
- ``placement``: the row change for a venue's answer to ``place_order`` (accepted; refused ->
  ``rejected`` with the reason; ambiguous/transient -> ``unresolved``, settled by a later
  lookup by client id, never resent).
- ``protection``: the stop row change for a ``reconcile_protective`` answer.
- ``fresh_fills`` / ``adopted_rows``: the venue's fills not stored yet, and rows for protective
  sells known only by their fills (the paper venue's take-profit, a row lost in a crash).
- ``without_baseline``: the venue's balances minus the coins held before the bot (live).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from trading_brain.domain.intents import INTENT_ORDER_PURPOSES
from trading_brain.domain.orders import (
    Balance,
    Fill,
    OrderAck,
    OrderStatus,
    derive_client_order_id,
)
from trading_brain.domain.records import OrderRow, PositionRecord
from trading_brain.engine.executor.protective import LEGS, Protection, leg_cid
from trading_brain.errors import OrderRejected

NOT_AT_VENUE = "not_at_venue"


@dataclass(frozen=True, slots=True)
class IntentOutcome:
    """The final status of an intent (``done``/``rejected``/``cancelled``) and why."""

    intent_id: str
    status: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderFix:
    """One order's correction: the row ``fields`` to set (empty: none), whether the tick's
    report counts it as updated (or as a confirmed cancel), the intent it settles, an error."""

    client_order_id: str
    fields: Mapping[str, object] = field(default_factory=dict)
    updated: bool = False
    cancelled: bool = False
    intent: IntentOutcome | None = None
    error: str | None = None


def correction(row: OrderRow, st: OrderStatus) -> dict[str, object] | None:
    """The fields of ``row`` to change so it says what the venue says (None: it agrees)."""
    stop = st.stop_price if st.stop_price is not None else row.stop_price
    if (st.state, st.filled_qty, st.fee, st.venue_order_id, stop) == (
            row.state, row.filled_qty, row.fee, row.venue_order_id, row.stop_price):
        return None
    return {"state": st.state, "venue_order_id": st.venue_order_id, "filled_qty": st.filled_qty,
            "avg_price": st.avg_price, "fee": st.fee, "reason": st.reason, "stop_price": stop}


def finished_status(st: OrderStatus) -> str:
    """The final status of the intent of a finished order."""
    return "done" if st.filled_qty > 0 else "cancelled" if st.state == "canceled" else "rejected"


def known_order(row: OrderRow, st: OrderStatus) -> OrderFix:
    """The venue knows the order: take its view; a finished order of an intent settles it."""
    fix = correction(row, st) or {}
    settled = None
    if st.is_terminal and row.purpose in INTENT_ORDER_PURPOSES and row.intent_id:
        settled = IntentOutcome(row.intent_id, finished_status(st), st.reason or st.state)
    return OrderFix(row.client_order_id, fix, bool(fix), intent=settled)


def unknown_order(row: OrderRow, now: datetime, grace: timedelta) -> OrderFix:
    """The venue does not know the order (see the module contract)."""
    cid = row.client_order_id
    if row.state not in ("submitting", "unresolved"):
        return OrderFix(cid, error=f"order {cid} ({row.state}) unknown at the venue")
    if now - row.created_at >= grace:
        settled = (IntentOutcome(row.intent_id, "rejected", NOT_AT_VENUE)
                   if row.intent_id else None)
        return OrderFix(cid, {"state": "rejected", "reason": NOT_AT_VENUE}, True, intent=settled)
    fields: dict[str, object] = {"state": "unresolved"} if row.state == "submitting" else {}
    return OrderFix(cid, fields, True)


def reconcile_orders(rows: Sequence[OrderRow], statuses: Mapping[str, OrderStatus | None],
                     now: datetime, grace: timedelta) -> list[OrderFix]:
    """One fix per row the venue answered for (``statuses``: client id -> status or None)."""
    out = []
    for row in rows:
        if row.client_order_id not in statuses:
            continue  # not asked (the lookup failed): unchanged until a later tick
        st = statuses[row.client_order_id]
        out.append(unknown_order(row, now, grace) if st is None else known_order(row, st))
    return out


def settling_intents(rows: Sequence[OrderRow], statuses: Mapping[str, OrderStatus | None]
                     ) -> list[str]:
    """Intent ids of the rows whose answer may settle their intent (finished or unknown)."""
    out = []
    for o in rows:
        if o.intent_id and o.purpose in INTENT_ORDER_PURPOSES and o.client_order_id in statuses:
            st = statuses[o.client_order_id]
            if st is None or st.is_terminal:
                out.append(o.intent_id)
    return out


def row_outcome(row: OrderRow) -> tuple[str, str]:
    """(final intent status, reason) of an intent whose order row is finished."""
    return ("done" if row.filled_qty > 0 else "rejected"), row.reason or row.state


def confirmed_cancel(row: OrderRow, st: OrderStatus | None, why: str) -> OrderFix:
    """A cancel confirmed by a lookup: the row says what the venue says; ``cancelled`` when
    nothing filled (``why`` is then its reason)."""
    cid = row.client_order_id
    if st is None:
        return OrderFix(cid, {"state": "canceled", "reason": f"{why} (not at venue)"},
                        cancelled=True)
    fields = dict(correction(row, st) or {})
    done = st.state == "canceled" and st.filled_qty == 0
    if done:
        fields["reason"] = why
    return OrderFix(cid, fields, cancelled=done)


PlacementKind = Literal["placed", "rejected", "unresolved"]


@dataclass(frozen=True, slots=True)
class Placement:
    """The row change for one ``place_order`` answer (``reason``: the refusal's code)."""

    kind: PlacementKind
    fields: Mapping[str, object]
    reason: str | None = None


def placement(answer: OrderAck | Exception) -> Placement:
    """``answer``: the ack, or the ``OrderRejected``/ambiguous/transient error raised."""
    if isinstance(answer, OrderRejected):
        return Placement("rejected", {"state": "rejected", "reason": answer.reason},
                         answer.reason)
    if isinstance(answer, Exception):
        return Placement("unresolved", {"state": "unresolved", "reason": str(answer)[:200]})
    return Placement("placed", {"state": answer.state, "venue_order_id": answer.venue_order_id})


ProtectionKind = Literal["placed", "refused", "ambiguous", "not_sent"]


def protection(row: OrderRow, p: Protection) -> tuple[ProtectionKind, dict[str, object]]:
    """The stop row's change after ``reconcile_protective``: placed (the venue's view of the
    stop; ``open`` with the venue id when its lookup failed), refused (the tick stores the
    reason with the fingerprint), ambiguous (unchanged: a later lookup settles it), or not
    sent (the venue's entry is not filled yet)."""
    if p.stop_loss is not None:
        return "placed", correction(row, p.stop_loss) or {}
    if p.refused:
        return "refused", {}
    if p.venue_order_id:
        return "placed", {"state": "open", "venue_order_id": p.venue_order_id}
    if p.error:
        return "ambiguous", {}
    return "not_sent", {"state": "rejected", "reason": "entry_not_filled"}


def fresh_fills(venue: Sequence[Fill], known: Iterable[str]) -> list[Fill]:
    """The venue's fills whose ids are not stored yet (the venue's order)."""
    stored = set(known)
    return [f for f in venue if f.fill_id not in stored]


def adopted_rows(positions: Iterable[PositionRecord], fresh: Sequence[Fill],
                 known: Container[str], slot: str, venue: str,
                 now: datetime) -> list[OrderRow]:
    """Rows for protective sells found only through their fills (client id
    ``leg_cid(entry, leg)`` of a held position, no row in ``known``): a row of the leg's
    purpose with the fills' totals."""
    wanted: dict[str, tuple[str, PositionRecord]] = {}
    for pos in positions:
        entry = derive_client_order_id(pos.position_id)
        for purpose, leg in LEGS.items():
            wanted[leg_cid(entry, leg)] = (purpose, pos)
    out = []
    for cid in sorted({f.client_order_id for f in fresh if f.client_order_id
                       and f.client_order_id not in known and f.client_order_id in wanted}):
        purpose, pos = wanted[cid]
        mine = [f for f in fresh if f.client_order_id == cid]
        qty = sum((f.qty for f in mine), Decimal(0))
        value = sum((f.qty * f.price for f in mine), Decimal(0))
        out.append(OrderRow(
            cid, pos.position_id, slot, venue, pos.symbol, "sell",
            "market" if purpose == "take_profit" else "stop-loss", purpose, pos.quantity,
            "filled" if qty >= pos.quantity else "partially_filled", mine[0].ts, now,
            venue_order_id=mine[0].venue_order_id, filled_qty=qty,
            avg_price=value / qty if qty else None,
            fee=sum((f.fee for f in mine), Decimal(0)),
            stop_price=pos.take_profit_price if purpose == "take_profit" else
            pos.stop_loss_price, reason="taken from the venue's fills"))
    return out


def without_baseline(venue: Balance, baseline: Mapping[str, Decimal]) -> Balance:
    """The venue's balances minus the baseline (the coins held before the bot's first tick):
    what the ledger accounts for. Whatever reconciles a live slot with the venue compares
    these."""
    if not baseline:
        return venue
    assets = {**venue.assets}
    for a, q in baseline.items():
        assets[a] = assets.get(a, Decimal(0)) - q
    return Balance(assets=assets)
