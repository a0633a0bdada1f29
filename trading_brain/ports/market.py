"""Market ports: ``Clock`` (the current time), ``MarketData`` (where prices come from) and
``CandleStore`` (the part of the warehouse the market pipeline uses). Contracts on each class."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol, runtime_checkable

import polars as pl

from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.market import Ticker
from trading_brain.domain.timeframes import Timeframe


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
