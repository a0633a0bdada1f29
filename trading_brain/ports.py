"""Ports: the small Protocols that engine code receives instead of concrete adapters.

``engine/`` never imports an adapter or dagster; it is handed objects satisfying these
protocols. Adapters in ``adapters/`` implement them, and tests use the same adapters (a real
DuckDB file, the sim market) or the fakes in ``trading_brain_tests/fakes``. Later issues extend
this module (``Exchange``, ``Advisor``, ``Notifier``) — add methods, never change meanings.

The storage contract (the block at the end: ``LedgerStore``, ``RiskStore``, ``IntentStore``,
``PaperBookStore``, ``MetaStore`` and their union ``TradingStore``) is implemented in full by
the DuckDB ``Store`` and simulate's ``MemoryBook``; callers never ask which one they have.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import polars as pl

from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.intents import OrderIntent
from trading_brain.domain.market import Ticker
from trading_brain.domain.orders import Balance, Fill, OrderAck, OrderRequest, OrderStatus
from trading_brain.domain.records import (
    CashEntry,
    FillBook,
    LedgerTotals,
    OrderRow,
    PositionRecord,
    Snapshot,
)
from trading_brain.domain.risk import PortfolioView, RiskEvent, RiskState
from trading_brain.domain.timeframes import Timeframe
from trading_brain.errors import StrategyError

if TYPE_CHECKING:
    from trading_brain.engine.evolution.context import EvolutionContext
    from trading_brain.engine.evolution.decision import Decision


@runtime_checkable
class Clock(Protocol):
    """Source of the current time (timezone-aware UTC)."""

    def now(self) -> datetime: ...


@runtime_checkable
class MarketData(Protocol):
    """Where prices come from: the sim market, replayed files, or Kraken.

    Contract for ``candles``: returns a frame conforming to ``domain.candles.CANDLE_SCHEMA``
    holding the *closed* bars of ``symbol``/``timeframe`` whose open time is in ``[start, end)``
    — a bar still forming at the adapter's clock is never returned — sorted by ``ts``, without
    duplicates. Bars the venue omits (no trades) are simply absent. Raises ``DataError`` for
    malformed venue data, ``TemporaryError`` for transient failures, ``ConfigError`` for an
    unknown symbol.
    """

    name: str

    def asset_pairs(self, symbols: Sequence[str]) -> dict[str, AssetPair]: ...

    def candles(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> pl.DataFrame: ...

    def tickers(self, symbols: Sequence[str]) -> dict[str, Ticker]: ...


@runtime_checkable
class CandleStore(Protocol):
    """The part of the warehouse the market pipeline uses (see adapters/duckdb/store.py)."""

    def upsert_candles(self, df: pl.DataFrame, source: str = "unknown") -> int: ...

    def quarantine_candles(self, df: pl.DataFrame, source: str) -> int: ...

    def latest_candle_ts(self, timeframe: str) -> dict[str, datetime]: ...


    def record_omissions(self, timeframe: str, omitted: pl.DataFrame) -> int: ...

    def forget_omissions(self, timeframe: str, arrived: pl.DataFrame) -> None: ...

    def session(self) -> AbstractContextManager[object]:
        """Share one short connection among the calls inside the block (no I/O elsewhere)."""
        ...

    def read_candles(
        self,
        symbols: Sequence[str] | None,
        timeframe: Timeframe,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pl.DataFrame: ...


@runtime_checkable
class SignalSource(Protocol):
    """A loaded strategy version that turns one symbol's bars into validated signals.

    ``generate`` returns a frame with ``ts`` plus ``domain.strategy.SIGNAL_SCHEMA`` columns,
    one row per input bar, already checked by ``domain.strategy.validate_signals``; it raises
    ``StrategyError`` (or ``SandboxViolation``) for anything else. Implementations: the sandbox
    worker (``adapters/sandbox``; all strategy code in production) and an in-process loader for
    trusted differential tests and benchmarks.
    """

    @property
    def strategy_id(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def warmup_bars(self) -> int: ...

    def generate(self, bars: pl.DataFrame, params: dict | None = None) -> pl.DataFrame: ...

    def generate_many(self, frames: Mapping[str, pl.DataFrame], params: dict | None = None
                      ) -> dict[str, pl.DataFrame | StrategyError]:
        """``generate`` for each symbol's bars at once (one sandbox round trip): per symbol the
        validated signals or the ``StrategyError`` it raised; a ``SandboxViolation`` raises for
        the whole call."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class StrategyWorker(SignalSource, Protocol):
    """A strategy version's sandbox worker as ``StrategyWorkers`` hands it out: a
    ``SignalSource`` plus the research calls.

    ``params_schema()`` is the JSON schema and the defaults of the strategy's ``Params``;
    ``generate_sets(bars, sets)`` is ``generate`` over the same bars for each parameter set in
    one sandbox round trip: per set the validated signals or the ``StrategyError`` that set's
    call would raise (``invalid params: …`` for a set ``Params`` refuses); a
    ``SandboxViolation`` raises for the whole call. ``missing_layers()`` names the isolation
    layers production requires that the running worker does not enforce (empty when complete;
    only ``sandbox.allow_weak_isolation`` lets such a worker run).
    """

    def params_schema(self) -> tuple[dict[str, Any], dict[str, Any]]: ...

    def missing_layers(self) -> list[str]: ...

    def generate_sets(self, bars: pl.DataFrame, sets: Sequence[Mapping[str, Any] | None]
                      ) -> list[pl.DataFrame | StrategyError]: ...


@runtime_checkable
class StrategyWorkers(Protocol):
    """The sandbox-worker service: one live worker per strategy version (its source's sha256).

    ``get(version_ref, source)`` returns the worker running ``source`` (``version_ref`` is
    ``"ID@V"``, for messages), booting it in the background on first use and reusing it
    afterwards; a bounded number run at once (least recently used evicted); thread safe.
    ``validate(source)`` returns a FRESH worker outside the pool for registration's gates (the
    caller closes it). ``close()`` stops every worker it started. Used by scan, simulate,
    backtest, optimize and registration (``adapters/sandbox/pool.py``).
    """

    def get(self, version_ref: str, source: str) -> StrategyWorker: ...

    def validate(self, source: str) -> StrategyWorker: ...

    def close(self) -> None: ...


@runtime_checkable
class Advisor(Protocol):
    """Who proposes tonight's evolution decision (DESIGN §8): ``offline`` or ``anthropic``.

    ``decide(context)`` reads the night's ``EvolutionContext`` (plain data: benchmarks, reports,
    versions, candidates, memory) and returns a validated ``Decision``, or raises
    ``AdvisorOutputRejected`` with the reason when its output is unusable. The advisor proposes,
    the cycle disposes: it re-validates the decision and runs every gate itself; nothing an
    advisor returns can place an order or change a risk limit.
    """

    name: str

    def decide(self, context: EvolutionContext) -> Decision: ...


@runtime_checkable
class Exchange(Protocol):
    """Where orders go: the paper venue (``adapters/paper.py``) or Kraken (``adapters/kraken``).

    Contract: ``place_order`` sends one order keyed by ``req.client_order_id`` and is never
    retried by callers: ``OrderRejected`` = refused (nothing open), ``AmbiguousOrderError`` (or a
    ``TemporaryError``) = fate unknown, settle with ``order_by_client_id`` (None = the venue never
    accepted it). ``fills_since(t)`` returns fills at or after ``t``, oldest first, with stable
    ``fill_id``s (callers dedupe on them). ``cancel_order`` is False when the order is unknown or
    already closed. ``balances`` are totals per common asset code (``USD``, ``BTC``).
    """

    name: str

    def place_order(self, req: OrderRequest) -> OrderAck: ...

    def order_by_client_id(self, client_order_id: str) -> OrderStatus | None: ...

    def open_orders(self) -> list[OrderStatus]: ...

    def cancel_order(self, client_order_id: str | None = None,
                     venue_order_id: str | None = None) -> bool: ...

    def fills_since(self, t: datetime) -> list[Fill]: ...

    def balances(self) -> Balance: ...


@runtime_checkable
class Notifier(Protocol):
    """Where alerts go (a log always; Telegram or a webhook in a later issue).

    ``level`` is ``"ERROR"``, ``"WARN"`` or ``"INFO"``; ``text`` is one human-readable message.
    ``notify`` must not raise for delivery problems (an alert channel never stops the loop).
    A channel only delivers; once-per-key delivery (the ``notifications`` table) is
    ``trading_brain.app.notify.deliver``, which every alert source (alert sensor, executor, kill)
    goes through. Implementations: ``trading_brain.app.notify.LogNotifier`` (always on).
    """

    name: str

    def notify(self, level: str, text: str) -> None: ...


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
