"""ReplayMarket: ``ports.MarketData`` over candle files (or a preloaded frame), driven by a clock.

Contract (name ``"replay"``):
- Construction reads every file (``files.read_candles``) and keeps only the rows that pass
  ``engine.candles.validate``; the rejected rows are kept on ``.quarantined`` for inspection.
  A whole-file error raises ``DataError`` at construction.
- ``candles(symbol, tf, start, end)``: the CLOSED bars at ``clock.now()`` (``open + Δ <= now``)
  with open time in ``[start, end)``, sorted, CANDLE_SCHEMA. A timeframe missing from the data is
  aggregated from the finest shorter one that divides it, complete buckets only
  (``engine.candles.aggregate``). Bars absent from the files stay absent. Unknown symbol or a
  timeframe neither present nor derivable → ``ConfigError``.
- ``tickers``: bid = ask = last = close of the newest closed bar (finest timeframe), ``ts`` its
  close time; a symbol with no closed bar yet at ``now`` → ``DataError``.
- ``asset_pairs``: defaults (no venue to ask): ``lot_decimals`` 8, ``pair_decimals`` from the
  price magnitude (~6 significant digits: BTC 1, ETH 2, DOGE 6), ``ordermin`` 0.00001,
  ``costmin`` 0.5, ``fee_taker`` 0.0026, ``fee_maker`` 0.0016.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import polars as pl

from trading_brain.adapters.replay.files import read_candles
from trading_brain.domain.candles import UTC_TS, empty_candles
from trading_brain.domain.fees import DEFAULT_MAKER_FEE, DEFAULT_TAKER_FEE
from trading_brain.domain.instruments import AssetPair, parse_symbol
from trading_brain.domain.market import Ticker
from trading_brain.domain.timeframes import (
    TIMEFRAMES,
    Timeframe,
    as_utc,
    delta,
    parse_timeframe,
    seconds,
)
from trading_brain.engine.candles import aggregate, validate
from trading_brain.errors import ConfigError, DataError
from trading_brain.ports import Clock

FEE_TAKER, FEE_MAKER = DEFAULT_TAKER_FEE, DEFAULT_MAKER_FEE
LOT_DECIMALS = 8
ORDERMIN = Decimal("0.00001")
COSTMIN = Decimal("0.5")

Source = pl.DataFrame | Path | str | Iterable[Path | str]


class ReplayMarket:
    """Replays recorded candles as if they were arriving live at ``clock.now()``."""

    name = "replay"

    def __init__(self, source: Source, clock: Clock, *, symbol: str | None = None,
                 timeframe: str | None = None) -> None:
        raw = (source if isinstance(source, pl.DataFrame)
               else read_candles(source, symbol, timeframe))
        good, self.quarantined = validate(raw)
        self.clock = clock
        self._series: dict[tuple[str, str], pl.DataFrame] = {
            (str(s), str(tf)): part.sort("ts")
            for (s, tf), part in good.group_by(["symbol", "timeframe"])
        }
        self.symbols: tuple[str, ...] = tuple(sorted({s for s, _ in self._series}))

    # -- ports.MarketData ------------------------------------------------------------------
    def asset_pairs(self, symbols: Sequence[str]) -> dict[str, AssetPair]:
        return {s: _asset_pair(s, self._reference_price(s)) for s in map(self._symbol, symbols)}

    def candles(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> pl.DataFrame:
        sym, tf = self._symbol(symbol), parse_timeframe(timeframe)
        bars = self._bars(sym, tf)
        lo = _bound(bars, as_utc(start))
        hi = min(_bound(bars, as_utc(end)),  # closed bars only: open + Δ <= now
                 _bound(bars, as_utc(self.clock.now()) - delta(tf), closed=True))
        return bars.slice(lo, hi - lo) if hi > lo else empty_candles()

    def tickers(self, symbols: Sequence[str]) -> dict[str, Ticker]:
        out = {}
        now = as_utc(self.clock.now())
        for sym in map(self._symbol, symbols):
            tf = self._finest(sym)
            bars = self._series[(sym, tf)]
            n = _bound(bars, now - delta(tf), closed=True)
            if n == 0:
                raise DataError(f"replay has no closed {sym} bar before {now.isoformat()}")
            last, ts = bars["close"][n - 1], bars["ts"][n - 1] + delta(tf)
            out[sym] = Ticker(symbol=sym, bid=last, ask=last, last=last, ts=ts)
        return out

    # -- helpers ---------------------------------------------------------------------------
    def timeframes(self, symbol: str) -> list[str]:
        """Timeframes present in the data for ``symbol`` (before any aggregation)."""
        sym = self._symbol(symbol)
        return [tf for tf in TIMEFRAMES if (sym, tf) in self._series]

    def _symbol(self, symbol: str) -> str:
        sym = parse_symbol(symbol)
        if sym not in self.symbols:
            raise ConfigError(f"symbol {sym} is not in the replay data; available: "
                              f"{', '.join(self.symbols) or 'none'}")
        return sym

    def _finest(self, sym: str) -> str:
        return next(tf for tf in TIMEFRAMES if (sym, tf) in self._series)

    def _bars(self, sym: str, tf: str) -> pl.DataFrame:
        if (sym, tf) not in self._series:
            src = [s for s in TIMEFRAMES if (sym, s) in self._series
                   and seconds(s) < seconds(tf) and seconds(tf) % seconds(s) == 0]
            if not src:
                raise ConfigError(f"replay data has no {tf} bars for {sym} and no shorter "
                                  f"timeframe to build them from (has {self.timeframes(sym)})")
            self._series[(sym, tf)] = aggregate(self._series[(sym, src[-1])], tf)
        return self._series[(sym, tf)]

    def _reference_price(self, sym: str) -> float:
        """Close of the newest bar closed at ``now`` (no look-ahead), else the first open."""
        tf = self._finest(sym)
        bars = self._series[(sym, tf)]
        n = _bound(bars, as_utc(self.clock.now()) - delta(tf), closed=True)
        return float(bars["close"][n - 1] if n else bars["open"][0])


def _bound(bars: pl.DataFrame, t: datetime, closed: bool = False) -> int:
    """Index of the first bar with open time > t (``closed``) or >= t."""
    key = pl.Series([t], dtype=UTC_TS)
    return int(bars["ts"].search_sorted(key, side="right" if closed else "left")[0])


def _asset_pair(symbol: str, price: float) -> AssetPair:
    base, quote = symbol.split("/")
    decimals = min(10, max(0, 5 - math.floor(math.log10(price)))) if price > 0 else 5
    return AssetPair(
        symbol=symbol, base=base, quote=quote, venue_name=base + quote, altname=base + quote,
        wsname=symbol, lot_decimals=LOT_DECIMALS, pair_decimals=decimals, ordermin=ORDERMIN,
        costmin=COSTMIN, tick_size=Decimal(1).scaleb(-decimals), fee_taker=FEE_TAKER,
        fee_maker=FEE_MAKER,
    )

