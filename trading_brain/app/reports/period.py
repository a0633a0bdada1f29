"""The period a report covers: a UTC day, the 7 days ending with a day, or an arbitrary range.

Contract:
- ``Period(kind, start, end, label)``: timestamps in ``[start, end)`` (UTC); ``name`` is the file
  stem ``<kind>-<label>`` (``daily-2026-10-03``, ``weekly-2026-10-03``,
  ``simulation-2026-10-01_2026-10-03``);
- ``day(d)``: ``[d 00:00, d+1 00:00)``; ``week(d)``: the 7 days ending with ``d`` (inclusive);
  ``span(start, end, kind)``: any range (its label names the first and the last day touched);
- ``parse_date(text)``: ``YYYY-MM-DD`` or ``ConfigError`` naming the option.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from trading_brain.errors import ConfigError

KINDS = ("daily", "weekly", "simulation", "range")


@dataclass(frozen=True)
class Period:
    kind: str
    start: datetime
    end: datetime
    label: str

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.label}"

    @property
    def title(self) -> str:
        last = (self.end - timedelta(microseconds=1)).date()
        if self.kind == "daily":
            return f"Daily report {self.start.date().isoformat()}"
        return (f"{self.kind.capitalize()} report {self.start.date().isoformat()} to "
                f"{last.isoformat()}")


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=UTC)


def day(d: date) -> Period:
    return Period("daily", _midnight(d), _midnight(d + timedelta(days=1)), d.isoformat())


def week(d: date) -> Period:
    return Period("weekly", _midnight(d - timedelta(days=6)), _midnight(d + timedelta(days=1)),
                  d.isoformat())


def span(start: datetime, end: datetime, kind: str = "range") -> Period:
    if end <= start:
        raise ConfigError(f"empty report period: {start.isoformat()} to {end.isoformat()}")
    last = (end - timedelta(microseconds=1)).date()
    label = start.date().isoformat()
    if last != start.date():
        label += f"_{last.isoformat()}"
    return Period(kind, start.astimezone(UTC), end.astimezone(UTC), label)


def parse_date(text: str, option: str = "--date") -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option} must be a date YYYY-MM-DD, got {text!r}") from None
