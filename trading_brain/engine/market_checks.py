"""Pure evaluations behind the market asset checks (freshness, gaps, validity, duplicates).

Each function returns a ``CheckOutcome``; the Dagster layer turns it into an
``AssetCheckResult``. Thresholds are arguments so tests can pin them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import polars as pl

from trading_brain.domain import timeframes as tfs

FRESHNESS_LIMIT = timedelta(minutes=15)


# A check's metadata value: what Dagster shows as text or a number (None values are dropped).
MetaValue = str | int | float | bool | None
CheckMeta = dict[str, MetaValue]


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    description: str
    metadata: CheckMeta = field(default_factory=dict)


def freshness(
    latest: Mapping[str, datetime], symbols: Sequence[str], now: datetime, *, live: bool,
    limit: timedelta = FRESHNESS_LIMIT,
) -> CheckOutcome:
    """Fails when a live market's newest 5m candle (close time) is older than ``limit``."""
    ages = {s: (now - (latest[s] + tfs.delta("5m"))) if s in latest else None for s in symbols}
    stale = sorted(s for s, a in ages.items() if a is None or a > limit)
    meta: CheckMeta = {
        "live": live, "limit_minutes": limit.total_seconds() / 60,
        "oldest_age_minutes": max(
            (a.total_seconds() / 60 for a in ages.values() if a is not None), default=None),
        "stale_symbols": ", ".join(stale) or "none",
    }
    if not live:
        return CheckOutcome(True, "not enforced: replayed market or a past partition", meta)
    if stale:
        return CheckOutcome(False, f"{len(stale)} symbol(s) have no 5m candle in the last "
                                   f"{limit.total_seconds() / 60:.0f} min: {', '.join(stale)}",
                            meta)
    return CheckOutcome(True, "every symbol has a fresh 5m candle", meta)


def gaps(
    stored: pl.DataFrame, omitted: pl.DataFrame, timeframe: str, start: datetime, end: datetime
) -> CheckOutcome:
    """Missing bars between each symbol's first and last stored bar in ``[start, end)`` that the
    venue did not omit (``omitted``: symbol, ts). ``stored`` needs columns symbol, ts."""
    step = tfs.delta(timeframe)
    missing: dict[str, int] = {}
    first_missing: dict[str, str] = {}
    omit = omitted.group_by("symbol").agg(pl.col("ts")).rows() if omitted.height else []
    omit_by = {s: set(ts) for s, ts in omit}
    window = stored.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
    for (symbol,), part in window.group_by("symbol"):
        times = part["ts"].sort()
        expected = pl.datetime_range(times[0], times[-1], step, time_unit="us",
                                     time_zone="UTC", eager=True)
        lost = expected.filter(~expected.is_in(times.implode()))
        lost = [t for t in lost.to_list() if t not in omit_by.get(symbol, ())]
        if lost:
            missing[symbol] = len(lost)
            first_missing[symbol] = lost[0].isoformat()
    meta: CheckMeta = {"missing_bars": sum(missing.values()),
                       "symbols_with_gaps": ", ".join(sorted(missing)) or "none"}
    if missing:
        first = min(first_missing.values())
        return CheckOutcome(False, f"{sum(missing.values())} {timeframe} bar(s) missing "
                                   f"(first at {first}) beyond what the venue omitted", meta)
    return CheckOutcome(True, f"no {timeframe} gaps beyond venue omissions", meta)


def validity(audit: Mapping[str, int], timeframe: str) -> CheckOutcome:
    """Stored candles satisfy low ≤ open, close ≤ high, positive and finite prices."""
    meta: CheckMeta = {k: audit[k] for k in ("rows", "invalid", "quarantined")}
    if audit["invalid"]:
        return CheckOutcome(False, f"{audit['invalid']} stored {timeframe} candle(s) violate OHLC "
                                   "validity", meta)
    note = f"; {audit['quarantined']} row(s) quarantined" if audit["quarantined"] else ""
    return CheckOutcome(True, f"all {audit['rows']} {timeframe} candles valid{note}", meta)


def quarantine(audit: Mapping[str, int], timeframe: str) -> CheckOutcome:
    """Reports rows refused by validation in the window (a WARN: bad input was kept out)."""
    meta: CheckMeta = {"quarantined": audit["quarantined"]}
    if audit["quarantined"]:
        return CheckOutcome(False, f"{audit['quarantined']} {timeframe} row(s) quarantined "
                                   "(see table candles_quarantine)", meta)
    return CheckOutcome(True, f"no {timeframe} rows quarantined", meta)


def duplicates(audit: Mapping[str, int], timeframe: str) -> CheckOutcome:
    meta: CheckMeta = {"rows": audit["rows"], "duplicates": audit["duplicates"]}
    if audit["duplicates"]:
        return CheckOutcome(False, f"{audit['duplicates']} duplicate {timeframe} candle key(s)",
                            meta)
    return CheckOutcome(True, f"no duplicate {timeframe} candles", meta)


def finite_indicators(ind: pl.DataFrame) -> CheckOutcome:
    """Every numeric indicator value is null (warm-up) or finite."""
    num = [c for c, t in ind.schema.items() if t.is_float()]
    bad = ind.select(pl.sum_horizontal([pl.col(c).is_nan() | pl.col(c).is_infinite()
                                        for c in num]).sum()).item() if num and ind.height else 0
    meta: CheckMeta = {"rows": ind.height, "non_finite": int(bad or 0)}
    if bad:
        return CheckOutcome(False, f"{bad} non-finite indicator value(s)", meta)
    return CheckOutcome(True, f"all {ind.height} indicator rows finite", meta)
