"""Daily returns, Sharpe and Sortino with the √365 convention, on hand-computed series."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trading_brain.engine.evolution.returns import (
    PERIODS_PER_YEAR,
    annualise,
    daily_returns,
    per_period,
    return_moments,
    sharpe_ratio,
    sortino_ratio,
)
from trading_brain.errors import DataError


def test_daily_returns_of_equity_marks() -> None:
    assert daily_returns([100.0, 110.0, 99.0, 99.0]) == pytest.approx([0.1, -0.1, 0.0])
    assert daily_returns([100.0]).size == 0


def test_sharpe_by_hand_uses_sqrt_365() -> None:
    """r = (0.01, -0.01, 0.02): mean 0.006667, std(ddof=1) 0.015275 -> 0.436436 per day."""
    r = [0.01, -0.01, 0.02]
    assert PERIODS_PER_YEAR == 365
    assert sharpe_ratio(r, periods_per_year=1) == pytest.approx(0.436436, abs=1e-6)
    assert sharpe_ratio(r) == pytest.approx(0.436436 * math.sqrt(365), abs=1e-5)
    assert annualise(per_period(1.7)) == pytest.approx(1.7)


def test_sortino_by_hand() -> None:
    """r = (0.02, -0.01, 0.03, -0.02): mean 0.005; DD = sqrt((0.0001 + 0.0004) / 4) = 0.01118."""
    r = [0.02, -0.01, 0.03, -0.02]
    assert sortino_ratio(r, periods_per_year=1) == pytest.approx(0.005 / math.sqrt(0.000125))
    assert sortino_ratio(r) == pytest.approx(0.005 / math.sqrt(0.000125) * math.sqrt(365))
    # against a target of 1% a day: shortfalls -0.02, -0.03 and the 0.01 day counts as 0
    assert sortino_ratio(r, target=0.01, periods_per_year=1) == pytest.approx(
        (0.005 - 0.01) / math.sqrt((0.02**2 + 0.03**2) / 4))


def test_undefined_ratios_are_none() -> None:
    assert sharpe_ratio([0.01]) is None
    assert sharpe_ratio([0.001] * 30) is None  # no dispersion
    assert sharpe_ratio([0.0, 0.0]) is None
    assert sortino_ratio([0.01, 0.02]) is None  # no day below target
    assert sortino_ratio([]) is None


def test_moments_match_a_second_computation() -> None:
    rng = np.random.default_rng(3)
    r = rng.standard_t(5, 400) * 0.01
    skew, kurt = return_moments(r)
    c = r - r.mean()
    assert skew == pytest.approx(np.mean(c**3) / np.mean(c**2) ** 1.5)
    assert kurt == pytest.approx(np.mean(c**4) / np.mean(c**2) ** 2)
    assert kurt >= 1 + skew**2
    assert return_moments([1.0, -1.0, 1.0, -1.0]) == pytest.approx((0.0, 1.0))


@pytest.mark.parametrize("bad", [[0.1, float("nan")], [[0.1, 0.2]], [float("inf"), 0.0]])
def test_bad_series_are_data_errors(bad: list[float]) -> None:
    with pytest.raises(DataError):
        sharpe_ratio(bad)


def test_non_positive_equity_is_refused() -> None:
    with pytest.raises(DataError, match="> 0"):
        daily_returns([100.0, 0.0, 50.0])
    with pytest.raises(DataError, match="not all equal"):
        return_moments([0.01, 0.01])
