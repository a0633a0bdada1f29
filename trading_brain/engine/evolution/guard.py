"""Gate 3, the over-fitting guard, from the sweep's runs (pure; DESIGN §8, issue 11).

Inputs: the ``Run``s of one night's sweep (``evidence.run_set``: same bars, same costs, hourly
marks), the index of the chosen set and of the incumbent (the active version's defaults, in the
same sweep), the candidate's and the incumbent's out-of-sample returns (exact engine, from
``evidence.walk_forward_gate``) and ``n_trials``, every variant ever tried for the candidate's
family (``variant_trials``, this night's included). Three verdicts (``gates.GateResult``):

1. ``oos_edge``: candidate minus incumbent out-of-sample return (fractions of the starting
   cash) must exceed ``margin``;
2. ``dsr``: the deflated Sharpe ratio of the candidate's EXCESS hourly returns over the
   incumbent (candidate minus incumbent, full history: the data the selection saw), i.e. the
   probability that its edge over the incumbent is real after ``n_trials`` tries, with the
   trials' Sharpe variance taken across the sweep's excess Sharpe ratios (per hour). Measuring
   the excess (not the raw Sharpe) is what a replacement needs: beating a losing incumbent is a
   real improvement even when both lose. Undefined moments (a candidate identical to the
   incumbent) make it inconclusive;
3. ``pbo``: the probability of backtest over-fitting by CSCV over the sweep's hourly return
   matrix (one column per run), with ``pbo_splits`` blocks (16 by default; fewer, even, when
   the history is short so that each block keeps >= 2 rows).

Inconclusive is not a pass (``gates``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trading_brain.engine.evolution.cscv import probability_of_backtest_overfitting
from trading_brain.engine.evolution.evidence import Run
from trading_brain.engine.evolution.gates import (
    GateResult,
    Metric,
    dsr_gate,
    oos_edge_gate,
    pbo_gate,
)
from trading_brain.engine.evolution.overfit import trials_sharpe_variance
from trading_brain.engine.evolution.returns import return_moments
from trading_brain.errors import DataError


@dataclass(frozen=True)
class GuardSettings:
    """Thresholds of the guard (``[evolution]`` settings)."""

    margin: float = 0.005
    min_dsr: float = 0.95
    max_pbo: float = 0.5
    pbo_splits: int = 16
    min_dsr_obs: int = 30


def excess(run: Run, incumbent: Run) -> np.ndarray:
    """Hourly returns of ``run`` minus the incumbent's (same hours)."""
    a, b = run.returns, incumbent.returns
    if a.shape != b.shape:
        raise DataError("runs of one sweep must cover the same hours")
    return a - b


def per_period_sharpe(r: np.ndarray) -> float | None:
    """mean / std (ddof 1), None when undefined (fewer than 2 values or no dispersion)."""
    if r.size < 2 or float(r.max()) == float(r.min()):
        return None
    return float(r.mean() / r.std(ddof=1))


def splits_for(rows: int, wanted: int) -> int | None:
    """The largest even number of CSCV blocks <= ``wanted`` leaving >= 2 rows per half."""
    s = wanted - wanted % 2
    while s >= 2 and (rows // s) * (s // 2) < 2:
        s -= 2
    return s if s >= 2 else None


def dsr_result(runs: Sequence[Run], chosen: int, incumbent: int, n_trials: int,
               knobs: GuardSettings) -> GateResult:
    ex = excess(runs[chosen], runs[incumbent])
    sr = per_period_sharpe(ex)
    metrics: dict[str, Metric] = {"min_dsr": knobs.min_dsr, "n_obs": int(ex.size),
                                  "n_trials": n_trials, "series": "hourly excess returns"}
    if sr is None:
        return GateResult("dsr", "inconclusive", metrics,
                          "the candidate's returns equal the incumbent's: no excess to test")
    srs = [s for i, r in enumerate(runs) if i != incumbent
           and (s := per_period_sharpe(excess(r, runs[incumbent]))) is not None]
    try:
        skew, kurt = return_moments(ex)
    except DataError as e:
        return GateResult("dsr", "inconclusive", metrics, f"unusable returns: {e}")
    return dsr_gate(sr, n_obs=int(ex.size), n_trials=max(n_trials, len(srs), 1),
                    sr_variance=trials_sharpe_variance(srs), skew=skew, kurtosis=kurt,
                    min_dsr=knobs.min_dsr, min_obs=knobs.min_dsr_obs)


def pbo_result(runs: Sequence[Run], knobs: GuardSettings) -> GateResult:
    if len(runs) < 2:
        return pbo_gate(None, knobs.max_pbo)
    matrix = np.column_stack([r.returns for r in runs])
    splits = splits_for(matrix.shape[0], knobs.pbo_splits)
    if splits is None:
        return GateResult("pbo", "inconclusive", {"max_pbo": knobs.max_pbo},
                          f"{matrix.shape[0]} hourly returns are too few for CSCV")
    return pbo_gate(probability_of_backtest_overfitting(matrix, n_splits=splits),
                    knobs.max_pbo)


def overfit_guard(runs: Sequence[Run], chosen: int, incumbent: int, *,
                  candidate_oos: float | None, incumbent_oos: float | None, n_trials: int,
                  knobs: GuardSettings) -> list[GateResult]:
    """The three verdicts of the guard, in order (module docstring)."""
    clean = [v if v is not None and math.isfinite(v) else None
             for v in (candidate_oos, incumbent_oos)]
    edge = oos_edge_gate(clean[0], clean[1], knobs.margin, metric="oos_return")
    return [edge, dsr_result(runs, chosen, incumbent, n_trials, knobs), pbo_result(runs, knobs)]
