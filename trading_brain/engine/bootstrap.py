"""Resumable history backfill (``bootstrap_job``, ``trading-brain bootstrap`` and ``init``).

Contract: for every symbol and timeframe, closed bars from ``now - days[tf]`` to ``now`` are
fetched in chunks oldest-first through ``market_sync.store_fetched`` (validated, quarantined,
upserted). After each chunk the store's bootstrap progress records how far that (symbol,
timeframe) got, so a killed bootstrap resumes at the first unfinished chunk and never fetches a
finished one again. Re-running a completed bootstrap only fetches what closed since.

A market that serves only recent history (``DepthLimited``: Kraken's OHLC answers with the 720
newest candles whatever ``since`` asks) is asked for no more than it serves: the window starts
at ``market.oldest_served(tf, now)`` and is fetched in ONE chunk per (symbol, timeframe) — one
request each, so a first Kraken run costs 3 OHLC calls per symbol (5m, 1h, 1d; none of them is
derivable from a finer one without losing depth: 720 5m bars make 60 1h bars, the venue serves
720), and a resume at most one per (symbol, timeframe), none when nothing closed since. When the
configured days reach further back, the market warns once per (symbol, timeframe) and run
(``warn_history_limit``: it names ``import-ohlcv`` for deeper history). Before fetching, such a
market's ``asset_pairs`` checks every symbol against the venue (``ConfigError`` naming the
unknown ones).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

import polars as pl

from trading_brain.domain import timeframes as tfs
from trading_brain.engine.market_sync import SyncReport, closed_end, store_fetched
from trading_brain.ports import CandleStore, MarketData

# Bars per fetch chunk of an unlimited market: one day of 5m, ~30 days of 1h, one year of 1d.
CHUNK_BARS = {"5m": 288, "1h": 720, "1d": 365}
Progress = Callable[[int, int, str], None]
Chunk = tuple[str, str, datetime, datetime]  # symbol, timeframe, start, end


class BootstrapStore(CandleStore, Protocol):
    def get_bootstrap_progress(self) -> dict[tuple[str, str], tuple[datetime, datetime]]: ...

    def set_bootstrap_progress(
        self, symbol: str, timeframe: str, start_ts: datetime, done_until: datetime
    ) -> None: ...


@runtime_checkable
class DepthLimited(Protocol):
    """A market that serves only its newest candles (see ``adapters.kraken.market``)."""

    def oldest_served(self, timeframe: str, now: datetime) -> datetime: ...

    def warn_history_limit(self, symbol: str, timeframe: str, first: datetime) -> None: ...


def plan(
    symbols: Sequence[str], days: Mapping[str, int], now: datetime,
    done: Mapping[tuple[str, str], tuple[datetime, datetime]],
    oldest: Mapping[str, datetime] | None = None,
) -> tuple[list[Chunk], list[tuple[str, str, datetime]]]:
    """The (symbol, timeframe, start, end) chunks still to fetch, oldest first per series, and
    the (symbol, timeframe, oldest served) series whose wanted start the market cannot serve.

    ``oldest[tf]`` (a depth-limited market) clips every window to what is served and makes it
    one chunk."""
    chunks: list[Chunk] = []
    clipped: list[tuple[str, str, datetime]] = []
    for tf, n_days in days.items():
        stop = closed_end(now, tf)
        want_start = tfs.floor_time(now - timedelta(days=n_days), tf)
        floor = oldest.get(tf) if oldest else None
        served = max(want_start, floor) if floor is not None else want_start
        for symbol in symbols:
            start_ts, until = done.get((symbol, tf), (want_start, want_start))
            cursor = until if start_ts <= served else want_start
            if floor is not None and cursor < floor:
                clipped.append((symbol, tf, floor))
                cursor = floor
            size = tfs.delta(tf) * CHUNK_BARS[tf] if floor is None else max(stop - cursor,
                                                                               tfs.delta(tf))
            while cursor < stop:
                chunks.append((symbol, tf, cursor, min(cursor + size, stop)))
                cursor += size
    return chunks, clipped


def bootstrap_history(
    market: MarketData, store: BootstrapStore, symbols: Sequence[str],
    days: Mapping[str, int], *, now: datetime, progress: Progress | None = None,
) -> dict[str, SyncReport]:
    """Backfill ``days[tf]`` days of each timeframe for ``symbols``; resumable; returns reports.

    Chunks sharing a window are fetched for all their symbols, then written — candles,
    quarantine, omissions and progress — in one warehouse session (no I/O inside it).
    """
    done = dict(store.get_bootstrap_progress())
    limited = market if isinstance(market, DepthLimited) else None
    if limited is not None:
        market.asset_pairs(symbols)  # the venue's AssetPairs (cached): names unknown symbols
    oldest = {tf: limited.oldest_served(tf, now) for tf in days} if limited else None
    chunks, clipped = plan(symbols, days, now, done, oldest)
    if limited is not None:
        for symbol, tf, first in clipped:
            limited.warn_history_limit(symbol, tf, first)
    windows: dict[tuple[str, datetime, datetime], list[str]] = {}
    for symbol, tf, start, end in chunks:
        windows.setdefault((tf, start, end), []).append(symbol)
    reports = {tf: SyncReport(tf) for tf in days}
    for i, ((tf, start, end), syms) in enumerate(windows.items(), 1):
        timeframe = tfs.parse_timeframe(tf)
        frames = [market.candles(s, timeframe, start, end) for s in syms]
        with store.session():
            store_fetched(store, pl.concat(frames), tf, market.name, reports[tf])
            for s in syms:
                first = min(done.get((s, tf), (start, start))[0], start)
                store.set_bootstrap_progress(s, tf, first, end)
                done[(s, tf)] = (first, end)
        if progress is not None:
            progress(i, len(windows), f"{tf} {start:%Y-%m-%d}")
    return reports
