"""Gate verdicts: pass / fail / inconclusive at their boundaries, with the numbers as metadata."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from trading_brain.engine.evolution.cscv import probability_of_backtest_overfitting
from trading_brain.engine.evolution.gates import (
    GateResult,
    PaperStats,
    dsr_gate,
    oos_edge_gate,
    paper_test_gate,
    pbo_gate,
)
from trading_brain.errors import ConfigError, DataError

START = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(("candidate", "incumbent", "status"), [
    (1.3, 1.0, "pass"), (1.2, 1.0, "fail"), (1.0, 1.2, "fail"), (0.0, -0.5, "pass"),
    (1.25, 1.0, "fail"),  # an edge of exactly the margin does not exceed it (0.25 is exact)
    (None, 1.0, "inconclusive"), (1.0, None, "inconclusive"), (math.nan, 1.0, "inconclusive"),
])
def test_oos_edge_must_exceed_the_margin(candidate: float | None, incumbent: float | None,
                                         status: str) -> None:
    result = oos_edge_gate(candidate, incumbent, 0.25)
    assert result.status == status, result.reason
    assert result.name == "oos_edge" and result.metrics["margin"] == 0.25
    if candidate is not None and incumbent is not None and status != "inconclusive":
        assert result.metrics["edge"] == pytest.approx(candidate - incumbent)


def test_dsr_gate_on_the_paper_example() -> None:
    """The paper's example (DSR 0.9004) passes at 0.90 and fails at the default 0.95."""
    args = {"n_obs": 1250, "n_trials": 100, "sr_variance": 0.5 / 250, "skew": -3.0,
            "kurtosis": 10.0}
    sr = 2.5 / math.sqrt(250)
    strict = dsr_gate(sr, **args)
    assert strict.status == "fail" and strict.metrics["dsr"] == pytest.approx(0.9004, abs=5e-5)
    assert strict.metrics["n_trials"] == 100 and "SR0" in strict.reason
    assert dsr_gate(sr, min_dsr=0.90, **args).status == "pass"


def test_dsr_gate_is_inconclusive_on_short_or_unusable_samples() -> None:
    short = dsr_gate(0.3, n_obs=29, n_trials=5, sr_variance=0.01)
    assert short.status == "inconclusive" and "29 observations" in short.reason
    broken = dsr_gate(0.3, n_obs=100, n_trials=5, sr_variance=0.01, skew=5.0, kurtosis=2.0)
    assert broken.status == "inconclusive" and "impossible moments" in broken.reason


def test_pbo_gate_boundaries_and_a_real_result() -> None:
    assert pbo_gate(0.5, 0.5).status == "pass"
    assert pbo_gate(0.51, 0.5).status == "fail"
    assert pbo_gate(None).status == "inconclusive"
    rng = np.random.default_rng(4)
    matrix = rng.normal(0.0, 0.01, (160, 10))
    matrix[:, 3] += 0.02
    result = pbo_gate(probability_of_backtest_overfitting(matrix, n_splits=8), 0.3)
    assert result.status == "pass" and result.metrics["pbo"] == 0.0
    assert result.metrics["n_combinations"] == 70


def _stats(trades: int, ret: float) -> PaperStats:
    return PaperStats(started_at=START, closed_trades=trades, net_return=ret)


@pytest.mark.parametrize(("tier", "hours", "trades", "cand", "status"), [
    (1, 23.9, 10, 0.02, "inconclusive"),   # tier 1 needs 1 day
    (1, 24.0, 10, 0.02, "pass"),
    (2, 47.0, 10, 0.02, "inconclusive"),   # tier 2 needs 2 days
    (3, 6 * 24, 10, 0.02, "inconclusive"),  # tier 3 needs 7 days
    (3, 7 * 24, 10, 0.02, "pass"),
    (1, 48.0, 4, 0.02, "inconclusive"),    # too few closed trades
    (1, 48.0, 5, 0.01, "fail"),            # equal to the active slot is not a win
    (1, 48.0, 5, -0.03, "fail"),
])
def test_paper_test(tier: int, hours: float, trades: int, cand: float, status: str) -> None:
    result = paper_test_gate(_stats(trades, cand), _stats(7, 0.01), tier=tier,
                             now=START + timedelta(hours=hours))
    assert result.status == status, result.reason
    assert result.metrics["edge"] == pytest.approx(cand - 0.01)


def test_paper_test_max_days_turns_a_stalled_test_into_a_fail() -> None:
    stalled = paper_test_gate(_stats(1, 0.05), _stats(3, 0.0), tier=1,
                              now=START + timedelta(days=10), max_days=10)
    assert stalled.status == "fail" and "1 of 5 closed trades" in stalled.reason
    still = paper_test_gate(_stats(1, 0.05), _stats(3, 0.0), tier=1,
                            now=START + timedelta(days=9), max_days=10)
    assert still.status == "inconclusive"


def test_paper_test_custom_durations_and_bad_input() -> None:
    assert paper_test_gate(_stats(5, 0.1), _stats(5, 0.0), tier=2, now=START + timedelta(hours=1),
                           min_days_by_tier={2: 0}).status == "pass"
    with pytest.raises(ConfigError, match="tier 4"):
        paper_test_gate(_stats(5, 0.1), _stats(5, 0.0), tier=4, now=START)
    other = PaperStats(START + timedelta(hours=1), 5, 0.0)
    with pytest.raises(DataError, match="same period"):
        paper_test_gate(_stats(5, 0.1), other, tier=1, now=START + timedelta(days=2))
    with pytest.raises(DataError, match="before the test started"):
        paper_test_gate(_stats(5, 0.1), _stats(5, 0.0), tier=1, now=START - timedelta(days=1))


@pytest.mark.parametrize("call", [
    lambda: oos_edge_gate(1.0, 0.0, -0.1),
    lambda: oos_edge_gate(1.0, 0.0, math.nan),
    lambda: dsr_gate(0.1, n_obs=100, n_trials=2, sr_variance=0.0, min_dsr=1.5),
    lambda: pbo_gate(0.1, max_pbo=-0.1),
])
def test_bad_thresholds_are_config_errors(call: Callable[[], GateResult]) -> None:
    with pytest.raises(ConfigError):
        call()


def test_results_are_frozen_rows() -> None:
    result = GateResult("pbo", "pass", {"pbo": 0.1}, "ok")
    assert result.passed and not GateResult("x", "inconclusive").passed
    assert result.as_row() == {"gate": "pbo", "status": "pass", "reason": "ok", "pbo": 0.1}
    with pytest.raises(AttributeError):
        result.status = "fail"  # type: ignore[misc]  # the point: frozen
