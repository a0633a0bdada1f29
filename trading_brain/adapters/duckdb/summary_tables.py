"""Counts over the trading tables (mixed into ``Store``): what the simulate loop asks to skip
an idle executor tick, which slots the executor must serve, and a run's summary figures.

Read-only; every method runs one statement on the store's connection (the session's, if one
is open). The in-memory book (``adapters.memory.book.MemoryBook``) answers ``open_counts`` and
``busy_slots`` with the same meaning from its index.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from trading_brain.domain.orders import FINISHED_STATES_SQL

_LIVE_ORDERS = f"FROM orders WHERE state NOT IN {FINISHED_STATES_SQL}"
_OPEN_POSITIONS = "FROM positions WHERE status = 'open'"
_PENDING = "FROM order_intents WHERE status = 'pending'"


@dataclass(frozen=True)
class SlotFigures:
    """One slot's run figures: its newest snapshot (None before the first), deepest drawdown and
    positions opened; orders, fills and halts over every slot."""

    snapshot: tuple[Decimal, Decimal, Decimal, Decimal] | None  # equity, cash, value, fees
    max_drawdown: float | None
    positions: int
    orders: int
    fills: int
    halts: int


class SummaryTablesMixin:
    """Counts over orders, positions, intents, snapshots and risk events (needs ``execute``)."""

    if TYPE_CHECKING:
        def execute(self, sql: str, params: Any = None) -> list: ...  # ``Store.execute``

    def open_counts(self) -> tuple[int, int, int]:
        """(orders not finished, open positions, pending intents) over every slot."""
        row = self.execute(f"SELECT (SELECT count(*) {_LIVE_ORDERS}), "
                           f"(SELECT count(*) {_OPEN_POSITIONS}), (SELECT count(*) {_PENDING})")
        return int(row[0][0]), int(row[0][1]), int(row[0][2])

    def busy_slots(self) -> set[str]:
        """Slots with pending intents, open positions or orders not finished."""
        rows = self.execute(f"SELECT DISTINCT slot {_PENDING} UNION SELECT DISTINCT slot "
                            f"{_OPEN_POSITIONS} UNION SELECT DISTINCT slot {_LIVE_ORDERS}")
        return {r[0] for r in rows}

    def slot_figures(self, slot: str) -> SlotFigures:
        """The summary figures of ``slot`` (see ``SlotFigures``)."""
        q = self.execute
        snap = q("SELECT equity, cash, positions_value, fees_paid FROM portfolio_snapshots "
                 "WHERE slot = ? ORDER BY ts DESC LIMIT 1", [slot])
        return SlotFigures(
            snapshot=tuple(snap[0]) if snap else None,
            max_drawdown=q("SELECT max(drawdown) FROM portfolio_snapshots WHERE slot = ?",
                           [slot])[0][0],
            positions=q("SELECT count(*) FROM positions WHERE slot = ?", [slot])[0][0],
            orders=q("SELECT count(*) FROM orders")[0][0],
            fills=q("SELECT count(*) FROM fills")[0][0],
            halts=q("SELECT count(*) FROM risk_events WHERE kind = 'halt'")[0][0])
