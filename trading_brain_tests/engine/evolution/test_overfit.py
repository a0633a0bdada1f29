"""Probabilistic and deflated Sharpe ratios against the paper's worked example and vectorbt."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trading_brain.engine.evolution.overfit import (
    EULER_MASCHERONI,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    sharpe_std_error,
    trials_sharpe_variance,
)
from trading_brain.errors import DataError

# The paper's example counts 250 trading days a year; our own convention (√365) is not involved.
PAPER_DAYS = 250


def test_paper_numerical_example() -> None:
    """Bailey & López de Prado (2014), section "A numerical example".

    N = 100 independent trials whose annualised Sharpe ratios have variance 1/2; the selected
    strategy shows an annualised Sharpe of 2.5 over 5 years of daily returns (T = 1250) with
    skewness -3 and kurtosis 10. The paper reports SR0 ≈ 0.1132 (per day) and DSR ≈ 0.9004.
    The same two figures are used as a golden fixture by an independent public project (found in
    the code index, "Golden fixture: paper example ... gives SR0 = 0.1132, DSR = 0.9004"), and
    vectorbt's own implementation agrees (``test_agrees_with_vectorbt``).
    """
    result = deflated_sharpe_ratio(2.5 / math.sqrt(PAPER_DAYS), n_obs=1250, n_trials=100,
                                   sr_variance=0.5 / PAPER_DAYS, skew=-3.0, kurtosis=10.0)
    assert result.sr0 == pytest.approx(0.1132, abs=5e-5)
    assert result.dsr == pytest.approx(0.9004, abs=5e-5)
    assert result.metrics()["n_trials"] == 100


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _phi_inv(p: float) -> float:
    """Inverse normal CDF by bisection on erf: a second path, independent of NormalDist."""
    lo, hi = -10.0, 10.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _phi(mid) < p else (lo, mid)
    return (lo + hi) / 2


def test_expected_max_sharpe_formula_by_a_second_path() -> None:
    """N = 2: Φ⁻¹(1/2) = 0, so SR0 = √V·γ·Φ⁻¹(1 - 1/(2e)); N = 100 uses both terms."""
    assert expected_max_sharpe(2, 1.0) == pytest.approx(
        EULER_MASCHERONI * _phi_inv(1 - 1 / (2 * math.e)), abs=1e-12)
    both = ((1 - EULER_MASCHERONI) * _phi_inv(0.99)
            + EULER_MASCHERONI * _phi_inv(1 - 1 / (100 * math.e)))
    assert expected_max_sharpe(100, 4.0) == pytest.approx(2 * both, abs=1e-12)


def test_expected_max_sharpe_is_close_to_a_simulated_maximum() -> None:
    """The closed form approximates E[max of N standard normals] (tabulated 2.5076 for N = 100;
    the approximation gives 2.5306, ~1% high)."""
    rng = np.random.default_rng(7)
    simulated = float(rng.standard_normal((20_000, 100)).max(axis=1).mean())
    assert simulated == pytest.approx(2.5076, abs=0.01)
    assert expected_max_sharpe(100, 1.0) == pytest.approx(simulated, rel=0.015)


def test_more_trials_raise_the_bar_and_lower_the_dsr() -> None:
    bars = [expected_max_sharpe(n, 0.01) for n in (1, 2, 10, 100, 1000, 10_000)]
    assert bars == sorted(bars) and bars[0] == 0.0 and len(set(bars)) == len(bars)
    dsrs = [deflated_sharpe_ratio(0.1, n_obs=365, n_trials=n, sr_variance=0.01).dsr
            for n in (1, 10, 100)]
    assert dsrs[0] > dsrs[1] > dsrs[2]


def test_single_trial_and_zero_variance_reduce_to_psr_against_zero() -> None:
    psr0 = probabilistic_sharpe_ratio(0.08, 0.0, 500, skew=-0.5, kurtosis=5.0)
    one = deflated_sharpe_ratio(0.08, n_obs=500, n_trials=1, sr_variance=0.3, skew=-0.5,
                                kurtosis=5.0)
    alike = deflated_sharpe_ratio(0.08, n_obs=500, n_trials=50, sr_variance=0.0, skew=-0.5,
                                  kurtosis=5.0)
    assert one.sr0 == alike.sr0 == 0.0
    assert one.dsr == alike.dsr == psr0


def test_psr_by_hand_for_normal_returns() -> None:
    """SR 0.1 per day, T = 101, normal (kurtosis 3): σ(SR) = sqrt((1 + 0.5·0.01)/100)
    = 0.10024969; PSR(0) = Φ(0.1 / σ) = Φ(0.997509) = 0.84074 (table: Φ(1) - 0.00249·φ(1))."""
    assert sharpe_std_error(0.1, 101) == pytest.approx(0.10024969, abs=1e-8)
    assert probabilistic_sharpe_ratio(0.1, 0.0, 101) == pytest.approx(0.84074, abs=2e-5)
    assert probabilistic_sharpe_ratio(0.1, 0.0, 101) == pytest.approx(
        _phi(0.1 / math.sqrt(0.01005)), abs=1e-12)
    assert probabilistic_sharpe_ratio(0.1, 0.1, 101) == 0.5


def test_negative_skew_and_fat_tails_lower_the_psr() -> None:
    normal = probabilistic_sharpe_ratio(0.1, 0.0, 250)
    assert probabilistic_sharpe_ratio(0.1, 0.0, 250, skew=-2.0) < normal
    assert probabilistic_sharpe_ratio(0.1, 0.0, 250, kurtosis=12.0) < normal
    assert probabilistic_sharpe_ratio(0.1, 0.0, 250, skew=1.0) > normal


def test_agrees_with_vectorbt() -> None:
    """vectorbt (a dependency) has its own DSR (vectorbt/returns/metrics.py); compare values."""
    metrics = pytest.importorskip("vectorbt.returns.metrics")
    cases = [(0.158, 1250, 100, 0.002, -3.0, 10.0), (0.05, 90, 7, 0.004, 0.3, 4.0),
             (-0.02, 30, 400, 0.02, 0.0, 3.0), (0.3, 2000, 2, 0.1, -1.0, 2.5)]
    for sr, t, n, v, skew, kurt in cases:
        ours = deflated_sharpe_ratio(sr, n_obs=t, n_trials=n, sr_variance=v, skew=skew,
                                     kurtosis=kurt)
        theirs = metrics.deflated_sharpe_ratio(
            est_sharpe=np.array([sr]), var_sharpe=v, nb_trials=n, backtest_horizon=t,
            skew=np.array([skew]), kurtosis=np.array([kurt]))
        assert ours.dsr == pytest.approx(float(theirs[0]), abs=1e-9), (sr, t, n)


def test_trials_sharpe_variance() -> None:
    assert trials_sharpe_variance([0.1, 0.3]) == pytest.approx(0.02)
    assert trials_sharpe_variance([0.2]) == 0.0
    with pytest.raises(DataError):
        trials_sharpe_variance([0.1, float("nan")])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_obs": 1}, "n_obs must be an integer >= 2"),
    ({"n_obs": 2.5}, "n_obs must be an integer"),
    ({"n_trials": 0}, "n_trials must be an integer >= 1"),
    ({"n_trials": True}, "n_trials must be an integer"),
    ({"sr_variance": -0.1}, "sr_variance must be >= 0"),
    ({"sr_variance": float("inf")}, "sr_variance must be a finite number"),
    ({"skew": float("nan")}, "skew must be a finite number"),
    ({"skew": 3.0, "kurtosis": 2.0}, "impossible moments"),
])
def test_bad_inputs_raise_one_clear_data_error(kwargs: dict[str, float], message: str) -> None:
    args: dict[str, float] = {"n_obs": 100, "n_trials": 10, "sr_variance": 0.01, "skew": 0.0,
                              "kurtosis": 3.0, **kwargs}
    with pytest.raises(DataError, match=message):
        deflated_sharpe_ratio(0.5, **args)  # type: ignore[arg-type]  # wrong types on purpose
