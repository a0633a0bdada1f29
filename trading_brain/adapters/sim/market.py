"""SimMarket: the built-in offline market behind ``ports.MarketData`` (DESIGN §3).

Contract: ``SimMarket(symbols, seed, clock)`` lists ``symbols`` (normalised with
``domain.instruments.parse_symbol``; an invalid one raises ConfigError at construction) and serves
candles from one deterministic 1-minute path per symbol (see ``process.py``), anchored to
``clock.now()``:

- ``candles(symbol, tf, start, end)`` returns the bars of ``tf`` ("1m", "5m", "1h", "1d") whose
  open time is in ``[start, end)`` and that have CLOSED at ``clock.now()`` (``open + Δ <= now``),
  as a frame conforming to ``CANDLE_SCHEMA``, sorted by ``ts``; bars before ``process.EPOCH``
  (2015-01-01) do not exist; ``start >= end`` gives an empty frame. The same (seed, symbol, tf,
  open time) always yields the same bar, whatever the window, the call order or the process.
- ``tickers`` quote the latest price (the close of the newest closed 1-minute bar) with a small
  symmetric spread; ``asset_pairs`` return Kraken-like metadata (names, decimals, minimums, fees).
- ``candle_rows(symbol, tf, start, end)`` gives the same bars as ``candles`` as plain
  ``(ts, open, high, low, close, volume)`` tuples (``ts`` a UTC datetime): no frame is built, so
  the paper venue's per-tick reads of a few bars cost microseconds, not a polars frame.
- ``minute_path`` gives the closed 1-minute bars (for the paper executor), ``price_at`` the price at
  any past instant (open of the minute containing it), ``regimes`` the hidden daily regime labels.

Symbol character (``character``): the known universe (``universe.KNOWN_SYMBOLS``: the 9 default
symbols, BTC ≈ 60k, ETH ≈ 3k, SOL ≈ 150, …, and 25 other real Kraken USD pairs) has built-in
profiles (volatility, price decimals, volume); settings refuse any other symbol for
``market = "sim"``. The class itself still serves any valid symbol (tests and benchmarks use
made-up ones) with a stable profile derived from a hash of it.

Errors: a symbol that is invalid or not listed -> ConfigError; an unknown timeframe -> ConfigError;
asking ``price_at`` about the future or before EPOCH -> ConfigError.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import polars as pl

from trading_brain.adapters.clock import SystemClock
from trading_brain.adapters.sim.process import (
    DAY_MIN,
    EPOCH,
    EPOCH_S,
    REGIMES,
    Character,
    PriceProcess,
)
from trading_brain.adapters.sim.universe import PROFILES as _PROFILES
from trading_brain.domain.candles import UTC_TS, empty_candles
from trading_brain.domain.fees import DEFAULT_MAKER_FEE, DEFAULT_TAKER_FEE
from trading_brain.domain.instruments import DEFAULT_SYMBOLS, AssetPair, parse_symbol
from trading_brain.domain.market import Ticker
from trading_brain.domain.timeframes import Timeframe, as_utc, parse_timeframe, seconds
from trading_brain.errors import ConfigError
from trading_brain.ports import Clock

FEE_TAKER, FEE_MAKER = DEFAULT_TAKER_FEE, DEFAULT_MAKER_FEE
COSTMIN = Decimal("0.5")
LOT_DECIMALS = 8
# Kraken's legacy asset ids and altnames (XBT = BTC, XDG = DOGE); other codes are used as-is.
_LEGACY_ID = {
    "BTC": "XXBT",
    "ETH": "XETH",
    "XRP": "XXRP",
    "LTC": "XLTC",
    "USD": "ZUSD",
    "EUR": "ZEUR",
}
_ALT = {"BTC": "XBT", "DOGE": "XDG"}
_SPREAD_BPS = {"BTC/USD": 0.5, "ETH/USD": 1.0}
_DEFAULT_SPREAD_BPS = 3.0


class SimMarket:
    """A deterministic simulated spot market that "trades live" against ``clock``."""

    name = "sim"

    def __init__(
        self,
        symbols: Sequence[str] = DEFAULT_SYMBOLS,
        seed: int = 0,
        clock: Clock | None = None,
        cache_days: int = 32,
    ) -> None:
        if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
            raise ConfigError(f"sim seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.symbols: tuple[str, ...] = tuple(dict.fromkeys(parse_symbol(s) for s in symbols))
        if not self.symbols:
            raise ConfigError("sim market needs at least one symbol")
        self._procs = {
            s: PriceProcess(self.seed, s, character(s), cache_days=cache_days, share_daily=True)
            for s in self.symbols
        }
        self._names: dict[str, str] = {}  # symbol as asked -> listed symbol (``_symbol``)
        self._quotes: dict[str, Ticker] = {}  # the last quote of each symbol (``tickers``)

    # ---- MarketData --------------------------------------------------------------------------

    def asset_pairs(self, symbols: Sequence[str]) -> dict[str, AssetPair]:
        """Kraken-like pair metadata for each of ``symbols`` (keyed by the normalised symbol)."""
        return {
            s: _asset_pair(s, self._procs[s].char.anchor, self._procs[s].char.decimals)
            for s in map(self._symbol, symbols)
        }

    def candles(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> pl.DataFrame:
        """Closed bars of ``symbol``/``timeframe`` opening in ``[start, end)`` (see module doc)."""
        sym = self._symbol(symbol)
        tf = parse_timeframe(timeframe)
        n = seconds(tf) // 60
        lo, hi = _minute(start, ceil=True), _minute(end, ceil=True)
        hi = min(hi, self._now_minute_floor(n))
        if lo >= hi:
            return empty_candles()
        return _frame(sym, tf, self._procs[sym].bars(n, lo, hi))

    def candle_rows(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[tuple[datetime, float, float, float, float, float]]:
        """The bars of ``candles(symbol, timeframe, start, end)`` as tuples (see module doc)."""
        sym = self._symbol(symbol)
        n = seconds(parse_timeframe(timeframe)) // 60
        lo, hi = _minute(start, ceil=True), _minute(end, ceil=True)
        hi = min(hi, self._now_minute_floor(n))
        if lo >= hi:
            return []
        proc = self._procs[sym]
        first, stop = max(-(-lo // n) * n, 0), -(-hi // n) * n  # as ``PriceProcess.bars``
        if first < stop and first // DAY_MIN == (stop - 1) // DAY_MIN:
            return _day_rows(proc, n, first, stop)  # inside one day (the paper venue's reads)
        bars = proc.bars(n, lo, hi)
        stamps = [EPOCH + timedelta(minutes=int(m)) for m in
                  ((bars["ts"] // 1_000_000 - EPOCH_S) // 60).tolist()]
        return list(zip(stamps, *(bars[c].tolist() for c in ("open", "high", "low", "close",
                                                            "volume")), strict=True))

    def tickers(self, symbols: Sequence[str]) -> dict[str, Ticker]:
        """Latest price of each symbol (close of the newest closed minute) with a small spread."""
        raw = self.clock.now()
        now = as_utc(raw)
        m = _minute(now, ceil=False) if now >= EPOCH else -1
        out: dict[str, Ticker] = {}
        for sym in map(self._symbol, symbols):
            kept = self._quotes.get(sym)  # a quote is a pure function of (symbol, now)
            if kept is not None and kept.ts == now and kept.ts.tzinfo is now.tzinfo:
                out[sym] = kept  # frozen: the same instant asked again (executor ticks, scan)
                continue
            if m >= 0 and self.clock.now() is raw:  # ``price_at(sym, now)``: now is no future
                last = float(self._procs[sym].day(m // DAY_MIN).open[m % DAY_MIN])
            else:
                last = self.price_at(sym, now)
            decimals = self._procs[sym].char.decimals
            half = last * _SPREAD_BPS.get(sym, _DEFAULT_SPREAD_BPS) / 2e4
            tick = 10.0**-decimals
            bid = max(math.floor((last - half) * 10**decimals) / 10**decimals, tick)
            ask = max(math.ceil((last + half) * 10**decimals) / 10**decimals, bid + tick)
            out[sym] = self._quotes[sym] = Ticker(symbol=sym, bid=bid, ask=round(ask, decimals),
                                                  last=last, ts=now)
        return out

    # ---- extras ------------------------------------------------------------------------------

    def minute_path(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Closed 1-minute bars opening in ``[start, end)``; same as
        ``candles(symbol, "1m", ...)``."""
        return self.candles(symbol, "1m", start, end)

    def price_at(self, symbol: str, t: datetime) -> float:
        """The price at instant ``t <= now``: the open of the 1-minute bar containing ``t``."""
        sym = self._symbol(symbol)
        t = as_utc(t)
        if t > as_utc(self.clock.now()):
            raise ConfigError(f"price_at({sym}, {t.isoformat()}) asks about the future")
        if t < EPOCH:
            raise ConfigError(f"the sim market has no prices before {EPOCH.isoformat()}")
        m = _minute(t, ceil=False)
        return float(self._procs[sym].day(m // DAY_MIN).open[m % DAY_MIN])

    def regimes(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Hidden daily state of the closed days opening in ``[start, end)``.

        Columns: ``ts`` (day open, UTC), ``regime`` ("range"|"up"|"down"), ``daily_vol`` (sd of the
        day's log return) and ``jump`` (log jump size, 0 when none). Useful for tests and analyses.
        """
        sym = self._symbol(symbol)
        k0 = -(-_minute(start, ceil=True) // DAY_MIN)
        k1 = min(-(-_minute(end, ceil=True) // DAY_MIN), self._now_minute_floor(DAY_MIN) // DAY_MIN)
        d = self._procs[sym].daily(k0, k1)
        ts = (EPOCH_S + d["day"].astype(np.int64) * 86_400) * 1_000_000
        return pl.DataFrame(
            {
                "ts": pl.Series(ts, dtype=pl.Int64).cast(UTC_TS),
                "regime": pl.Series([REGIMES[r] for r in d["regime"]], dtype=pl.String),
                "daily_vol": d["vol"],
                "jump": d["jump"],
            }
        )

    # ---- helpers -----------------------------------------------------------------------------

    def _symbol(self, symbol: str) -> str:
        sym = self._names.get(symbol)  # only listed answers are kept: a pure function of symbol
        if sym is not None:
            return sym
        sym = parse_symbol(symbol)
        if sym not in self._procs:
            raise ConfigError(
                f"unknown symbol {symbol!r} for the sim market; listed: {', '.join(self.symbols)}"
            )
        if len(self._names) < 1024:
            self._names[symbol] = sym
        return sym

    def _now_minute_floor(self, n: int) -> int:
        """Exclusive upper bound (minutes since EPOCH) of the open times of closed ``n``-minute
        bars."""
        m = _minute(self.clock.now(), ceil=False)
        return m // n * n


_MINUTE = timedelta(minutes=1)
_MICROSECOND = timedelta(microseconds=1)


def _day_rows(proc: PriceProcess, n: int, first: int, stop: int
              ) -> list[tuple[datetime, float, float, float, float, float]]:
    """``candle_rows`` of the ``n``-minute bars opening in minutes ``[first, stop)`` (multiples of
    ``n``, one day): the day's arrays sliced, the same values and LRU use as ``bars``."""
    k = first // DAY_MIN
    day0 = k * DAY_MIN
    i0, i1 = (first - day0) // n, (stop - day0) // n
    cols = [a[i0:i1].tolist() for a in proc.day(k).aggregate(n)]
    t0, step = EPOCH + timedelta(minutes=first), _MINUTE * n
    stamps = [t0 + step * i for i in range(i1 - i0)]
    return list(zip(stamps, *cols, strict=True))


def _minute(t: datetime, ceil: bool) -> int:
    """Whole minutes since EPOCH at ``t`` (rounded up or down), in exact integer arithmetic."""
    # an aware ``t`` minus EPOCH is exact in any zone (``as_utc`` would only convert it)
    us = ((t if t.tzinfo is not None else t.replace(tzinfo=UTC)) - EPOCH) // _MICROSECOND
    return -(-us // 60_000_000) if ceil else us // 60_000_000


def _frame(symbol: str, tf: str, bars: dict[str, np.ndarray]) -> pl.DataFrame:
    cols = {
        c: pl.Series(c, bars[c], dtype=pl.Float64)
        for c in ("open", "high", "low", "close", "volume")
    }
    return pl.DataFrame(
        [pl.Series("ts", bars["ts"], dtype=pl.Int64).cast(UTC_TS), *cols.values()]
    ).select(pl.lit(symbol).alias("symbol"), pl.lit(tf).alias("timeframe"), pl.all())


def _asset_pair(symbol: str, anchor: float, decimals: int) -> AssetPair:
    base, quote = symbol.split("/")
    alt = _ALT.get(base, base) + _ALT.get(quote, quote)
    legacy = base in _LEGACY_ID and quote in _LEGACY_ID
    return AssetPair(
        symbol=symbol,
        base=base,
        quote=quote,
        venue_name=_LEGACY_ID[base] + _LEGACY_ID[quote] if legacy else alt,
        altname=alt,
        wsname=f"{_ALT.get(base, base)}/{_ALT.get(quote, quote)}",
        lot_decimals=LOT_DECIMALS,
        pair_decimals=decimals,
        ordermin=_ordermin(anchor),
        costmin=COSTMIN,
        tick_size=Decimal(1).scaleb(-decimals),
        fee_taker=FEE_TAKER,
        fee_maker=FEE_MAKER,
    )


def _ordermin(anchor: float) -> Decimal:
    """About 5 quote units of base, rounded down to 1, 2 or 5 × 10^k (BTC at 60k -> 0.00005)."""
    target = 5.0 / anchor
    exp = math.floor(math.log10(target))
    mant = max(m for m in (1, 2, 5) if m * 10.0**exp <= target * (1 + 1e-9))
    return Decimal(mant).scaleb(exp).normalize() if exp < 0 else Decimal(mant * 10**exp)


def character(symbol: str) -> Character:
    """The built-in profile of ``symbol``, or one derived from a hash of it for any other symbol."""
    if symbol in _PROFILES:
        anchor, vol, decimals, usd = _PROFILES[symbol]
    else:
        d = hashlib.blake2b(b"character:" + symbol.encode(), digest_size=12).digest()
        u1, u2, u3 = (int.from_bytes(d[i : i + 4], "little") / 2**32 for i in (0, 4, 8))
        anchor = float(f"{10 ** (-2 + 6 * u1):.3g}")
        vol, usd = 0.03 + 0.04 * u2, 10 ** (6 + 2 * u3)
        decimals = min(max(5 - math.floor(math.log10(anchor)), 0), 8)
    return Character(anchor=anchor, daily_vol=vol, decimals=decimals, daily_volume=usd / anchor)
