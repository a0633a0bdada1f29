"""``KrakenMarket``: ``ports.MarketData`` over Kraken's public REST API.

Contract (see ``ports.MarketData``):
- ``name == "kraken"``. Symbols are ours (``BTC/USD``); the pair map is built from one
  AssetPairs call and cached for ``pairs_ttl_s``. An unknown symbol raises ``ConfigError``.
- ``candles(symbol, tf, start, end)``: ``5m`` → interval 5, ``1h`` → 60, ``1d`` → 1440 (``1m`` →
  1). Returns the *closed* bars with open time in ``[start, end)`` conforming to
  ``CANDLE_SCHEMA``: Kraken's still-forming last row is dropped by the client, and any bar not
  closed at this adapter's clock is dropped here. Kraken serves only the **720 most recent**
  candles per interval (2.5 days of 5m, 30 days of 1h, ~2 years of 1d) whatever ``since`` asks;
  deeper history must be loaded from Kraken's OHLCVT export files with
  ``trading-brain import-ohlcv``. One ``candles`` call is one OHLC request.
  ``oldest_served(timeframe, now)`` is the oldest open time Kraken still serves, so a backfill
  asks for no more (``engine.bootstrap``). When ``start`` is older than what Kraken returned, the
  available bars are returned and a warning is logged once per (symbol, timeframe) and adapter.
- ``tickers(symbols)`` → ``{symbol: Ticker}`` stamped with the adapter clock (REST tickers carry no
  time). ``asset_pairs(symbols)`` → ``{symbol: AssetPair}`` with fees as fractions.
- Errors: ``DataError`` (malformed JSON/shape), ``TemporaryError``/``RateLimited`` after the
  client's retries, ``ConfigError`` for unknown symbols.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl

from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.market import Ticker
from trading_brain.domain.timeframes import (
    Timeframe,
    as_utc,
    delta,
    floor_time,
    last_closed_open,
)
from trading_brain.errors import ConfigError, DataError
from trading_brain.ports import Clock
from trading_brain.settings import KrakenSettings

from . import parse
from .client import OHLC_MAX_ROWS, KrakenClient
from .symbols import PairMap

log = logging.getLogger(__name__)

INTERVAL_MINUTES: dict[str, int] = {"1m": 1, "5m": 5, "1h": 60, "1d": 1440}


class KrakenMarket:
    """Kraken public market data as a ``MarketData`` port."""

    name = "kraken"

    def __init__(
        self,
        settings: KrakenSettings,
        clock: Clock,
        *,
        client: KrakenClient | None = None,
        pairs_ttl_s: float = 3600.0,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.client = client or KrakenClient.from_settings(settings)
        self.pairs_ttl_s = pairs_ttl_s
        self._lock = threading.Lock()
        self._raw_pairs: dict[str, Any] | None = None
        self._pair_map: PairMap | None = None
        self._loaded_at = float("-inf")
        self._warned: set[tuple[str, str]] = set()  # (symbol, timeframe) told about the 720 limit

    def close(self) -> None:
        self.client.close()

    # ---- pair metadata --------------------------------------------------------------------

    def _pairs(self) -> tuple[PairMap, dict[str, Any]]:
        with self._lock:
            fresh = time.monotonic() - self._loaded_at < self.pairs_ttl_s
            if self._pair_map is None or self._raw_pairs is None or not fresh:
                raw = self.client.asset_pairs()
                self._pair_map = PairMap.from_asset_pairs(raw)
                self._raw_pairs = raw
                self._loaded_at = time.monotonic()
            return self._pair_map, self._raw_pairs

    @property
    def pair_map(self) -> PairMap:
        return self._pairs()[0]

    def asset_pairs(self, symbols: Sequence[str]) -> dict[str, AssetPair]:
        pmap, raw = self._pairs()
        unknown = [s for s in symbols if s not in pmap]
        if unknown:
            raise ConfigError(f"{len(unknown)} symbol(s) not traded on Kraken (not in its "
                              f"AssetPairs): {', '.join(unknown)}")
        out: dict[str, AssetPair] = {}
        for s in symbols:
            key = pmap.key(s)
            out[s] = parse.asset_pair(key, raw[key]).model_copy(update={"symbol": s})
        return out

    # ---- candles and tickers --------------------------------------------------------------

    def oldest_served(self, timeframe: str, now: datetime) -> datetime:
        """The oldest open time Kraken still serves at ``now``: ``OHLC_MAX_ROWS`` committed
        bars before the forming one (the venue may serve one or two fewer)."""
        return floor_time(as_utc(now), timeframe) - delta(timeframe) * OHLC_MAX_ROWS

    def warn_history_limit(self, symbol: str, timeframe: str, first: datetime) -> None:
        """Log, once per (symbol, timeframe) for this adapter, that history before ``first``
        is not served by the API and how to load it."""
        if (symbol, timeframe) in self._warned:
            return
        self._warned.add((symbol, timeframe))
        log.warning(
            "Kraken serves only the %d most recent %s candles of %s: history before %s is "
            "missing; load Kraken's OHLCVT export with `trading-brain import-ohlcv`",
            OHLC_MAX_ROWS, timeframe, symbol, f"{first:%Y-%m-%d %H:%M}",
        )

    def candles(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> pl.DataFrame:
        if timeframe not in INTERVAL_MINUTES:
            raise ConfigError(
                f"timeframe {timeframe!r} not served by Kraken; allowed: 1m, 5m, 1h, 1d")
        start, end = as_utc(start), as_utc(end)
        altname = self.pair_map.altname(symbol)
        since = int(start.timestamp()) - 1  # whether Kraken's since is exclusive is unverified
        page = self.client.ohlc(altname, INTERVAL_MINUTES[timeframe], since)
        df = parse.ohlc_rows(page.rows, symbol, timeframe)
        closed_until = last_closed_open(self.clock.now(), timeframe)
        if df.height and df["ts"][0] > start + delta(timeframe) and df.height >= 700:
            self.warn_history_limit(symbol, timeframe, df["ts"][0])
        return df.filter(
            (pl.col("ts") >= start) & (pl.col("ts") < end) & (pl.col("ts") <= closed_until)
        )

    def tickers(self, symbols: Sequence[str]) -> dict[str, Ticker]:
        pmap = self.pair_map
        wanted = {pmap.key(s): s for s in symbols}
        if not wanted:
            return {}
        res = self.client.ticker([pmap.altname(s) for s in symbols])
        now = self.clock.now()
        out: dict[str, Ticker] = {}
        for key, row in res.items():
            try:
                symbol = wanted.get(key) or pmap.symbol(key)
            except ConfigError:
                raise DataError(f"Kraken Ticker: unexpected pair {key!r} in the answer") from None
            if symbol in symbols:
                out[symbol] = parse.rest_ticker(symbol, row, now)
        missing = [s for s in symbols if s not in out]
        if missing:
            raise DataError(f"Kraken Ticker: no data for {', '.join(missing)}")
        return out
