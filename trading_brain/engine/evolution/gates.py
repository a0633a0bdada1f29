"""Gate verdicts of the evolution loop, as data (pure).

Each gate returns a frozen ``GateResult(name, status, metrics, reason)``; ``status`` is ``pass``,
``fail`` or ``inconclusive``. Inconclusive is a result, NOT a pass: a candidate moves on only when
every gate passed, in the order of issue 11 (registration, walk-forward, ``oos_edge``, ``dsr``,
``pbo``, ``paper_test``). ``metrics`` holds every number the verdict used (asset-check metadata,
the gate table in the UI); ``as_row()`` flattens a result for storage.

- ``oos_edge_gate``: ``edge = candidate - incumbent`` out-of-sample scores (same metric, same
  bars, same costs); pass when ``edge > margin`` (strict), inconclusive when a score is missing.
- ``dsr_gate``: the deflated Sharpe ratio of the candidate's per-period Sharpe with ``n_trials`` =
  every variant ever tried for the family; pass when ``dsr >= min_dsr``; inconclusive under
  ``min_obs`` observations or when the inputs are unusable (the reason says why).
- ``pbo_gate``: pass when ``pbo <= max_pbo``; inconclusive without a PBO (fewer than 2 configs).
- ``paper_test_gate``: the shadow paper test against the active slot over the SAME period (same
  ``started_at``). Inconclusive until ``min_days_by_tier[tier]`` days have passed and the candidate
  closed ``min_trades`` trades; then pass when its net return beats the active slot's (strict),
  else fail. With ``max_days`` set, a test still short of trades at that age fails.

Thresholds are arguments with the defaults below; bad thresholds raise ``ConfigError``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from trading_brain.engine.evolution.cscv import PboResult
from trading_brain.engine.evolution.overfit import deflated_sharpe_ratio
from trading_brain.errors import ConfigError, DataError

GateStatus = Literal["pass", "fail", "inconclusive"]
Metric = float | int | str
MIN_DAYS_BY_TIER: Mapping[int, float] = {1: 1, 2: 2, 3: 7}
DEFAULT_MIN_DSR = 0.95
DEFAULT_MAX_PBO = 0.5
DEFAULT_MIN_DSR_OBS = 30
DEFAULT_MIN_PAPER_TRADES = 5


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict with the numbers behind it."""

    name: str
    status: GateStatus
    metrics: dict[str, Metric] = field(default_factory=dict)
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def as_row(self) -> dict[str, Metric]:
        """``{"gate", "status", "reason", **metrics}`` for a table or storage."""
        return {"gate": self.name, "status": self.status, "reason": self.reason, **self.metrics}


def _threshold(name: str, value: float, lo: float, hi: float) -> None:
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ConfigError(f"{name} must be in [{lo:g}, {hi:g}], got {value!r}")


def oos_edge_gate(candidate_oos: float | None, incumbent_oos: float | None, margin: float, *,
                  metric: str = "sharpe") -> GateResult:
    """Pass when the candidate's out-of-sample score beats the incumbent's by more than margin."""
    _threshold("margin", margin, 0.0, math.inf)
    metrics: dict[str, Metric] = {"metric": metric, "margin": margin}
    if candidate_oos is None or not math.isfinite(candidate_oos):
        return GateResult("oos_edge", "inconclusive", metrics,
                          f"the candidate has no out-of-sample {metric}")
    if incumbent_oos is None or not math.isfinite(incumbent_oos):
        return GateResult("oos_edge", "inconclusive", metrics,
                          f"the incumbent has no out-of-sample {metric}")
    edge = candidate_oos - incumbent_oos
    metrics |= {"candidate": candidate_oos, "incumbent": incumbent_oos, "edge": edge}
    if edge > margin:
        return GateResult("oos_edge", "pass", metrics, f"edge {edge:.4g} > margin {margin:g}")
    return GateResult("oos_edge", "fail", metrics, f"edge {edge:.4g} <= margin {margin:g}")


def dsr_gate(sr: float, *, n_obs: int, n_trials: int, sr_variance: float, skew: float = 0.0,
             kurtosis: float = 3.0, min_dsr: float = DEFAULT_MIN_DSR,
             min_obs: int = DEFAULT_MIN_DSR_OBS) -> GateResult:
    """Deflated Sharpe ratio gate; ``sr`` is per period over ``n_obs`` returns."""
    _threshold("min_dsr", min_dsr, 0.0, 1.0)
    metrics: dict[str, Metric] = {"min_dsr": min_dsr, "min_obs": min_obs, "n_obs": n_obs,
                                  "n_trials": n_trials}
    if n_obs < min_obs:
        return GateResult("dsr", "inconclusive", metrics,
                          f"{n_obs} observations, fewer than the {min_obs} needed")
    try:
        result = deflated_sharpe_ratio(sr, n_obs=n_obs, n_trials=n_trials,
                                       sr_variance=sr_variance, skew=skew, kurtosis=kurtosis)
    except DataError as e:
        return GateResult("dsr", "inconclusive", metrics, f"unusable inputs: {e}")
    metrics |= result.metrics()
    verdict = f"DSR {result.dsr:.4f} (SR {sr:.4g} vs SR0 {result.sr0:.4g}, N={n_trials})"
    if result.dsr >= min_dsr:
        return GateResult("dsr", "pass", metrics, f"{verdict} >= {min_dsr:g}")
    return GateResult("dsr", "fail", metrics, f"{verdict} < {min_dsr:g}")


def pbo_gate(pbo: float | PboResult | None, max_pbo: float = DEFAULT_MAX_PBO) -> GateResult:
    """Probability-of-backtest-overfitting gate: pass when ``pbo <= max_pbo``."""
    _threshold("max_pbo", max_pbo, 0.0, 1.0)
    metrics: dict[str, Metric] = {"max_pbo": max_pbo}
    if isinstance(pbo, PboResult):
        metrics |= pbo.metrics()
        pbo = pbo.pbo
    if pbo is None or not math.isfinite(pbo):
        return GateResult("pbo", "inconclusive", metrics, "no PBO (the sweep had < 2 configs)")
    metrics["pbo"] = pbo
    if pbo <= max_pbo:
        return GateResult("pbo", "pass", metrics, f"PBO {pbo:.3f} <= {max_pbo:g}")
    return GateResult("pbo", "fail", metrics, f"PBO {pbo:.3f} > {max_pbo:g}")


@dataclass(frozen=True)
class PaperStats:
    """A slot's shadow paper results since ``started_at``: closed trades and net return."""

    started_at: datetime
    closed_trades: int
    net_return: float


def paper_test_gate(candidate: PaperStats, active: PaperStats, *, tier: int, now: datetime,
                    min_days_by_tier: Mapping[int, float] = MIN_DAYS_BY_TIER,
                    min_trades: int = DEFAULT_MIN_PAPER_TRADES,
                    max_days: float | None = None) -> GateResult:
    """Shadow paper test verdict of a candidate of ``tier`` against the active slot at ``now``."""
    if tier not in min_days_by_tier:
        raise ConfigError(f"no minimum paper-test duration for tier {tier!r}")
    if candidate.started_at != active.started_at:
        raise DataError("paper test: candidate and active stats must cover the same period")
    if now < candidate.started_at:
        raise DataError("paper test: now is before the test started")
    days = (now - candidate.started_at).total_seconds() / 86_400
    need = min_days_by_tier[tier]
    metrics: dict[str, Metric] = {
        "tier": tier, "days": round(days, 4), "min_days": need,
        "trades": candidate.closed_trades, "min_trades": min_trades,
        "candidate_return": candidate.net_return, "active_return": active.net_return,
        "edge": candidate.net_return - active.net_return,
    }
    short = None
    if days < need:
        short = f"running: {days:.2f} of {need:g} days"
    elif candidate.closed_trades < min_trades:
        short = f"{candidate.closed_trades} of {min_trades} closed trades"
    if short is not None:
        if max_days is not None and days >= max_days:
            return GateResult("paper_test", "fail", metrics, f"{short} after {max_days:g} days")
        return GateResult("paper_test", "inconclusive", metrics, short)
    verdict = f"candidate {candidate.net_return:+.4%} vs active {active.net_return:+.4%}"
    if candidate.net_return > active.net_return:
        return GateResult("paper_test", "pass", metrics, f"{verdict}: beat the active slot")
    return GateResult("paper_test", "fail", metrics, f"{verdict}: did not beat the active slot")
