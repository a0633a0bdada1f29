"""The ledger: positions, cash entries, snapshots, the invariant and the venue reconcile (pure).

Contract (DESIGN §6, issue "The trading loop"):
- Money is ``Decimal`` computed in a 60-digit context and quantized to 18 decimals (``money``),
  the precision of the warehouse columns, so what is stored is exactly what was computed.
- A fill moves cash twice: ``buy`` (-qty x price) or ``sell`` (+qty x price), and ``fee``
  (-fee); entry ids are ``<fill_id>:<cause>`` so replaying a fill cannot add a second entry.
- A position (one per symbol and slot, id = the entry intent id) tracks the open quantity, its
  cost basis (average cost), the entry fee, stop levels and the max adverse excursion. A sell
  takes cost out pro rata; when the quantity reaches zero the position closes with
  ``realized_pnl`` = exit value - entry cost - entry fee - exit fees (net, like engine/portfolio).
- Invariant (``check_invariant``, what the ERROR asset check calls), from three independent
  sources: the cash ledger (sum of amounts; every ``balance_after`` chains), the fills (average
  cost per symbol) and the positions table. It holds when ledger cash = cash implied by fills,
  open quantities agree, and cash + marked positions = equity = starting capital + realised +
  unrealised P&L - fees, all to the cent (realised/unrealised are gross of fees here).
  ``check_totals`` is the same check from the sources already reduced (``LedgerTotals``, a
  ``FillBook``): the executor tick gets them from warehouse totals (``ledger_totals`` /
  ``fill_totals`` + ``replay_fills(open_fills, start=closed)``), equal to the full replay to
  the last decimal, so its cost does not grow with the history; ``check_invariant`` replays all.
- ``reconcile_balances``: the venue is the truth; mismatches of cash (to the cent) or base
  quantities (to the lot) are returned, never fixed silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, localcontext

from trading_brain.domain.orders import Balance, Fill
from trading_brain.domain.risk import PendingOrder, PortfolioView, PositionView
from trading_brain.errors import DataError

PREC = 60
QUANT = Decimal("1e-18")
CENT = Decimal("0.01")
ZERO = Decimal(0)


def money(x: Decimal) -> Decimal:
    """``x`` quantized to the warehouse's 18 decimals."""
    with localcontext(prec=PREC) as ctx:
        return x.quantize(QUANT, context=ctx)


def mul(a: Decimal, b: Decimal) -> Decimal:
    """Exact product, quantized (``money(a*b)``), in one 60-digit context."""
    with localcontext(prec=PREC) as ctx:
        return ctx.multiply(a, b).quantize(QUANT, context=ctx)


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
        with localcontext(prec=PREC):
            if self.quantity > 0:
                return money(self.cost_basis / self.quantity)
            total = self.quantity + self.sold_qty
            return money(self.entry_cost / total) if total > 0 else ZERO

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


def portfolio_view_of(cash: Decimal, positions: Iterable[PositionRecord],
                      marks: Mapping[str, Decimal], pending: Iterable[tuple],
                      fee_rate: Decimal) -> PortfolioView:
    """The slot as the risk shell sees it (``Store.portfolio_view`` and ``MemoryBook`` share
    this arithmetic): positions marked at ``marks`` (else their entry price); ``pending`` rows
    (intent_id, symbol, action, remaining qty, limit or reference price), an entry reserving
    qty x price x (1 + ``fee_rate``)."""
    views = {p.symbol: PositionView(qty=p.quantity, value=mul(p.quantity,
                                                              marks.get(p.symbol, p.entry_price)),
                                    entry_price=p.entry_price) for p in positions}
    orders = tuple(
        PendingOrder(intent_id=i, symbol=s, action=a, qty=q,
                     reserved=mul(mul(q, px), 1 + fee_rate) if a == "enter" else Decimal(0))
        for i, s, a, q, px in pending)
    equity = cash + sum((v.value for v in views.values()), Decimal(0))
    return PortfolioView(equity=max(equity, Decimal(0)), cash=max(cash, Decimal(0)),
                         positions=views, pending=orders)


def adverse_excursion(pos: PositionRecord, low: float) -> PositionRecord:
    """Track the worst fractional move against the entry price (a positive number)."""
    entry = float(pos.entry_price)
    if entry <= 0 or pos.status != "open":
        return pos
    mae = max(pos.max_adverse_excursion, (entry - low) / entry)
    return pos if mae == pos.max_adverse_excursion else replace(pos, max_adverse_excursion=mae)


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


def replay_fills(fills: Iterable[Fill], start: FillBook | None = None) -> FillBook:
    """Average-cost accounting over ``fills`` (any order of equal-time fills is fine), going on
    from ``start`` (a copy; e.g. the totals of a slot's closed position cycles, see
    ``LedgerBatchMixin.fill_totals``)."""
    book = FillBook() if start is None else FillBook(start.cash_flow, start.fees, start.realized,
                                                     dict(start.qty), dict(start.cost))
    with localcontext(prec=PREC):
        for f in sorted(fills, key=lambda f: (f.ts, f.side != "buy", f.fill_id)):
            notional, fee = mul(f.qty, f.price), money(f.fee)
            q, c = book.qty.get(f.symbol, ZERO), book.cost.get(f.symbol, ZERO)
            book.fees += fee
            if f.side == "buy":
                book.qty[f.symbol], book.cost[f.symbol] = q + f.qty, c + notional
                book.cash_flow -= notional + fee
                continue
            left = q - f.qty
            cost_left = money(c * left / q) if left > 0 and q > 0 else ZERO
            book.realized += notional - (c - cost_left)
            book.qty[f.symbol], book.cost[f.symbol] = left, cost_left
            book.cash_flow += notional - fee
    return book


def valuation(cash: Decimal, positions: Iterable[PositionRecord],
              marks: Mapping[str, Decimal]) -> tuple[Decimal, Decimal, Decimal]:
    """(positions value, unrealised gross P&L, equity) of the open positions at ``marks``."""
    value = unreal = ZERO
    with localcontext(prec=PREC):
        for p in positions:
            if p.status == "open" and p.quantity > 0:
                if p.symbol not in marks:
                    raise DataError(f"no mark price for {p.symbol}")
                v = mul(p.quantity, marks[p.symbol])
                value += v
                unreal += v - p.cost_basis
        return value, unreal, cash + value


def make_snapshot(ts: datetime, slot: str, cash: Decimal, positions: Sequence[PositionRecord],
                  marks: Mapping[str, Decimal], fills: Sequence[Fill], peak: Decimal | None,
                  day_start: Decimal | None, book: FillBook | None = None) -> Snapshot:
    """The portfolio row at ``ts``; ``daily_pnl`` = equity - day start equity (net of fees).
    ``book``: ``replay_fills(fills)`` when the caller has it already (the replay is O(fills))."""
    value, unreal, equity = valuation(cash, positions, marks)
    book = book if book is not None else replay_fills(fills)
    peak = max(peak, equity) if peak is not None else equity
    with localcontext(prec=PREC):
        exposure = float(value / equity) if equity > 0 else 0.0
        drawdown = float((peak - equity) / peak) if peak > 0 else 0.0
        daily = equity - day_start if day_start is not None else ZERO
    return Snapshot(ts, slot, equity, cash, value, exposure, peak, drawdown, daily, book.fees,
                    book.realized, unreal)


@dataclass(frozen=True, slots=True)
class InvariantReport:
    """The invariant's verdict and the figures behind it."""

    ok: bool
    problems: list[str]
    equity: Decimal
    cash: Decimal


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


def ledger_totals(entries: Sequence[CashEntry], tolerance: Decimal = CENT) -> LedgerTotals:
    """``LedgerTotals`` of ``entries`` (what the warehouse computes in ``ledger_totals``)."""
    running = ZERO
    with localcontext(prec=PREC):
        for e in entries:
            running += e.amount
            if abs(running - e.balance_after) > tolerance:
                return LedgerTotals(running, entries[-1].balance_after,
                                    (e.entry_id, e.balance_after))
    return LedgerTotals(running, entries[-1].balance_after if entries else ZERO)


def check_invariant(starting_capital: Decimal, entries: Sequence[CashEntry], fills: Sequence[Fill],
                    positions: Sequence[PositionRecord], marks: Mapping[str, Decimal],
                    tolerance: Decimal = CENT, book: FillBook | None = None) -> InvariantReport:
    """Check the ledger of one slot (module rules); ``entries`` in insertion order; ``book``:
    ``replay_fills(fills)`` when the caller has it already."""
    return check_totals(starting_capital, ledger_totals(entries, tolerance),
                        book if book is not None else replay_fills(fills), positions, marks,
                        tolerance)


def check_totals(starting_capital: Decimal, ledger: LedgerTotals, book: FillBook,
                 positions: Sequence[PositionRecord], marks: Mapping[str, Decimal],
                 tolerance: Decimal = CENT) -> InvariantReport:
    """``check_invariant`` from the three sources already reduced: the cash ledger's totals,
    the fills' average-cost book and the positions (the same problems, the same verdict)."""
    problems: list[str] = []
    with localcontext(prec=PREC):
        cash = ledger.cash
        if ledger.broken is not None:
            entry_id, balance_after = ledger.broken
            problems.append(f"ledger entry {entry_id}: balance_after {balance_after} "
                            f"!= running total {cash}")
        implied = starting_capital + book.cash_flow
        if abs(cash - implied) > tolerance:
            problems.append(f"ledger cash {cash} != starting capital + fill cash flow {implied}")
        held = {p.symbol: p for p in positions if p.status == "open" and p.quantity > 0}
        for sym in sorted(set(held) | {s for s, q in book.qty.items() if q > 0}):
            want, have = book.qty.get(sym, ZERO), held[sym].quantity if sym in held else ZERO
            if want != have:
                problems.append(f"{sym}: positions hold {have}, fills imply {want}")
        try:
            value, _, equity = valuation(cash, held.values(), marks)
            unreal = sum((mul(q, marks[s]) - book.cost.get(s, ZERO)
                          for s, q in book.qty.items() if q > 0), ZERO)
        except (DataError, KeyError) as e:
            return InvariantReport(False, [*problems, f"cannot mark positions: {e}"], cash, cash)
        pnl_equity = starting_capital + book.realized + unreal - book.fees
        if abs(equity - pnl_equity) > tolerance:
            problems.append(f"cash + positions {equity} != capital + realised + unrealised - fees "
                            f"{pnl_equity}")
    return InvariantReport(not problems, problems, equity, cash)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One disagreement between the ledger and the venue (the venue is the truth)."""

    asset: str
    ledger: Decimal
    venue: Decimal

    def __str__(self) -> str:
        return f"{self.asset}: ledger {self.ledger} != venue {self.venue}"


def reconcile_balances(cash: Decimal, holdings: Mapping[str, Decimal], venue: Balance,
                       quote: str = "USD", cash_tolerance: Decimal = CENT,
                       qty_tolerance: Mapping[str, Decimal] | None = None) -> list[Mismatch]:
    """Mismatches between the ledger (``cash``, base ``holdings`` by asset) and the venue."""
    out: list[Mismatch] = []
    if abs(cash - venue.get(quote)) > cash_tolerance:
        out.append(Mismatch(quote, cash, venue.get(quote)))
    assets = set(holdings) | {a for a, v in venue.assets.items() if a != quote and v != 0}
    for asset in sorted(assets):
        tol = (qty_tolerance or {}).get(asset, Decimal("1e-8"))
        mine, theirs = holdings.get(asset, ZERO), venue.get(asset)
        if abs(mine - theirs) > tol:
            out.append(Mismatch(asset, mine, theirs))
    return out
