"""Clocks: the wall clock and a settable simulated clock (both satisfy ``ports.Clock``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from trading_brain.domain.timeframes import as_utc


class SystemClock:
    """The real UTC wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class SimClock:
    """A clock that only moves when told to; used by simulate, replays and tests."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)

    def now(self) -> datetime:
        return self._now

    def set(self, t: datetime) -> None:
        """Move to ``t`` (never backwards)."""
        t = as_utc(t)
        if t < self._now:
            raise ValueError(f"SimClock cannot move backwards: {t} < {self._now}")
        self._now = t

    def advance(self, d: timedelta) -> datetime:
        """Move forward by ``d`` and return the new time."""
        self.set(self._now + d)
        return self._now
