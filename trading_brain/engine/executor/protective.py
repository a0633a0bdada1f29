"""Protective orders of a position, as pure functions over (rows, venue answers) -> decisions.

Contract (DESIGN §6.2; issue 15). One contract for every venue:
- A position has at most ONE live exchange-native stop-loss: a row of purpose ``stop_loss``
  (a ``stop-loss`` trigger sell of the position's quantity at the level fixed from the entry
  fill). Nothing else rests at the venue for it: a venue may hold the coins of an untriggered
  trigger, so a second trigger for the same coins would be refused.
- The take-profit is an exit, not a resting order: when a bar (or the last price) reaches the
  level, the executor cancels the stop, confirms the cancel by a lookup, then sends a market
  sell of purpose ``take_profit``; when the stop filled meanwhile nothing is sold. The paper
  venue models this exit itself at the level on the bar (the fill model, DESIGN §6), so its
  trades equal the backtest's; the rows it leaves are the same: the stop ``canceled``, a
  ``take_profit`` market sell ``filled``.
- Attempts: leg ``sl``/``tp`` attempt 1 has client id ``derive_client_order_id(entry, leg)``,
  attempt n > 1 ``derive_client_order_id(entry, f"{leg}{n}")``: one row per venue request, so a
  request is never repeated under the same id.
- A leg refused for funds (``insufficient_funds``) is never retried blindly. Its row is
  ``rejected`` with reason ``insufficient_funds fp=<fingerprint>``; the fingerprint
  (``fingerprint``) is a hash of (the position's quantity, the venue's total balance of the base
  asset, the venue's open orders of the symbol other than the position's own protective legs,
  as (client id or venue id, side, type, quantity left)). Together these determine the venue's
  free balance of the base asset, so the next attempt is made only on a tick where that
  fingerprint differs ("something changed": a fill, a deposit or withdrawal, another order
  placed or gone). While a reached take-profit is blocked, the stop is still (re-)armed.
- ``plan`` decides per position and tick. What a venue's answer changes in a row (the open-order
  reconcile, a ``reconcile_protective`` answer) is engine/executor/reconcile.py.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from trading_brain.domain.orders import OrderStatus, derive_client_order_id
from trading_brain.domain.records import OrderRow
from trading_brain.engine import fills as fm

FUNDS = "insufficient_funds"
LIVE_STATES = ("submitting", "unresolved", "pending", "open", "partially_filled")
LEGS = {"stop_loss": "sl", "take_profit": "tp"}
# a terminal stop that must be replaced while its position is open (a retry with a new id)
REARM = ("canceled", "expired")
REARM_REASONS = ("not_at_venue",)


@dataclass(frozen=True, slots=True)
class Protection:
    """What a venue's ``reconcile_protective`` learnt and did for one entry. It never raises
    once it learnt something: a refusal is in ``refused`` (its reason code), any other failure
    in ``error`` (``ambiguous`` True when the request may have reached the venue)."""

    entry: OrderStatus | None
    stop_loss: OrderStatus | None = None
    actions: tuple[str, ...] = ()
    venue_order_id: str | None = None  # of the stop placed now (when its lookup failed)
    refused: str | None = None
    error: str | None = None
    ambiguous: bool = False


@dataclass(slots=True)
class Decision:
    """What one position needs this tick: ``arm`` (client id of a stop to place),
    ``take_profit`` (client id of the take-profit sell; live stops are cancelled first) or
    ``blocked`` (why nothing is sent although the position is not fully protected)."""

    arm: str | None = None
    take_profit: str | None = None
    blocked: str | None = None
    live_stops: list[str] = field(default_factory=list)


def leg_cid(entry_cid: str, leg: str, attempt: int = 1) -> str:
    """Client id of attempt ``attempt`` of ``leg`` (``sl``/``tp``) of the entry ``entry_cid``."""
    return derive_client_order_id(entry_cid, leg if attempt <= 1 else f"{leg}{attempt}")


def fingerprint(qty: Decimal, base_total: Decimal,
                open_orders: Iterable[tuple[str, str, str, Decimal]]) -> str:
    """Hash of what decides whether a protective sell of the position can be paid."""
    text = "|".join([format(qty.normalize(), "f"), format(base_total.normalize(), "f"),
                     *sorted(f"{c},{s},{t},{format(q.normalize(), 'f')}"
                             for c, s, t, q in open_orders)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def venue_fingerprint(qty: Decimal, base_total: Decimal, symbol: str,
                      orders: Iterable[OrderStatus], own: Iterable[str] = ()) -> str:
    """``fingerprint`` over a venue's ``open_orders()`` answer: the symbol's orders except the
    position's own protective legs (``own`` client ids: re-arming its stop is not a change)."""
    mine = set(own)
    return fingerprint(qty, base_total, (
        (o.client_order_id or o.venue_order_id or "", o.side, str(o.order_type),
         o.quantity - o.filled_qty) for o in orders
        if o.symbol == symbol and o.client_order_id not in mine))


def funds_reason(fp: str) -> str:
    return f"{FUNDS} fp={fp}"


def refused_fp(row: OrderRow) -> str | None:
    """The fingerprint stored with a leg refused for funds (None: not such a row)."""
    if row.state != "rejected" or not (row.reason or "").startswith(FUNDS):
        return None
    _, _, fp = (row.reason or "").partition("fp=")
    return fp or "?"


def take_profit_reached(bars: Sequence[tuple], last: float | None, sl: float | None,
                        tp: float) -> bool:
    """The fill model's rule (engine/fills.py ``stop_exit``) over ``(ts, open, high, low…)``
    bars after the entry bar, oldest first: True at the first bar where the take-profit
    fires; False when the stop-loss fires first (the venue's stop sells). Then the last price:
    ``last >= tp`` is a take-profit too (a tick between bars)."""
    sl_level = sl if sl is not None else math.nan
    for bar in bars:
        hit = fm.stop_exit(float(bar[1]), float(bar[2]), float(bar[3]), sl_level, tp)
        if hit is not None:
            return hit[1] == "take_profit"
    return last is not None and last >= tp


def _latest(rows: Sequence[OrderRow]) -> OrderRow | None:
    return max(rows, key=lambda r: (r.created_at, r.client_order_id)) if rows else None


def _next(entry_cid: str, leg: str, rows: Sequence[OrderRow]) -> str:
    taken = {r.client_order_id for r in rows}
    n = len(rows) + 1
    while leg_cid(entry_cid, leg, n) in taken:
        n += 1
    return leg_cid(entry_cid, leg, n)


def plan(entry_cid: str, has_stop: bool, stops: Sequence[OrderRow], tps: Sequence[OrderRow],
         tp_hit: bool, exiting: bool, fp_now: str | None) -> Decision:
    """Decide for one open position (see the module contract). ``stops``/``tps``: every row
    of that leg of the position; ``exiting``: an exit intent of the position is pending;
    ``fp_now``: the fingerprint now (None when not read: a refused leg then stays blocked)."""
    live = [r.client_order_id for r in stops if r.state in LIVE_STATES]
    out = Decision(live_stops=live)
    if any(r.state in LIVE_STATES for r in tps) or exiting:
        return out  # a take-profit or an exit is on its way
    if tp_hit:
        out.blocked = _held_back(tps, fp_now)
        if out.blocked is None:
            out.take_profit = _next(entry_cid, "tp", tps)
            return out
    if live or not has_stop:
        return out  # protected (or nothing to protect with); a blocked take-profit stays so
    blocked = _held_back(stops, fp_now)
    if blocked is not None:
        out.blocked = "; ".join(b for b in (out.blocked, blocked) if b)
        return out
    last = _latest(stops)
    if last is None or last.state in REARM or last.state == "rejected":
        out.arm = _next(entry_cid, "sl", stops)
    return out


def _held_back(rows: Sequence[OrderRow], fp_now: str | None) -> str | None:
    """Why the leg's next attempt must not be sent (None: it may): its latest row was refused
    for funds and the fingerprint did not change, or refused for a reason a retry cannot
    change (anything but ``insufficient_funds`` and ``REARM_REASONS``)."""
    last = _latest(rows)
    if last is None or last.state != "rejected":
        return None
    fp = refused_fp(last)
    if fp is not None:
        return None if fp_now is not None and fp_now != fp else \
            f"{last.purpose} {last.client_order_id}: {last.reason}"
    if (last.reason or "") in REARM_REASONS:
        return None
    return f"{last.purpose} {last.client_order_id}: {last.reason}"


def needs_fingerprint(stops: Sequence[OrderRow], tps: Sequence[OrderRow]) -> bool:
    """Whether ``plan`` would look at the fingerprint (the latest leg was refused for funds)."""
    return any(refused_fp(r) is not None for r in (_latest(stops), _latest(tps)) if r)
