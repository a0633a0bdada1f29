"""Daily returns, Sharpe and Sortino ratios with the √365 convention (pure).

Conventions (the truth benchmarks, the gates and the reports all use these):

- Crypto trades every calendar day, so a year has ``PERIODS_PER_YEAR = 365`` daily periods and an
  annualised ratio is the per-day ratio times ``√365`` (not √252).
- A daily return is the simple return of consecutive end-of-UTC-day equity marks,
  ``e[t] / e[t-1] - 1``; the caller passes one mark per day with no gaps (a flat day is a mark
  equal to the previous one, a 0 return, never a missing row).
- The risk-free rate is 0: idle quote currency earns nothing on the venue.
- Sharpe = ``mean(r) / std(r, ddof=1) × √365``. Sortino = ``(mean(r) - target) / DD × √365`` with
  the downside deviation ``DD = sqrt(mean(min(r - target, 0)²))`` over *all* observations
  (Sortino & Price 1994), target 0 by default.
- Undefined ratios are ``None``, never ``inf``/``nan``: fewer than 2 returns, a Sharpe whose
  returns are all exactly equal (no dispersion), a Sortino with no return below the target.
- ``return_moments`` gives the population skewness and the *non-excess* kurtosis (a normal
  distribution has 3), the form the probabilistic and deflated Sharpe ratios take.

Bad input (not 1-D, non-finite values, equity ≤ 0) raises ``DataError``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from trading_brain.errors import DataError

PERIODS_PER_YEAR = 365
ANNUALISATION = math.sqrt(PERIODS_PER_YEAR)

Series = Sequence[float] | np.ndarray


def as_series(values: Series, what: str = "returns") -> np.ndarray:
    """``values`` as a 1-D float64 array of finite numbers, or ``DataError``."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise DataError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{what} contain a non-finite value (nan or inf)")
    return arr


def daily_returns(equity: Series) -> np.ndarray:
    """Simple returns of consecutive daily equity marks; ``len(equity) - 1`` values."""
    marks = as_series(equity, "equity marks")
    if marks.size and float(marks.min()) <= 0.0:
        raise DataError("equity marks must be > 0 to form returns")
    return marks[1:] / marks[:-1] - 1.0


def sharpe_ratio(returns: Series, *, periods_per_year: int = PERIODS_PER_YEAR) -> float | None:
    """Annualised Sharpe ratio (risk-free 0); ``periods_per_year=1`` gives the per-period ratio."""
    r = as_series(returns)
    if r.size < 2 or float(r.max()) == float(r.min()):
        return None
    return float(r.mean() / r.std(ddof=1)) * math.sqrt(periods_per_year)


def sortino_ratio(returns: Series, *, target: float = 0.0,
                  periods_per_year: int = PERIODS_PER_YEAR) -> float | None:
    """Annualised Sortino ratio against a per-period ``target`` return (0 by default)."""
    r = as_series(returns)
    if r.size < 2:
        return None
    shortfall = np.minimum(r - target, 0.0)
    downside = math.sqrt(float(np.mean(shortfall * shortfall)))
    if downside == 0.0:
        return None
    return float(r.mean() - target) / downside * math.sqrt(periods_per_year)


def annualise(per_period: float, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """A per-period Sharpe (or Sortino) ratio as an annual one: ``× √periods_per_year``."""
    return per_period * math.sqrt(periods_per_year)


def per_period(annual: float, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """An annualised ratio back to its per-period value: ``/ √periods_per_year``."""
    return annual / math.sqrt(periods_per_year)


def return_moments(returns: Series) -> tuple[float, float]:
    """(skewness, kurtosis) of the returns: population moments, kurtosis NOT excess (normal = 3).

    Needs at least 2 returns that are not all equal (``DataError`` otherwise).
    """
    r = as_series(returns)
    if r.size < 2 or float(r.max()) == float(r.min()):
        raise DataError("moments need at least 2 returns that are not all equal")
    centred = r - r.mean()
    m2 = float(np.mean(centred**2))
    skew = float(np.mean(centred**3)) / m2**1.5
    kurt = float(np.mean(centred**4)) / m2**2
    return skew, kurt
