"""Ports: the small Protocols that engine code receives instead of concrete adapters.

``engine/`` never imports an adapter or dagster; it is handed objects satisfying these
protocols. Adapters in ``adapters/`` implement them, and tests use the same adapters (a real
DuckDB file, the sim market) or the fakes in ``trading_brain_tests/fakes``. Later issues extend
this module (``Exchange``, ``Advisor``, ``Notifier``) — add methods, never change meanings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import polars as pl

from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.market import Ticker
from trading_brain.domain.orders import Balance, Fill, OrderAck, OrderRequest, OrderStatus
from trading_brain.domain.timeframes import Timeframe
from trading_brain.errors import StrategyError


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

    strategy_id: str
    version: int
    warmup_bars: int

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
    ``SandboxViolation`` raises for the whole call.
    """

    def params_schema(self) -> tuple[dict[str, Any], dict[str, Any]]: ...

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
