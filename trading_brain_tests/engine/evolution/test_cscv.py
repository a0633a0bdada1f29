"""PBO by CSCV: a hand-worked case, a brute-force second path, and the three textbook regimes."""

from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pytest

from trading_brain.engine.evolution.cscv import probability_of_backtest_overfitting as pbo
from trading_brain.errors import ConfigError, DataError


def _brute_force(matrix: np.ndarray, s: int) -> list[float]:
    """The paper's steps written plainly (lists, statistics.stdev, one combination at a time)."""
    t, n = matrix.shape
    m = t // s
    rows = [list(map(float, r)) for r in matrix[t - m * s:]]
    blocks = [rows[i * m:(i + 1) * m] for i in range(s)]

    def score(half: list[list[float]], j: int) -> float:
        col = [r[j] for r in half]
        if len(set(col)) == 1:
            return math.inf if col[0] > 0 else -math.inf if col[0] < 0 else 0.0
        return statistics.fmean(col) / statistics.stdev(col)

    logits = []
    for combo in itertools.combinations(range(s), s // 2):
        train = [r for i in combo for r in blocks[i]]
        test = [r for i in range(s) if i not in combo for r in blocks[i]]
        is_scores = [score(train, j) for j in range(n)]
        best = is_scores.index(max(is_scores))
        oos = [score(test, j) for j in range(n)]
        rank = sum(x < oos[best] for x in oos) + (sum(x == oos[best] for x in oos) + 1) / 2
        omega = rank / (n + 1)
        logits.append(math.log(omega / (1 - omega)))
    return logits


def test_hand_worked_case() -> None:
    """S = 4 one-row blocks, 6 combinations, two configs (A regime change, B alternating):

    train {0,1}: A +inf beats B 0; OOS {2,3}: A -inf is worst -> λ = ln(1/2)
    train {0,2}: B +inf; OOS {1,3}: B -inf worst -> ln(1/2)
    train {0,3} and {1,2}: tie 0/0, A (first) wins; OOS tie -> ω = 1/2, λ = 0 (counts as overfit)
    train {1,3}: A 0 beats B -inf; OOS {0,2}: B +inf -> A worst -> ln(1/2)
    train {2,3}: B 0 beats A -inf; OOS {0,1}: A +inf -> B worst -> ln(1/2)
    PBO = 6/6; the IS winner loses out of sample (-inf) in 2 of 6.
    """
    matrix = np.array([[1.0, 0.5], [1.0, -0.5], [-1.0, 0.5], [-1.0, -0.5]])
    result = pbo(matrix, n_splits=4)
    half = math.log(0.5)
    assert result.logits == pytest.approx((half, half, 0.0, 0.0, half, half))
    assert result.pbo == 1.0
    assert result.prob_oos_loss == pytest.approx(2 / 6)
    assert (result.n_combinations, result.n_configs, result.rows_used) == (6, 2, 4)


@pytest.mark.parametrize(("seed", "t", "n", "s"), [
    (1, 40, 5, 4), (2, 63, 7, 6), (3, 50, 3, 8), (4, 17, 4, 8), (5, 100, 12, 10),
])
def test_equals_the_brute_force_path(seed: int, t: int, n: int, s: int) -> None:
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0005, 0.01, (t, n)).round(4)  # rounding makes some ties likely
    matrix[:, 0] = 0.0  # a flat config (all zero returns) takes part in every ranking
    matrix[::3, 1] = 0.002
    result = pbo(matrix, n_splits=s)
    expected = _brute_force(matrix, s)
    assert result.logits == pytest.approx(expected, abs=1e-9)
    assert result.pbo == pytest.approx(np.mean(np.array(expected) <= 0))


def test_one_config_dominating_everywhere_gives_zero() -> None:
    rng = np.random.default_rng(11)
    matrix = rng.normal(0.0, 0.01, (480, 30))
    matrix[:, 7] += 0.02
    result = pbo(matrix, n_splits=16)
    assert result.pbo == 0.0
    assert result.n_combinations == 12_870
    assert min(result.logits) == pytest.approx(math.log(30))  # rank N of N: ω = N/(N+1)


def test_pure_noise_is_near_one_half_on_average() -> None:
    """Skill-less configs: the IS winner's OOS rank is uniform, so E[PBO] = 1/2 for even N."""
    rng = np.random.default_rng(2024)
    values = [pbo(rng.normal(0.0, 0.01, (240, 20)), n_splits=8).pbo for _ in range(60)]
    assert float(np.mean(values)) == pytest.approx(0.5, abs=0.06)


def test_constructed_overfit_is_near_one() -> None:
    """Each config earns in a random half of the blocks and loses the same in the other half.

    The in-sample best is the config whose good blocks cover the training set, so its
    out-of-sample blocks are exactly its bad ones: it ranks near the bottom out of sample.
    """
    rng = np.random.default_rng(5)
    s, m, n = 8, 10, 40
    matrix = rng.normal(0.0, 0.001, (s * m, n))
    for j in range(n):
        good = rng.choice(s, s // 2, replace=False)
        for b in range(s):
            matrix[b * m:(b + 1) * m, j] += 0.01 if b in good else -0.01
    result = pbo(matrix, n_splits=s)
    assert result.pbo >= 0.95
    assert result.prob_oos_loss >= 0.95


def test_oldest_rows_beyond_equal_blocks_are_dropped() -> None:
    rng = np.random.default_rng(8)
    matrix = rng.normal(0.0, 0.01, (83, 6))
    assert pbo(matrix, n_splits=8) == pbo(matrix[3:], n_splits=8)
    assert pbo(matrix, n_splits=8).rows_used == 80


def test_metrics_summary() -> None:
    result = pbo(np.random.default_rng(1).normal(0, 0.01, (64, 4)), n_splits=4)
    figures = result.metrics()
    assert set(figures) == {"pbo", "prob_oos_loss", "n_splits", "n_combinations", "n_configs",
                            "rows_used", "median_logit"}
    assert figures["median_logit"] == pytest.approx(float(np.median(result.logits)))


@pytest.mark.parametrize(("matrix", "splits", "error", "message"), [
    (np.zeros((40, 3)), 5, ConfigError, "even integer"),
    (np.zeros((40, 3)), 0, ConfigError, "even integer"),
    (np.zeros((400, 3)), 18, ConfigError, "more than the limit"),
    (np.zeros(40), 4, DataError, "2-D"),
    (np.zeros((40, 1)), 4, DataError, "at least 2 configurations"),
    (np.zeros((7, 3)), 8, DataError, "too few"),
    (np.full((40, 3), np.nan), 4, DataError, "non-finite"),
])
def test_bad_input(matrix: np.ndarray, splits: int, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        pbo(matrix, n_splits=splits)
