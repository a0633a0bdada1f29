"""Position and cash accounting for the exact engine and the paper executor.

Contract: one long position per symbol; an entry spends ``size`` x available cash with the fee
included (engine/fills.py rule 3); stop-loss / take-profit levels are fixed from the entry fill;
a closed position becomes a ``Trade`` whose ``pnl`` is net of both fees. Cash is updated exactly
as vectorbt does (``add`` snaps near-zero results), so replay and vectorbt agree to the last bits.
The object is plain mutable state with no I/O; the paper executor persists it through the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from trading_brain.domain.instruments import AssetPair
from trading_brain.engine import fills


@dataclass(slots=True)
class Position:
    """An open long position and the stop levels fixed at its entry fill."""

    symbol: str
    quantity: float
    entry_price: float
    entry_time: datetime
    entry_fee: float
    sl_level: float
    tp_level: float


@dataclass(frozen=True, slots=True)
class Trade:
    """A round trip (or an open position when ``exit_time`` is None)."""

    symbol: str
    entry_time: datetime
    exit_time: datetime | None
    entry_price: float
    exit_price: float | None
    quantity: float
    pnl: float
    fees: float
    exit_reason: str | None


@dataclass(slots=True)
class Portfolio:
    """Cash, open positions and closed trades of one account (one slot)."""

    cash: float
    positions: dict[str, Position] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    fees_paid: float = 0.0
    rejections: int = 0

    def enter(
        self,
        symbol: str,
        time: datetime,
        price: float,
        size: float,
        fee: float,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        pair: AssetPair | None = None,
        enforce_minimums: bool = False,
    ) -> Position | None:
        """Open a long at fill ``price`` spending ``size`` x cash; None if ignored or rejected.

        Ignored while a position in ``symbol`` is open. With ``pair``: ``enforce_minimums`` rounds
        the quantity down to lot precision and rejects orders below the minimums (paper/live);
        otherwise the would-be rejection is only counted (backtest). Both count ``rejections``.
        """
        if symbol in self.positions:
            return None
        if pair is not None and enforce_minimums:
            fill = fills.entry_fill_rounded(self.cash, size, price, fee, pair)
            if fill is None:
                if fills.entry_fill(self.cash, size, price, fee) is not None:
                    self.rejections += 1
                return None
        else:
            fill = fills.entry_fill(self.cash, size, price, fee)
            if fill is None:
                return None
            if pair is not None and fills.would_reject(fill.quantity, price, pair):
                self.rejections += 1
        self.cash = fills.add(fills.snap(self.cash), fill.cash_delta)
        self.fees_paid += fill.fee
        sl_level, tp_level = fills.stop_levels(price, stop_loss, take_profit)
        pos = Position(symbol, fill.quantity, price, time, fill.fee, sl_level, tp_level)
        self.positions[symbol] = pos
        return pos

    def exit(
        self, symbol: str, time: datetime, price: float, fee: float, reason: str
    ) -> Trade | None:
        """Close the whole position in ``symbol`` at fill ``price``; None when flat."""
        pos = self.positions.pop(symbol, None)
        if pos is None:
            return None
        fill = fills.exit_fill(pos.quantity, price, fee)
        self.cash = fills.snap(self.cash) + fill.cash_delta
        self.fees_paid += fill.fee
        pnl = (price - pos.entry_price) * pos.quantity - pos.entry_fee - fill.fee
        trade = Trade(
            symbol,
            pos.entry_time,
            time,
            pos.entry_price,
            price,
            pos.quantity,
            pnl,
            pos.entry_fee + fill.fee,
            reason,
        )
        self.trades.append(trade)
        return trade

    def equity(self, marks: dict[str, float]) -> float:
        """Cash plus open positions valued at ``marks`` (symbol -> price, e.g. last close)."""
        return self.cash + sum(p.quantity * marks[s] for s, p in self.positions.items())

    def open_trades(self, marks: dict[str, float]) -> list[Trade]:
        """Open positions as trades marked at ``marks`` (no exit fee, ``exit_time`` None)."""
        return [
            Trade(
                s,
                p.entry_time,
                None,
                p.entry_price,
                marks[s],
                p.quantity,
                (marks[s] - p.entry_price) * p.quantity - p.entry_fee,
                p.entry_fee,
                None,
            )
            for s, p in self.positions.items()
        ]
