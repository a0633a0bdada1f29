"""Probabilistic and deflated Sharpe ratios (Bailey & López de Prado 2014), pure.

Reference: D. H. Bailey and M. López de Prado, "The Deflated Sharpe Ratio: Correcting for
Selection Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio Management 40(5),
2014, pp. 94-107 (equations numbered as in that paper).

Units: every Sharpe ratio here is PER PERIOD (not annualised): the ratio of the mean to the
standard deviation of the ``n_obs`` returns it was measured on (see ``returns.per_period`` to
convert an annual figure with the √365 convention). ``kurtosis`` is NOT excess (normal = 3).

- ``probabilistic_sharpe_ratio(sr, benchmark, n_obs, skew, kurtosis)``:
  ``PSR = Φ((sr - benchmark) √(T - 1) / √(1 - γ3·sr + (γ4 - 1)/4·sr²))`` — the probability that
  the true Sharpe ratio exceeds ``benchmark`` given the observed one.
- ``expected_max_sharpe(n_trials, sr_variance)``: the expected maximum of ``N`` independent
  Sharpe estimates whose true value is 0 and whose variance across trials is ``V``:
  ``SR0 = √V·((1 - γ)·Φ⁻¹(1 - 1/N) + γ·Φ⁻¹(1 - 1/(N·e)))``, γ the Euler–Mascheroni constant.
- ``deflated_sharpe_ratio``: ``DSR = PSR(SR0)``; the gate passes a candidate when DSR ≥ a
  confidence (0.95 by default), with ``N`` = every variant ever tried for the family.

Defined edge cases: ``N = 1`` (no selection) and ``V = 0`` (all trials alike) give ``SR0 = 0``, so
DSR = PSR(0). Errors (``DataError``, one line): non-finite inputs, ``n_obs < 2``,
``n_trials < 1``, ``V < 0``, or moments no distribution can have (``1 - γ3·sr + (γ4-1)/4·sr² ≤ 0``,
impossible when ``γ4 ≥ 1 + γ3²``). The formulas are asymptotic: the gate, not this module, decides
how few observations are too few to judge (``gates.dsr_gate`` returns inconclusive).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from trading_brain.errors import DataError

EULER_MASCHERONI = 0.5772156649015329
_NORMAL = NormalDist()


def _finite(**values: float) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not math.isfinite(value):
            raise DataError(f"{name} must be a finite number, got {value!r}")


def _count(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise DataError(f"{name} must be an integer >= {minimum}, got {value!r}")


def sharpe_std_error(sr: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0) -> float:
    """Standard error of a per-period Sharpe estimate under non-normal returns (paper eq. 2)."""
    _finite(sr=sr, skew=skew, kurtosis=kurtosis)
    _count("n_obs", n_obs, 2)
    spread = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if spread <= 0.0:
        raise DataError(
            f"impossible moments (skew {skew}, kurtosis {kurtosis}): "
            "kurtosis must be >= 1 + skew² (kurtosis is not excess: normal = 3)")
    return math.sqrt(spread / (n_obs - 1))


def probabilistic_sharpe_ratio(sr: float, benchmark: float, n_obs: int, skew: float = 0.0,
                               kurtosis: float = 3.0) -> float:
    """P(true Sharpe > ``benchmark``) given a per-period ``sr`` measured on ``n_obs`` returns."""
    _finite(benchmark=benchmark)
    return _NORMAL.cdf((sr - benchmark) / sharpe_std_error(sr, n_obs, skew, kurtosis))


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """Expected maximum per-period Sharpe of ``n_trials`` skill-less trials (paper eq. 5 / SR0)."""
    _count("n_trials", n_trials, 1)
    _finite(sr_variance=sr_variance)
    if sr_variance < 0.0:
        raise DataError(f"sr_variance must be >= 0, got {sr_variance}")
    if n_trials == 1 or sr_variance == 0.0:
        return 0.0
    n = float(n_trials)
    z = ((1.0 - EULER_MASCHERONI) * _NORMAL.inv_cdf(1.0 - 1.0 / n)
         + EULER_MASCHERONI * _NORMAL.inv_cdf(1.0 - 1.0 / (n * math.e)))
    return math.sqrt(sr_variance) * z


def trials_sharpe_variance(trial_srs: Sequence[float] | np.ndarray) -> float:
    """Sample variance (ddof=1) of the trials' per-period Sharpe ratios; 0.0 for fewer than 2."""
    srs = np.asarray(trial_srs, dtype=np.float64)
    if srs.ndim != 1 or not np.all(np.isfinite(srs)):
        raise DataError("trial Sharpe ratios must be a 1-D sequence of finite numbers")
    return float(srs.var(ddof=1)) if srs.size >= 2 else 0.0


@dataclass(frozen=True)
class DeflatedSharpe:
    """A deflated Sharpe ratio with its inputs; every Sharpe figure is per period."""

    dsr: float
    sr: float
    sr0: float
    z: float
    n_obs: int
    n_trials: int
    sr_variance: float
    skew: float
    kurtosis: float

    def metrics(self) -> dict[str, float | int]:
        """The figures as a flat dict (gate metadata)."""
        return {"dsr": self.dsr, "sr": self.sr, "sr0": self.sr0, "z": self.z,
                "n_obs": self.n_obs, "n_trials": self.n_trials, "sr_variance": self.sr_variance,
                "skew": self.skew, "kurtosis": self.kurtosis}


def deflated_sharpe_ratio(sr: float, *, n_obs: int, n_trials: int, sr_variance: float,
                          skew: float = 0.0, kurtosis: float = 3.0) -> DeflatedSharpe:
    """DSR of the selected strategy: its PSR against the expected maximum of ``n_trials``.

    ``sr``: the selected strategy's per-period Sharpe over ``n_obs`` returns, with that series'
    ``skew`` and non-excess ``kurtosis``; ``sr_variance``: variance of the per-period Sharpe
    ratios across the trials (``trials_sharpe_variance``).
    """
    sr0 = expected_max_sharpe(n_trials, sr_variance)
    z = (sr - sr0) / sharpe_std_error(sr, n_obs, skew, kurtosis)
    return DeflatedSharpe(dsr=_NORMAL.cdf(z), sr=sr, sr0=sr0, z=z, n_obs=int(n_obs),
                          n_trials=int(n_trials), sr_variance=sr_variance, skew=skew,
                          kurtosis=kurtosis)
