"""The ledger: fills -> positions and cash entries (pure).

Contract (DESIGN §6, issue "The trading loop"):
- Money is ``Decimal`` computed in a 60-digit context and quantized to 18 decimals
  (``domain.records.money``/``mul``), the precision of the warehouse columns, so what is stored
  is exactly what was computed. The rows (``CashEntry``, ``PositionRecord``, ``OrderRow``) are
  the storage records of ``domain.records``; this module only computes them.
- A fill moves cash twice: ``buy`` (-qty x price) or ``sell`` (+qty x price), and ``fee``
  (-fee); entry ids are ``<fill_id>:<cause>`` so replaying a fill cannot add a second entry.
- A position (one per symbol and slot, id = the entry intent id) tracks the open quantity, its
  cost basis (average cost), the entry fee, stop levels and the max adverse excursion. A sell
  takes cost out pro rata; when the quantity reaches zero the position closes with
  ``realized_pnl`` = exit value - entry cost - entry fee - exit fees (net, like engine/portfolio).
- Snapshots, the invariant and the venue reconcile live in ``engine.valuation``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal, localcontext

from trading_brain.domain.orders import Fill
from trading_brain.domain.records import PREC, ZERO, CashEntry, PositionRecord, money, mul
from trading_brain.errors import DataError


@dataclass(frozen=True, slots=True)
class PositionMeta:
    """What the entry intent says about a new position."""

    position_id: str
    strategy_id: str = "unknown"
    version: int = 1
    intent_type: str = "swing"


@dataclass(frozen=True, slots=True)
class FillEffect:
    """What one fill does: the position after it, the cash entries, and a closed trade if any."""

    position: PositionRecord
    entries: list[CashEntry]
    closed: bool
    opened: bool


def cash_entries(fill: Fill, slot: str, balance: Decimal) -> list[CashEntry]:
    """The two cash movements of ``fill`` starting from ``balance``."""
    notional = mul(fill.qty, fill.price)
    first = ("buy", -notional) if fill.side == "buy" else ("sell", notional)
    out: list[CashEntry] = []
    with localcontext(prec=PREC):
        for cause, amount in (first, ("fee", -money(fill.fee))):
            balance = balance + amount
            out.append(CashEntry(f"{fill.fill_id}:{cause}", fill.ts, slot, amount, balance,
                                 cause, fill.fill_id, fill.symbol))
    return out


def apply_fill(position: PositionRecord | None, fill: Fill, slot: str, balance: Decimal,
               meta: PositionMeta | None, reason: str = "signal") -> FillEffect:
    """Apply one fill to the slot's position in ``fill.symbol`` (pure)."""
    entries = cash_entries(fill, slot, balance)
    if fill.side == "buy":
        return _buy(position, fill, slot, meta, entries)
    if position is None or position.status != "open" or position.quantity <= 0:
        raise DataError(f"sell fill {fill.fill_id} for {fill.symbol} without an open position")
    if fill.qty > position.quantity:
        raise DataError(f"sell fill {fill.fill_id} sells {fill.qty} > held {position.quantity}")
    return _sell(position, fill, reason, entries)


def _buy(pos: PositionRecord | None, fill: Fill, slot: str, meta: PositionMeta | None,
         entries: list[CashEntry]) -> FillEffect:
    cost, fee = mul(fill.qty, fill.price), money(fill.fee)
    with localcontext(prec=PREC):
        if pos is not None and pos.status == "open":
            new = replace(pos, quantity=pos.quantity + fill.qty, cost_basis=pos.cost_basis + cost,
                          entry_fee=pos.entry_fee + fee, entry_cost=pos.entry_cost + cost,
                          updated_at=fill.ts)
            return FillEffect(new, entries, closed=False, opened=False)
    if meta is None:
        raise DataError(f"buy fill {fill.fill_id} opens a position without an entry intent")
    new = PositionRecord(meta.position_id, fill.symbol, slot, meta.strategy_id, meta.version,
                         meta.intent_type, "open", fill.qty, cost, fee, fill.ts, fill.ts,
                         entry_cost=cost)
    return FillEffect(new, entries, closed=False, opened=True)


def _sell(pos: PositionRecord, fill: Fill, reason: str, entries: list[CashEntry]) -> FillEffect:
    value, fee = mul(fill.qty, fill.price), money(fill.fee)
    with localcontext(prec=PREC):
        left = pos.quantity - fill.qty
        cost_left = money(pos.cost_basis * left / pos.quantity) if left > 0 else ZERO
        new = replace(pos, quantity=left, cost_basis=cost_left, sold_qty=pos.sold_qty + fill.qty,
                      exit_value=pos.exit_value + value, exit_fee=pos.exit_fee + fee,
                      updated_at=fill.ts)
        if left > 0:
            return FillEffect(new, entries, closed=False, opened=False)
        pnl = new.exit_value - pos.entry_cost - pos.entry_fee - new.exit_fee
        new = replace(new, status="closed", exit_time=fill.ts, exit_reason=reason,
                      realized_pnl=money(pnl))
    return FillEffect(new, entries, closed=True, opened=False)


def adverse_excursion(pos: PositionRecord, low: float) -> PositionRecord:
    """Track the worst fractional move against the entry price (a positive number)."""
    entry = float(pos.entry_price)
    if entry <= 0 or pos.status != "open":
        return pos
    mae = max(pos.max_adverse_excursion, (entry - low) / entry)
    return pos if mae == pos.max_adverse_excursion else replace(pos, max_adverse_excursion=mae)
