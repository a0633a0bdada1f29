"""Grading of falsifiable predictions from truth-benchmark readings (pure).

A later cycle grades each open ``Prediction`` with ``grade_prediction(prediction, readings,
now=…)``. ``readings`` are the benchmark values of the prediction's ``subject`` and ``metric``
(``MetricReading``: ``as_of``, ``value`` in the unit of ``decision_fields.METRICS``, and the
``trades`` / ``days`` of data behind it), one per cycle, in any order. Outcomes:

- ``pending``: ``now`` is before the deadline, or no reading taken at/after the deadline exists
  yet and the grace period (``grace_days``, default 2) has not run out;
- ``inconclusive``: the graded reading has no value (``None``/non-finite), or too little data
  behind it: trade metrics (``TRADE_METRICS``) need ``min_trades`` closed trades (default 5),
  return metrics (``DAY_METRICS``) ``min_days`` daily returns (default 7); or the grace period
  ran out without a reading (e.g. the subject was cancelled). Inconclusive is not confirmed;
- ``confirmed``: ``value <comparator> threshold`` holds exactly;
- ``partial``: it does not hold, but misses by at most the tolerance band
  ``max(rel_tolerance·|threshold|, ABS_TOLERANCE[metric])`` (rel 10 % by default); a value equal
  to the threshold of a strict comparator misses by 0, so it is partial;
- ``refuted``: it misses by more than the band.

The graded reading is the EARLIEST reading with ``as_of >= deadline``: the first benchmark that
covers the whole period up to the deadline. Counts and amounts (``trades``, P&L, fees) need no
minimum sample. All times must be timezone-aware (``DataError`` otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from trading_brain.engine.evolution.decision import Prediction
from trading_brain.errors import DataError

GradeStatus = Literal["pending", "confirmed", "refuted", "partial", "inconclusive"]
TRADE_METRICS = frozenset({"win_rate", "expectancy", "profit_factor", "fees_pct_of_gross"})
DAY_METRICS = frozenset({"sharpe", "sortino", "max_drawdown"})
ABS_TOLERANCE: dict[str, float] = {
    "trades": 1.0, "win_rate": 0.02, "max_drawdown": 0.01, "sharpe": 0.1, "sortino": 0.1,
    "profit_factor": 0.05, "fees_pct_of_gross": 2.0,
}
REL_TOLERANCE = 0.10


@dataclass(frozen=True)
class MetricReading:
    """One benchmark value of a subject's metric as of ``as_of``, with the data behind it."""

    as_of: datetime
    value: float | None
    trades: int = 0
    days: int = 0


@dataclass(frozen=True)
class Grade:
    """The outcome of grading one prediction; ``reading`` is the one graded (if any)."""

    status: GradeStatus
    reason: str
    value: float | None = None
    tolerance: float = 0.0
    reading: MetricReading | None = None


def holds(value: float, comparator: str, threshold: float) -> bool:
    """``value <comparator> threshold`` for ``>``, ``>=``, ``<``, ``<=``."""
    if comparator == ">":
        return value > threshold
    if comparator == ">=":
        return value >= threshold
    if comparator == "<":
        return value < threshold
    if comparator == "<=":
        return value <= threshold
    raise DataError(f"unknown comparator {comparator!r}")


def _aware(when: datetime, what: str) -> None:
    if when.tzinfo is None or when.utcoffset() is None:
        raise DataError(f"{what} must be timezone-aware")


def graded_reading(readings: Iterable[MetricReading], deadline: datetime) -> MetricReading | None:
    """The earliest reading taken at or after ``deadline``, or None."""
    best: MetricReading | None = None
    for reading in readings:
        _aware(reading.as_of, "a reading's as_of")
        if reading.as_of >= deadline and (best is None or reading.as_of < best.as_of):
            best = reading
    return best


def tolerance(prediction: Prediction, rel_tolerance: float = REL_TOLERANCE) -> float:
    """Width of the partial band for this prediction's threshold and metric."""
    return max(rel_tolerance * abs(prediction.threshold), ABS_TOLERANCE.get(prediction.metric, 0))


def _too_little_data(metric: str, reading: MetricReading, min_trades: int,
                     min_days: int) -> str | None:
    if metric in TRADE_METRICS and reading.trades < min_trades:
        return f"{reading.trades} closed trades, fewer than the {min_trades} needed"
    if metric in DAY_METRICS and reading.days < min_days:
        return f"{reading.days} days of returns, fewer than the {min_days} needed"
    return None


def grade_prediction(prediction: Prediction, readings: Iterable[MetricReading], *,
                     now: datetime, min_trades: int = 5, min_days: int = 7,
                     rel_tolerance: float = REL_TOLERANCE, grace_days: float = 2.0) -> Grade:
    """Grade ``prediction`` at ``now`` from its subject's readings of its metric."""
    _aware(now, "now")
    deadline = prediction.deadline
    if now < deadline:
        return Grade("pending", f"deadline {deadline.isoformat()} not reached")
    reading = graded_reading(readings, deadline)
    if reading is None:
        if now < deadline + timedelta(days=grace_days):
            return Grade("pending", "no benchmark reading at or after the deadline yet")
        return Grade("inconclusive", f"no benchmark reading within {grace_days:g} days "
                                     "after the deadline")
    value = reading.value
    if value is None or not math.isfinite(value):
        return Grade("inconclusive", f"{prediction.metric} has no value", reading=reading)
    short = _too_little_data(prediction.metric, reading, min_trades, min_days)
    if short is not None:
        return Grade("inconclusive", short, value=value, reading=reading)
    band = tolerance(prediction, rel_tolerance)
    claim = f"{prediction.metric} {value:g} {prediction.comparator} {prediction.threshold:g}"
    if holds(value, prediction.comparator, prediction.threshold):
        return Grade("confirmed", f"{claim} holds", value=value, tolerance=band, reading=reading)
    miss = abs(value - prediction.threshold)
    status: GradeStatus = "partial" if miss <= band else "refuted"
    return Grade(status, f"{claim} fails by {miss:g} (band {band:g})", value=value,
                 tolerance=band, reading=reading)
