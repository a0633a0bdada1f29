"""Valuation of a slot from its ledger (pure): snapshots, the invariant, the venue reconcile,
and the portfolio view the risk shell sees.

Contract (DESIGN §6, issue "The trading loop"):
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
- ``portfolio_view_of``: the risk shell's view (``Store.portfolio_view`` and ``MemoryBook``
  share it).
- The rows and reductions computed here (``Snapshot``, ``FillBook``, ``LedgerTotals``) are the
  storage records of ``domain.records``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from trading_brain.domain.orders import Balance, Fill
from trading_brain.domain.records import (
    CENT,
    PREC,
    ZERO,
    CashEntry,
    FillBook,
    LedgerTotals,
    PositionRecord,
    Snapshot,
    money,
    mul,
)
from trading_brain.domain.risk import PendingOrder, PortfolioView, PositionView
from trading_brain.errors import DataError


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
                  day_start: Decimal | None, book: FillBook | None = None,
                  valued: tuple[Decimal, Decimal, Decimal] | None = None) -> Snapshot:
    """The portfolio row at ``ts``; ``daily_pnl`` = equity - day start equity (net of fees).
    ``book``: ``replay_fills(fills)`` when the caller has it already (the replay is O(fills));
    ``valued``: ``valuation(cash, positions, marks)`` when the caller has it already."""
    value, unreal, equity = valued if valued is not None else valuation(cash, positions, marks)
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
