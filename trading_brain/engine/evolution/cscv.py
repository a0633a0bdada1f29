"""Probability of backtest over-fitting by combinatorially symmetric cross-validation (pure).

Reference: D. H. Bailey, J. M. Borwein, M. López de Prado and Q. J. Zhu, "The Probability of
Backtest Overfitting", Journal of Computational Finance 20(4), 2017 (SSRN 2326253, 2015).

Input: a ``T × N`` matrix of per-period returns, one column per configuration of the sweep (the
same periods for every column, oldest row first). Algorithm, deterministic:

1. keep the last ``S·⌊T/S⌋`` rows (the oldest ``T mod S`` are dropped so blocks are equal) and cut
   them into ``S`` (even) consecutive blocks of ``m = ⌊T/S⌋`` rows;
2. for each of the ``C(S, S/2)`` ways to pick ``S/2`` blocks as the in-sample set (the rest is the
   out-of-sample set, both kept in time order), score every column on both halves with the
   per-period Sharpe ratio ``mean / std(ddof=1)``;
3. ``n*`` = the in-sample best column (the first one on a tie); its out-of-sample relative rank is
   ``ω = rank / (N + 1)`` with ``rank`` in ``1..N`` (1 = worst; tied columns share their average
   rank) and its logit ``λ = ln(ω / (1 - ω))``;
4. ``PBO`` = the share of combinations with ``λ ≤ 0`` (the in-sample winner is at or below the
   out-of-sample median). ``prob_oos_loss`` = the share where its out-of-sample Sharpe is < 0.

A half-sample column whose returns are all exactly equal has no dispersion: it scores ``+inf``
when its return is positive, ``-inf`` when negative and ``0`` when zero (a riskless gain beats any
risky one). Limits: ``N ≥ 2``; ``S`` even, ``≥ 2``; each half holds ``≥ 2`` rows; at most
``max_combinations`` (default 12,870 = C(16, 8)). Bad parameters raise ``ConfigError``, a bad
matrix ``DataError``. Work is batched over combinations from per-block moments, so memory stays
bounded and S = 16 over a few hundred configurations takes well under a second.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from trading_brain.errors import ConfigError, DataError

MAX_COMBINATIONS = 12_870
_BATCH_CELLS = 4_000_000


@dataclass(frozen=True)
class PboResult:
    """CSCV outcome: ``pbo`` in [0, 1] and the logit of every combination (in order)."""

    pbo: float
    prob_oos_loss: float
    n_splits: int
    n_combinations: int
    n_configs: int
    rows_used: int
    logits: tuple[float, ...]

    def metrics(self) -> dict[str, float | int]:
        """The summary figures as a flat dict (gate metadata); the logits are left out."""
        return {"pbo": self.pbo, "prob_oos_loss": self.prob_oos_loss, "n_splits": self.n_splits,
                "n_combinations": self.n_combinations, "n_configs": self.n_configs,
                "rows_used": self.rows_used, "median_logit": float(np.median(self.logits))}


def _check(returns: np.ndarray, n_splits: int, max_combinations: int) -> tuple[int, int]:
    if isinstance(n_splits, bool) or not isinstance(n_splits, int) or n_splits < 2 \
            or n_splits % 2:
        raise ConfigError(f"n_splits must be an even integer >= 2, got {n_splits!r}")
    combos = math.comb(n_splits, n_splits // 2)
    if combos > max_combinations:
        raise ConfigError(f"n_splits={n_splits} gives {combos} combinations, more than the "
                          f"limit of {max_combinations}")
    if returns.ndim != 2:
        raise DataError(f"the return matrix must be 2-D (periods x configurations), "
                        f"got shape {returns.shape}")
    t, n = returns.shape
    if n < 2:
        raise DataError(f"PBO needs at least 2 configurations, got {n}")
    rows = t // n_splits
    if rows * (n_splits // 2) < 2:
        raise DataError(f"{t} periods are too few for {n_splits} splits: each half needs >= 2")
    if not np.all(np.isfinite(returns)):
        raise DataError("the return matrix contains a non-finite value (nan or inf)")
    return rows, combos


def _sharpe(mean: np.ndarray, var: np.ndarray, constant: np.ndarray) -> np.ndarray:
    flat = constant | (var <= 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        sr = mean / np.sqrt(np.where(flat, 1.0, var))
    riskless = np.where(mean > 0.0, np.inf, np.where(mean < 0.0, -np.inf, 0.0))
    return np.where(flat, riskless, sr)


def _flat_values(b_min: np.ndarray, b_max: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (column, value) of a flat block: its column, its value and the blocks NOT flat at
    that value (``S × P``, as floats for a matrix product)."""
    flat = b_min == b_max
    cols, values, others = [], [], []
    for j in np.flatnonzero(flat.any(axis=0)):
        for v in np.unique(b_min[flat[:, j], j]):
            cols.append(j)
            values.append(v)
            others.append(~(flat[:, j] & (b_min[:, j] == v)))
    if not cols:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros((b_min.shape[0], 0))
    return np.asarray(cols), np.asarray(values), np.column_stack(others).astype(np.float64)


def _half_scores(ind: np.ndarray, stats: tuple[np.ndarray, ...], rows: int,
                 flats: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Per-period Sharpe of every column on the union of the blocks selected by ``ind``.

    Moments combine exactly per block: ``M2 = Σ M2_b + m·Σ mean_b² - m·k·mean²`` (clipped at 0).
    A half is constant only when all its blocks are flat and share one value ``v``: exactly
    when it selects no block outside the flat-at-``v`` blocks of that column (a count from one
    matrix product of 0/1 values, exact), for some (column, ``v``) of ``flats``; its mean is
    then ``v`` itself.
    """
    b_mean, b_sq = stats[0], stats[1]
    k = int(ind[0].sum())
    w = ind.astype(np.float64)
    mean = w @ b_mean / k
    m2 = np.maximum(w @ b_sq - rows * k * mean * mean, 0.0)
    constant = np.zeros(mean.shape, dtype=bool)
    cols, values, others = flats
    if cols.size:
        hit = (w @ others) == 0.0  # combos x (column, value): every selected block flat at v
        for p in np.flatnonzero(hit.any(axis=0)):
            j, at = cols[p], hit[:, p]
            constant[at, j] = True
            mean[at, j] = values[p]
    return _sharpe(mean, m2 / (rows * k - 1), constant)


def _logits(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    best = np.argmax(train, axis=1)
    oos = test[np.arange(test.shape[0]), best]
    below = (test < oos[:, None]).sum(axis=1)
    ties = (test == oos[:, None]).sum(axis=1)
    omega = (below + (ties + 1) / 2.0) / (test.shape[1] + 1)
    return np.log(omega / (1.0 - omega)), oos


def probability_of_backtest_overfitting(
    returns: np.ndarray, *, n_splits: int = 16, max_combinations: int = MAX_COMBINATIONS,
) -> PboResult:
    """PBO of selecting the in-sample best column of ``returns`` (T periods × N configs)."""
    matrix = np.asarray(returns, dtype=np.float64)
    rows, n_combos = _check(matrix, n_splits, max_combinations)
    n = matrix.shape[1]
    used = matrix[matrix.shape[0] - rows * n_splits:].reshape(n_splits, rows, n)
    b_mean = used.mean(axis=1)
    b_m2 = ((used - b_mean[:, None, :]) ** 2).sum(axis=1)
    stats = (b_mean, b_m2 + rows * b_mean * b_mean)
    flats = _flat_values(used.min(axis=1), used.max(axis=1))
    chosen = np.zeros((n_combos, n_splits), dtype=bool)
    for i, combo in enumerate(itertools.combinations(range(n_splits), n_splits // 2)):
        chosen[i, list(combo)] = True
    batch = max(1, _BATCH_CELLS // (n_splits * n))
    logits, oos = [], []
    for start in range(0, n_combos, batch):
        ind = chosen[start:start + batch]
        lam, perf = _logits(_half_scores(ind, stats, rows, flats),
                            _half_scores(~ind, stats, rows, flats))
        logits.append(lam)
        oos.append(perf)
    lam_all = np.concatenate(logits)
    return PboResult(
        pbo=float(np.mean(lam_all <= 0.0)),
        prob_oos_loss=float(np.mean(np.concatenate(oos) < 0.0)),
        n_splits=n_splits, n_combinations=n_combos, n_configs=n, rows_used=rows * n_splits,
        logits=tuple(float(x) for x in lam_all),
    )
