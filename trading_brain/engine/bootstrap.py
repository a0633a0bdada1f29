"""Resumable history backfill (``bootstrap_job`` and ``trading-brain init``).

Contract: for every symbol and timeframe, closed bars from ``now - days[tf]`` to ``now`` are
fetched in chunks oldest-first through ``market_sync.sync_window`` (validated, quarantined,
upserted). After each chunk the store's bootstrap progress records how far that (symbol,
timeframe) got, so a killed bootstrap resumes at the first unfinished chunk and never fetches a
finished one again. Re-running a completed bootstrap only fetches what closed since.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import polars as pl

from trading_brain.domain import timeframes as tfs
from trading_brain.engine.market_sync import SyncReport, closed_end, store_fetched
from trading_brain.ports import CandleStore, MarketData

# Bars per fetch chunk: one day of 5m, ~30 days of 1h, one year of 1d.
CHUNK_BARS = {"5m": 288, "1h": 720, "1d": 365}
Progress = Callable[[int, int, str], None]


class BootstrapStore(CandleStore, Protocol):
    def get_bootstrap_progress(self) -> dict[tuple[str, str], tuple[datetime, datetime]]: ...

    def set_bootstrap_progress(
        self, symbol: str, timeframe: str, start_ts: datetime, done_until: datetime
    ) -> None: ...


def plan(
    symbols: Sequence[str], days: Mapping[str, int], now: datetime,
    done: Mapping[tuple[str, str], tuple[datetime, datetime]],
) -> list[tuple[str, str, datetime, datetime]]:
    """The (symbol, timeframe, start, end) chunks still to fetch, oldest first per series."""
    chunks = []
    for tf, n_days in days.items():
        stop = closed_end(now, tf)
        want_start = tfs.floor_time(now - timedelta(days=n_days), tf)
        size = tfs.delta(tf) * CHUNK_BARS[tf]
        for symbol in symbols:
            start_ts, until = done.get((symbol, tf), (want_start, want_start))
            cursor = until if start_ts <= want_start else want_start
            while cursor < stop:
                chunks.append((symbol, tf, cursor, min(cursor + size, stop)))
                cursor += size
    return chunks


def bootstrap_history(
    market: MarketData, store: BootstrapStore, symbols: Sequence[str],
    days: Mapping[str, int], *, now: datetime, progress: Progress | None = None,
) -> dict[str, SyncReport]:
    """Backfill ``days[tf]`` days of each timeframe for ``symbols``; resumable; returns reports.

    Chunks sharing a window are fetched for all their symbols, then written — candles,
    quarantine, omissions and progress — in one warehouse session (no I/O inside it).
    """
    done = dict(store.get_bootstrap_progress())
    windows: dict[tuple[str, datetime, datetime], list[str]] = {}
    for symbol, tf, start, end in plan(symbols, days, now, done):
        windows.setdefault((tf, start, end), []).append(symbol)
    reports = {tf: SyncReport(tf) for tf in days}
    for i, ((tf, start, end), syms) in enumerate(windows.items(), 1):
        frames = [market.candles(s, tf, start, end) for s in syms]  # type: ignore[arg-type]
        with store.session():
            store_fetched(store, pl.concat(frames), tf, market.name, reports[tf])
            for s in syms:
                first = min(done.get((s, tf), (start, start))[0], start)
                store.set_bootstrap_progress(s, tf, first, end)
                done[(s, tf)] = (first, end)
        if progress is not None:
            progress(i, len(windows), f"{tf} {start:%Y-%m-%d}")
    return reports
