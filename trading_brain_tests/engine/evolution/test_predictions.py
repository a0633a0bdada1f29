"""Grading predictions: pending, confirmed, partial, refuted and inconclusive, with boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trading_brain.engine.evolution.decision import Prediction
from trading_brain.engine.evolution.predictions import (
    MetricReading,
    grade_prediction,
    graded_reading,
    holds,
    tolerance,
)
from trading_brain.errors import DataError

DEADLINE = datetime(2026, 3, 8, tzinfo=UTC)
AFTER = DEADLINE + timedelta(hours=2)


def _pred(metric: str = "win_rate", comparator: str = ">", threshold: float = 0.5) -> Prediction:
    # plain strings from the parametrisation; pydantic validates them at run time
    return Prediction(claim="c", metric=metric, comparator=comparator,  # type: ignore[arg-type]
                      threshold=threshold, deadline=DEADLINE)


def _at(value: float | None, *, trades: int = 20, days: int = 30,
        when: datetime = AFTER) -> list[MetricReading]:
    return [MetricReading(as_of=when, value=value, trades=trades, days=days)]


@pytest.mark.parametrize(("comparator", "value", "status"), [
    (">", 0.56, "confirmed"), (">", 0.5, "partial"), (">", 0.451, "partial"),
    (">", 0.44, "refuted"), (">=", 0.5, "confirmed"), ("<", 0.49, "confirmed"),
    ("<", 0.549, "partial"), ("<", 0.56, "refuted"), ("<=", 0.5, "confirmed"),
])
def test_outcomes_and_the_tolerance_band(comparator: str, value: float, status: str) -> None:
    """win_rate threshold 0.5: band = max(10 % of 0.5, 0.02 floor) = 0.05."""
    grade = grade_prediction(_pred(comparator=comparator), _at(value), now=AFTER)
    assert grade.status == status, grade.reason
    assert grade.tolerance == pytest.approx(0.05) and grade.value == value


def test_a_miss_exactly_at_the_band_edge_is_partial() -> None:
    """trades > 10: band = max(1.0, floor 1) = 1; 9 misses by exactly 1, 8.5 by 1.5."""
    assert grade_prediction(_pred("trades", ">", 10), _at(9.0), now=AFTER).status == "partial"
    assert grade_prediction(_pred("trades", ">", 10), _at(8.5), now=AFTER).status == "refuted"


def test_absolute_floor_applies_near_zero_thresholds() -> None:
    assert tolerance(_pred("sharpe", ">", 0.0)) == 0.1
    assert tolerance(_pred("net_pnl", ">", 0.0)) == 0.0
    assert grade_prediction(_pred("sharpe", ">", 0.0), _at(-0.05), now=AFTER).status == "partial"
    assert grade_prediction(_pred("net_pnl", ">", 0.0), _at(-0.01), now=AFTER).status == "refuted"


def test_pending_before_the_deadline_even_with_readings() -> None:
    grade = grade_prediction(_pred(), _at(0.9, when=DEADLINE - timedelta(days=1)),
                             now=DEADLINE - timedelta(seconds=1))
    assert grade.status == "pending" and "not reached" in grade.reason


def test_the_first_reading_at_or_after_the_deadline_is_graded() -> None:
    readings = [
        MetricReading(DEADLINE - timedelta(days=1), 0.9, 20, 30),   # before: ignored
        MetricReading(DEADLINE + timedelta(days=3), 0.9, 20, 30),   # later: not the first
        MetricReading(DEADLINE, 0.3, 20, 30),                       # exactly at the deadline
    ]
    grade = grade_prediction(_pred(), readings, now=DEADLINE + timedelta(days=5))
    assert grade.status == "refuted" and grade.reading is readings[2]
    assert graded_reading(readings[:2], DEADLINE) is readings[1]


def test_no_reading_is_pending_then_inconclusive_after_the_grace() -> None:
    early = _at(0.9, when=DEADLINE - timedelta(days=1))
    assert grade_prediction(_pred(), early, now=DEADLINE + timedelta(days=1)).status == "pending"
    late = grade_prediction(_pred(), early, now=DEADLINE + timedelta(days=2))
    assert late.status == "inconclusive" and "no benchmark reading" in late.reason


@pytest.mark.parametrize(("metric", "trades", "days", "status"), [
    ("win_rate", 4, 30, "inconclusive"), ("win_rate", 5, 0, "confirmed"),
    ("sharpe", 0, 6, "inconclusive"), ("sharpe", 0, 7, "confirmed"),
    ("max_drawdown", 50, 3, "inconclusive"), ("trades", 0, 0, "confirmed"),
    ("net_pnl", 0, 0, "confirmed"),
])
def test_too_little_data_is_inconclusive(metric: str, trades: int, days: int,
                                         status: str) -> None:
    comparator = "<" if metric == "max_drawdown" else ">="
    threshold = 0.2 if metric == "max_drawdown" else 0.0
    grade = grade_prediction(_pred(metric, comparator, threshold),
                             _at(0.1, trades=trades, days=days), now=AFTER)
    assert grade.status == status, grade.reason


@pytest.mark.parametrize("value", [None, float("nan"), float("inf")])
def test_missing_values_are_inconclusive(value: float | None) -> None:
    assert grade_prediction(_pred(), _at(value), now=AFTER).status == "inconclusive"


def test_naive_times_are_refused() -> None:
    with pytest.raises(DataError, match="now must be timezone-aware"):
        grade_prediction(_pred(), _at(0.6), now=datetime(2026, 3, 9))
    with pytest.raises(DataError, match="as_of must be timezone-aware"):
        grade_prediction(_pred(), _at(0.6, when=datetime(2026, 3, 9)), now=AFTER)


def test_holds_rejects_unknown_comparators() -> None:
    assert holds(1.0, ">=", 1.0) and not holds(1.0, ">", 1.0)
    with pytest.raises(DataError):
        holds(1.0, "==", 1.0)
