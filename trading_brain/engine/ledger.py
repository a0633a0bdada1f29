"""The ledger: fills -> positions and cash entries (pure).

Contract (DESIGN §6, issue "The trading loop"):
- Money is ``Decimal`` computed in a 60-digit context and quantized to 18 decimals (``money``),
  the precision of the warehouse columns, so what is stored is exactly what was computed.
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
from datetime import datetime
from decimal import Context, Decimal, localcontext

from trading_brain.domain.orders import Fill
from trading_brain.errors import DataError

PREC = 60
QUANT = Decimal("1e-18")
CENT = Decimal("0.01")
ZERO = Decimal(0)


# The 60-digit context the money helpers compute in: what ``localcontext(prec=PREC)`` makes of
# the default context (nothing in the project changes the thread's context), built once instead
# of per call (a context manager per product was a visible share of the executor tick).
MONEY = Context(prec=PREC)


def money(x: Decimal) -> Decimal:
    """``x`` quantized to the warehouse's 18 decimals."""
    return x.quantize(QUANT, context=MONEY)


def mul(a: Decimal, b: Decimal) -> Decimal:
    """Exact product, quantized (``money(a*b)``), in one 60-digit context."""
    return MONEY.multiply(a, b).quantize(QUANT, context=MONEY)


OPEN_ORDER_STATES = ("submitting", "unresolved", "pending", "open", "partially_filled")


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One row of ``orders``: write-ahead ``submitting``, then the venue's answer."""

    client_order_id: str
    intent_id: str | None
    slot: str
    venue: str
    symbol: str
    side: str
    order_type: str
    purpose: str  # entry | exit | stop_loss | take_profit | kill
    quantity: Decimal
    state: str
    created_at: datetime
    updated_at: datetime
    venue_order_id: str | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    filled_qty: Decimal = ZERO
    avg_price: Decimal | None = None
    fee: Decimal = ZERO
    reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_ORDER_STATES


@dataclass(frozen=True, slots=True)
class CashEntry:
    """One row of ``cash_ledger``."""

    entry_id: str
    ts: datetime
    slot: str
    amount: Decimal
    balance_after: Decimal
    cause: str  # deposit | buy | sell | fee
    ref: str | None = None
    symbol: str | None = None


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """One row of ``positions`` (open or closed)."""

    position_id: str
    symbol: str
    slot: str
    strategy_id: str
    version: int
    intent_type: str
    status: str  # open | closed
    quantity: Decimal
    cost_basis: Decimal
    entry_fee: Decimal
    entry_time: datetime
    updated_at: datetime
    stop_loss_price: Decimal | None = None
    take_profit_price: Decimal | None = None
    max_adverse_excursion: float = 0.0
    sold_qty: Decimal = ZERO
    exit_value: Decimal = ZERO
    exit_fee: Decimal = ZERO
    exit_time: datetime | None = None
    exit_reason: str | None = None
    realized_pnl: Decimal | None = None
    entry_cost: Decimal = ZERO  # cost of everything bought (for the risk shell's trade cost)

    @property
    def entry_price(self) -> Decimal:
        """Average entry price of the open quantity (of the whole entry once closed)."""
        if self.quantity > 0:
            return money(MONEY.divide(self.cost_basis, self.quantity))
        total = MONEY.add(self.quantity, self.sold_qty)
        return money(MONEY.divide(self.entry_cost, total)) if total > 0 else ZERO

    @property
    def exit_price(self) -> Decimal | None:
        with localcontext(prec=PREC):
            return money(self.exit_value / self.sold_qty) if self.sold_qty > 0 else None


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
