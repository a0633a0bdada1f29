"""Fetch closed candles from a market into the warehouse: validated, idempotent, gap-aware.

Contract of ``sync_window`` (used by the 5-minute scan, Dagster backfills and the bootstrap):
- only bars that have closed at ``now`` and whose open time is in ``[start, end)`` are fetched;
  an incremental call re-fetches the newest ``overlap_bars`` stored bars (a venue may revise its
  last bar) so nothing is missed and nothing is stored twice (upserts are keyed);
- every fetched frame passes ``engine.candles.validate`` (with the newest stored bars as context,
  so a lone outlier print in a short tail is caught): good rows are upserted, bad rows are
  quarantined with their reason; a bad batch never changes stored candles;
- open times inside the span of returned bars for which the venue returned nothing are
  recorded as venue omissions (the gap check tolerates exactly those).

``derive_window`` builds 1h/1d candles from stored 5m candles — complete buckets only — and
fetches directly from the market the closed buckets that 5m cannot complete (history older
than the 5m retention, or intervals the venue omitted at 5m).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from trading_brain.domain import timeframes as tfs
from trading_brain.domain.candles import conform, empty_candles
from trading_brain.engine.candles import SCALE_WINDOW, aggregate, validate
from trading_brain.ports import CandleStore, MarketData

# Stored bars handed to validation as context, so a lone new print can be judged an outlier.
CONTEXT_BARS = SCALE_WINDOW


@dataclass
class SyncReport:
    """What one sync did; ``latest`` maps symbol to the newest stored open time after it."""

    timeframe: str
    fetched: int = 0
    stored: int = 0
    quarantined: int = 0
    omitted: int = 0
    derived: int = 0
    latest: dict[str, datetime] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)


def closed_end(now: datetime, timeframe: str) -> datetime:
    """Exclusive upper bound on open times of bars closed at ``now``."""
    return tfs.floor_time(now, timeframe)


def sync_window(
    market: MarketData, store: CandleStore, symbols: Sequence[str], timeframe: str,
    start: datetime, end: datetime, *, now: datetime, overlap_bars: int = 1,
    incremental: bool = True,
) -> SyncReport:
    """Fetch, validate and store the closed ``timeframe`` bars of ``symbols`` in
    ``[start, end)``."""
    report = SyncReport(timeframe)
    stop = min(end, closed_end(now, timeframe))
    latest: dict[str, datetime] = {}
    history = None
    tf = tfs.parse_timeframe(timeframe)
    step = tfs.delta(tf)
    if incremental:
        with store.session():
            latest = store.latest_candle_ts(tf)
            history = store.read_candles(symbols, tf, stop - CONTEXT_BARS * step, stop)
    frames = []
    for symbol in symbols:
        begin = start
        if symbol in latest and start <= latest[symbol] < stop:
            begin = max(start, latest[symbol] - (overlap_bars - 1) * step)
        if begin < stop:
            frames.append(market.candles(symbol, tf, begin, stop))
    fetched = pl.concat(frames) if frames else empty_candles()
    return store_fetched(store, fetched, timeframe, market.name, report, history=history)


def derive_window(
    market: MarketData, store: CandleStore, symbols: Sequence[str], timeframe: str,
    start: datetime, end: datetime, *, now: datetime, five_minute: pl.DataFrame,
) -> SyncReport:
    """Store 1h/1d bars in ``[start, end)``: aggregated from ``five_minute`` where complete, else
    fetched directly from ``market`` (only for closed buckets)."""
    report = SyncReport(timeframe)
    stop = min(end, closed_end(now, timeframe))
    if start >= stop:
        return report
    agg = aggregate(five_minute, timeframe) if five_minute.height else empty_candles()
    agg = agg.filter((pl.col("ts") >= start) & (pl.col("ts") < stop))
    report.derived = agg.height
    expected = _expected(start, stop, timeframe)
    tf = tfs.parse_timeframe(timeframe)
    frames = [agg]
    for symbol in symbols:
        have = set(agg.filter(pl.col("symbol") == symbol)["ts"].to_list())
        missing = [t for t in expected if t not in have]
        if missing:
            got = market.candles(symbol, tf, missing[0], missing[-1] + tfs.delta(tf))
            frames.append(got.filter(pl.col("ts").is_in(missing)))
    return store_fetched(store, pl.concat(frames), timeframe, market.name, report)


def store_fetched(
    store: CandleStore, fetched: pl.DataFrame, timeframe: str, source: str,
    report: SyncReport | None = None, history: pl.DataFrame | None = None,
) -> SyncReport:
    """Validate ``fetched`` and write it in one session: good rows upserted, bad rows
    quarantined, interior venue omissions recorded, arrived bars un-marked."""
    report = report or SyncReport(timeframe)
    report.fetched += fetched.height
    if fetched.is_empty():
        return report
    if history is not None and history.height:  # context for outlier detection only
        history = history.join(fetched.select("symbol", "ts"), on=["symbol", "ts"], how="anti")
    good, bad = validate(conform(fetched), timeframe, history=history)
    omitted = _omissions(good, bad, timeframe)
    with store.session():
        report.stored += store.upsert_candles(good, source=source)
        if bad.height:
            report.quarantined += store.quarantine_candles(bad, source)
        report.omitted += store.record_omissions(timeframe, omitted)
        store.forget_omissions(timeframe, good)
    for reason, n in (bad.group_by("reason").len().iter_rows() if bad.height else ()):
        report.reasons[reason] = report.reasons.get(reason, 0) + n
    if good.height:
        report.latest.update(dict(good.group_by("symbol").agg(pl.col("ts").max()).iter_rows()))
    return report


def _omissions(good: pl.DataFrame, bad: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    """(symbol, ts) aligned open times between each symbol's first and last returned bar that
    the venue returned neither as a good nor as a quarantined row."""
    if good.is_empty():
        return pl.DataFrame(schema={"symbol": pl.String, "ts": pl.Datetime("us", "UTC")})
    returned = pl.concat([good.select("symbol", "ts"), bad.select("symbol", "ts")]) \
        if bad.height else good.select("symbol", "ts")
    span = good.group_by("symbol").agg(pl.col("ts").min().alias("lo"),
                                       pl.col("ts").max().alias("hi"))
    expected = span.select(
        "symbol", pl.datetime_ranges("lo", "hi", interval=f"{tfs.seconds(timeframe)}s",
                                     time_unit="us", time_zone="UTC").alias("ts")).explode("ts")
    return expected.join(returned, on=["symbol", "ts"], how="anti")


def _expected(start: datetime, stop: datetime, timeframe: str) -> list[datetime]:
    """Every aligned open time in ``[start, stop)``."""
    first = tfs.floor_time(start, timeframe)
    if first < start:
        first += tfs.delta(timeframe)
    if first >= stop:
        return []
    rng = pl.datetime_range(first, stop, tfs.delta(timeframe), closed="left",
                            time_unit="us", time_zone="UTC", eager=True)
    return rng.to_list()
