"""Storage records: the rows of the trading tables as the stores hand them out and take them.

Both stores (the DuckDB ``Store`` and simulate's ``adapters.memory.book.MemoryBook``, see the
storage Protocols in ``trading_brain.ports``) read and write these; the engine computes them
(``engine.ledger``: fills -> positions and cash entries; ``engine.valuation``: snapshots).

Contract:
- Money is ``Decimal`` computed in a 60-digit context (``MONEY``) and quantized to 18 decimals
  (``money``, ``mul``): the precision of the warehouse's DECIMAL(38, 18) columns, so what is
  stored is exactly what was computed.
- ``OrderRow``/``CashEntry``/``PositionRecord``/``Snapshot`` are one row of ``orders``,
  ``cash_ledger``, ``positions`` and ``portfolio_snapshots`` (frozen); ``OPEN_ORDER_STATES`` are
  the ``orders.state`` values of an order that may still fill (the write-ahead ``submitting``
  and ``unresolved`` included).
- ``LedgerTotals`` and ``FillBook`` are what a store's ``ledger_totals``/``fill_totals`` reduce
  a slot's cash ledger and fills to (see ``engine.valuation``).
- ``SavedText`` is a saved paper book held as its text (see ``ports.PaperBookStore``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Context, Decimal, localcontext

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
class Snapshot:
    """One row of ``portfolio_snapshots``."""

    ts: datetime
    slot: str
    equity: Decimal
    cash: Decimal
    positions_value: Decimal
    exposure: float
    peak_equity: Decimal
    drawdown: float
    daily_pnl: Decimal
    fees_paid: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal


@dataclass(slots=True)
class FillBook:
    """Average-cost replay of a slot's fills: realised (gross), fees, open qty and cost."""

    cash_flow: Decimal = ZERO  # sells - buys - fees
    fees: Decimal = ZERO
    realized: Decimal = ZERO
    qty: dict[str, Decimal] = field(default_factory=dict)
    cost: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LedgerTotals:
    """What the invariant reads of a slot's cash ledger (entries in insertion order, ``seq``).

    ``cash``: the running total of the amounts, up to and including the first entry whose
    ``balance_after`` is off the running total by more than the tolerance (``broken``: that
    entry's id and ``balance_after``), else over all entries; ``balance``: ``balance_after``
    of the newest entry (the cash a snapshot reports); 0 for an empty ledger."""

    cash: Decimal = ZERO
    balance: Decimal = ZERO
    broken: tuple[str, Decimal] | None = None


class SavedText:
    """A saved paper book held as its text (what a store read or was given as text);
    ``text()`` answers it. Compared by identity, like every saved state (see
    ``ports.PaperBookStore.paper_book_state``)."""

    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = text

    def text(self) -> str:
        return self._text
