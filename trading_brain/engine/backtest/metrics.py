"""Backtest metrics and the ``BacktestResult`` both engines return.

Definitions (equity sampled at each bar's close; ``r`` = bar-to-bar simple returns):

- ``total_return`` = final / initial equity - 1; ``max_drawdown`` = max(1 - equity/running peak),
  a positive fraction (0.25 = -25 %).
- ``sharpe`` = mean(r) / std(r, ddof=1) * sqrt(bars_per_year); ``sortino`` = mean(r) /
  sqrt(mean(min(r, 0)^2)) * sqrt(bars_per_year). Markets trade 24/7, so ``bars_per_year`` =
  365.25 days / the median bar spacing (105,192 for 5m bars). Zero dispersion gives 0.
- ``win_rate``, ``profit_factor`` (gross profit / gross loss; inf when there is no loss, 0 with no
  trades) and ``n_trades`` count *closed* trades; ``fees_paid`` sums every fill's fee (open
  positions included); ``exposure`` = fraction of bars ending with an open position.

Everything is vectorised over columns so a sweep computes metrics for many runs at once.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

YEAR_SECONDS = 365.25 * 86400
TRADE_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "entry_time": pl.Datetime("us", "UTC"),
    "exit_time": pl.Datetime("us", "UTC"),
    "entry_price": pl.Float64(),
    "exit_price": pl.Float64(),
    "quantity": pl.Float64(),
    "pnl": pl.Float64(),
    "fees": pl.Float64(),
    "exit_reason": pl.String(),
}


@dataclass(frozen=True, slots=True)
class Metrics:
    """Summary figures of one backtest (see the module docstring for definitions)."""

    final_equity: float
    total_return: float
    sharpe: float
    sortino: float
    max_drawdown: float
    win_rate: float
    n_trades: int
    fees_paid: float
    exposure: float
    profit_factor: float


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """Metrics, trades (``TRADE_SCHEMA``; open positions have null exit_time) and the equity curve.

    ``equity`` has columns ``ts`` (UTC) and ``equity``; ``rejections`` counts entries the venue
    would have refused (lot rounding, ordermin, costmin) when a pair was given.
    """

    metrics: Metrics
    trades: pl.DataFrame
    equity: pl.DataFrame
    rejections: int = 0

    def closed_trades(self) -> pl.DataFrame:
        """Trades with an exit."""
        return self.trades.filter(pl.col("exit_time").is_not_null())

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict: metrics (non-finite -> None) and trades with ISO-8601 UTC times."""
        metrics = {k: _json_num(v) for k, v in asdict(self.metrics).items()}
        trades = [
            {k: _json_val(v) for k, v in row.items()} for row in self.trades.iter_rows(named=True)
        ]
        return {"metrics": metrics, "trades": trades}


def _json_num(v: float | int) -> float | int | None:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _json_val(v: object) -> object:
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(v, float):
        return _json_num(v)
    return v


def bars_per_year(ts_us: np.ndarray) -> float:
    """Bars per year from the median spacing of open times in microseconds (1.0 if unknown)."""
    if len(ts_us) < 2:
        return 1.0
    step = float(np.median(np.diff(ts_us.astype(np.int64)))) / 1e6
    return YEAR_SECONDS / step if step > 0 else 1.0


def equity_stats(equity: np.ndarray, periods: float) -> dict[str, np.ndarray]:
    """Return-based metrics for each column of ``equity`` (n bars x k runs)."""
    eq = np.asarray(equity, dtype=np.float64)
    if eq.ndim == 1:
        eq = eq[:, None]
    r = np.diff(eq, axis=0) if eq.shape[0] > 1 else np.zeros((0, eq.shape[1]))
    r /= eq[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = r.mean(axis=0) if r.shape[0] else np.zeros(eq.shape[1])
        std = r.std(axis=0, ddof=1) if r.shape[0] > 1 else np.zeros(eq.shape[1])
        np.minimum(r, 0.0, out=r)
        down = np.sqrt(np.einsum("ij,ij->j", r, r) / r.shape[0]) if r.shape[0] else std
        scale = math.sqrt(periods)
        sharpe = np.where(std > 0, mean / std * scale, 0.0)
        sortino = np.where(down > 0, mean / down * scale, 0.0)
        peak = np.maximum.accumulate(eq, axis=0)
        np.divide(eq, peak, out=peak)
        mdd = 1.0 - np.nanmin(peak, axis=0)
    return {
        "final_equity": eq[-1],
        "total_return": eq[-1] / eq[0] - 1.0,
        "sharpe": sharpe,
        "sortino": sortino,
        "max_drawdown": mdd,
    }


def trade_stats(pnl: np.ndarray) -> tuple[float, float]:
    """(win_rate, profit_factor) of closed-trade P&Ls."""
    if len(pnl) == 0:
        return 0.0, 0.0
    gain = float(pnl[pnl > 0].sum())
    loss = float(-pnl[pnl < 0].sum())
    pf = gain / loss if loss > 0 else (math.inf if gain > 0 else 0.0)
    return float((pnl > 0).mean()), pf


def build_metrics(
    equity: np.ndarray, closed_pnl: np.ndarray, fees_paid: float, exposure: float, periods: float
) -> Metrics:
    """Metrics of one run from its equity curve and its closed trades' P&L."""
    s = equity_stats(equity, periods)
    win_rate, pf = trade_stats(np.asarray(closed_pnl, dtype=np.float64))
    return Metrics(
        final_equity=float(s["final_equity"][0]),
        total_return=float(s["total_return"][0]),
        sharpe=float(s["sharpe"][0]),
        sortino=float(s["sortino"][0]),
        max_drawdown=float(s["max_drawdown"][0]),
        win_rate=win_rate,
        n_trades=len(closed_pnl),
        fees_paid=float(fees_paid),
        exposure=float(exposure),
        profit_factor=pf,
    )


def make_result(
    ts_us: np.ndarray,
    equity: np.ndarray,
    trades: pl.DataFrame,
    fees_paid: float,
    exposure: float,
    rejections: int = 0,
) -> BacktestResult:
    """Assemble a ``BacktestResult`` from an equity curve (per bar) and a trades frame."""
    if trades.schema != pl.Schema(TRADE_SCHEMA):
        trades = trades.select([pl.col(c).cast(t) for c, t in TRADE_SCHEMA.items()])
    if trades["symbol"].n_unique() > 1:
        trades = trades.sort("entry_time", "symbol", maintain_order=True)
    closed = trades.filter(pl.col("exit_time").is_not_null())["pnl"].to_numpy()
    metrics = build_metrics(equity, closed, fees_paid, exposure, bars_per_year(ts_us))
    curve = pl.DataFrame(
        {"ts": pl.Series(ts_us, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")), "equity": equity}
    )
    return BacktestResult(metrics=metrics, trades=trades, equity=curve, rejections=rejections)
