"""Candle timeframes and time alignment.

A bar with open time ``t`` covers ``[t, t + Δ)``; its open time is a multiple of Δ since the Unix
epoch (all timeframes here divide a day, so 1d bars open at 00:00 UTC). All datetimes are
timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from trading_brain.errors import ConfigError

Timeframe = Literal["1m", "5m", "1h", "1d"]
TIMEFRAMES: tuple[Timeframe, ...] = get_args(Timeframe)
STORED_TIMEFRAMES: tuple[Timeframe, ...] = ("5m", "1h", "1d")

_SECONDS: dict[str, int] = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}


def parse_timeframe(value: str) -> Timeframe:
    """Return ``value`` as a Timeframe or raise ConfigError naming the allowed values."""
    if value in TIMEFRAMES:  # narrows ``value`` to the Timeframe literals
        return value
    raise ConfigError(f"unknown timeframe {value!r}; allowed: {', '.join(TIMEFRAMES)}")


def seconds(tf: str) -> int:
    """Length of one bar of ``tf`` in seconds."""
    return _SECONDS[parse_timeframe(tf)]


def delta(tf: str) -> timedelta:
    """Length of one bar of ``tf``."""
    return timedelta(seconds=seconds(tf))


def floor_time(t: datetime, tf: str) -> datetime:
    """Open time of the bar of ``tf`` containing ``t`` (UTC)."""
    s = seconds(tf)
    epoch = int(as_utc(t).timestamp())
    return datetime.fromtimestamp(epoch - epoch % s, tz=UTC)


def last_closed_open(now: datetime, tf: str) -> datetime:
    """Open time of the newest bar of ``tf`` that has fully closed at ``now``."""
    return floor_time(now, tf) - delta(tf)


def is_aligned(t: datetime, tf: str) -> bool:
    """True when ``t`` is a valid open time for ``tf``."""
    return as_utc(t).timestamp() % seconds(tf) == 0


def as_utc(t: datetime) -> datetime:
    """Interpret a naive datetime as UTC; convert an aware one to UTC."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
