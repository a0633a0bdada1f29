"""The storage contract: ``MetaStore``, ``LedgerStore``, ``RiskStore``, ``IntentStore``,
``PaperBookStore`` (with ``SavedBook``) and their union ``TradingStore``, implemented in full
by the DuckDB ``Store`` and simulate's ``MemoryBook``; callers never ask which one they have
(see the comment below and trading_brain_tests/test_storage_contract.py). Besides it,
``EvolutionRecords``: the evolution's tables (the warehouse only; the book does not keep them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from trading_brain.domain.intents import OrderIntent
from trading_brain.domain.orders import Fill
from trading_brain.domain.records import (
    CashEntry,
    FillBook,
    LedgerTotals,
    OrderRow,
    PositionRecord,
    Snapshot,
)
from trading_brain.domain.risk import PortfolioView, RiskEvent, RiskState

# -- the storage contract ----------------------------------------------------------------------
# Two stores implement every Protocol below in full, with the same semantics (same filters,
# ORDER BY keys, conflict rules, ``seq`` numbering and DECIMAL(38, 18) values): the DuckDB
# ``adapters.duckdb.Store`` and simulate's write-behind ``adapters.memory.book.MemoryBook``.
# No caller asks which one it has (no getattr probe, no isinstance): where the book keeps
# objects the warehouse can only copy, the capability is a method on both with a neutral
# warehouse answer (``memo_fill_book``, ``keep_paper_book``, ``paper_book_state``).
# trading_brain_tests/test_storage_contract.py proves both implement every Protocol (pyright,
# and ``isinstance`` at runtime).


@runtime_checkable
class MetaStore(Protocol):
    """``system_meta``: small named values (checkpoints, baselines)."""

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...


@runtime_checkable
class LedgerStore(Protocol):
    """The executor's tables: orders, fills, positions, cash ledger, snapshots, and the order
    intents it submits. A tick reads with a few set-based queries and writes each phase with one
    multi-row statement per table inside ``atomic()`` (one transaction, re-entrant)."""

    def session(self) -> AbstractContextManager[object]:
        """Share one connection among the calls inside the block (the book: nothing to do)."""
        ...

    def atomic(self) -> AbstractContextManager[object]:
        """One transaction around the block (re-entrant; the book: nothing to do)."""
        ...

    def executor_header(self, slot: str) -> tuple[Decimal | None, RiskState | None,
                                                  datetime | None, Decimal]:
        """(starting capital, risk state, newest fill time, cash balance) of ``slot``."""
        ...

    def executor_orders(self, slot: str, intent_ids: Sequence[str]) -> list[OrderRow]:
        """The slot's open orders plus every order of ``intent_ids``, oldest first."""
        ...

    def orders_by_cids(self, cids: Sequence[str]) -> list[OrderRow]: ...

    def pending_intents(self, slot: str, limit: int) -> list[OrderIntent]:
        """The slot's oldest ``limit`` pending intents (``created_at``, intent id)."""
        ...

    def intents_by_ids(self, ids: Sequence[str]) -> dict[str, OrderIntent]: ...

    def intents(self, status: str | None = None, slot: str | None = None
                ) -> list[OrderIntent]: ...

    def positions(self, slot: str, status: str | None = "open") -> list[PositionRecord]: ...

    def known_fill_ids(self, fill_ids: Sequence[str]) -> set[str]: ...

    def fills(self, slot: str) -> list[Fill]: ...

    def cash_entries(self, slot: str) -> list[CashEntry]: ...

    def starting_capital(self, slot: str) -> Decimal | None: ...

    def cash_balance(self, slot: str) -> Decimal: ...

    def ensure_deposit(self, slot: str, amount: Decimal, ts: datetime) -> bool:
        """Record the slot's starting capital once; True when written now."""
        ...

    def write_orders(self, new: Sequence[OrderRow], changed: Sequence[OrderRow]) -> set[str]:
        """Insert ``new`` (an existing id is left alone), replace ``changed``; ids inserted."""
        ...

    def set_intent_statuses(self, statuses: Sequence[tuple[str, str]], now: datetime
                            ) -> None: ...

    def insert_fills(self, fills: Sequence[Fill], entries: Sequence[CashEntry],
                     now: datetime) -> None: ...

    def save_positions(self, positions: Sequence[PositionRecord]) -> None: ...

    def write_snapshot(self, s: Snapshot) -> None: ...

    def ledger_totals(self, slot: str, tolerance: Decimal = ...) -> LedgerTotals:
        """``engine.valuation.ledger_totals`` of the slot's cash ledger."""
        ...

    def fill_totals(self, slot: str) -> tuple[FillBook, list[Fill]] | None:
        """(closed cycles' ``FillBook``, open cycles' fills), None for a short-sold symbol."""
        ...

    def memo_fill_book(self, slot: str, make: Callable[[LedgerStore, str], FillBook]
                       ) -> FillBook:
        """``make(self, slot)``, a pure function of the slot's stored fills. The book keeps
        the result until a fill of the slot is added; the warehouse (which cannot see its
        table change) calls ``make`` every time. Callers only read the result."""
        ...

    def open_counts(self) -> tuple[int, int, int]:
        """(orders not finished, open positions, pending intents) over every slot."""
        ...

    def busy_slots(self) -> set[str]:
        """Slots with pending intents, open positions or unfinished orders."""
        ...


@runtime_checkable
class RiskStore(Protocol):
    """``risk_state`` (one row per slot), ``risk_events`` (idempotent by content hash) and the
    risk shell's view of a slot."""

    def load_risk_state(self, slot: str) -> RiskState | None: ...

    def save_risk_state(self, slot: str, state: RiskState, now: datetime | None = None
                        ) -> None: ...

    def record_risk_events(self, slot: str, events: Sequence[RiskEvent]) -> int:
        """Insert events (id = hash of slot + content); return how many were new."""
        ...

    def portfolio_view(self, slot: str, marks: Mapping[str, Decimal],
                       fee_rate: Decimal = ...) -> PortfolioView: ...


@runtime_checkable
class IntentStore(Protocol):
    """``order_intents`` as the scan writes them (idempotent by intent id)."""

    def record_intents(self, intents: Sequence[OrderIntent]) -> int:
        """Store intents; return how many were new."""
        ...


class SavedBook(Protocol):
    """A saved paper book: its JSON text, made when first asked for."""

    def text(self) -> str: ...


@runtime_checkable
class PaperBookStore(Protocol):
    """``paper_accounts``: the paper venue's book per account.

    ``load_paper_book``/``save_paper_book`` read and write the JSON text.
    ``keep_paper_book(account, state, now)`` saves a state whose text is made when read: the
    book keeps the object (its text is made at the flush or for a new venue); the warehouse
    writes ``state.text()`` at once. ``paper_book_state(account)`` is the state held, for the
    venue's ``renew`` identity check: the very object last kept or saved for the account while
    it still holds it (the book), or a new ``domain.records.SavedText`` of the stored text on
    every call (the warehouse, which answers copies: a venue over it is never renewed); None
    for an account without a book."""

    def load_paper_book(self, account: str) -> str | None: ...

    def save_paper_book(self, account: str, state: str, now: datetime) -> None: ...

    def keep_paper_book(self, account: str, state: SavedBook, now: datetime) -> None: ...

    def paper_book_state(self, account: str) -> SavedBook | None: ...


@runtime_checkable
class TradingStore(LedgerStore, RiskStore, IntentStore, PaperBookStore, MetaStore, Protocol):
    """Everything the scan, the executor tick and the paper venue ask of the trading tables
    (what ``simulate`` hands them: the warehouse, or the book over it)."""


@runtime_checkable
class EvolutionRecords(Protocol):
    """The evolution's tables (``evolution_cycles``, ``ai_thoughts``, ``predictions``,
    ``promotion_reviews``, ...) as rows: ``save_evolution_row`` inserts one row (False when its
    key is already stored); ``evolution_rows`` reads a table filtered by equal columns, ordered
    by ``order`` (an ORDER BY list). Implemented by the DuckDB ``Store``."""

    def save_evolution_row(self, table: str, row: Mapping[str, Any]) -> bool: ...

    def evolution_rows(self, table: str, where: Mapping[str, Any] | None = None,
                       order: str = "") -> list[dict[str, Any]]: ...
