"""Market analysis, version 1: regimes, volatility, signal proximity and droughts, data quality.

Input frames (analyses/README.md): ``candles`` (required; one timeframe, any symbols) and
``signals`` (optional). Per symbol, with n = ``er_window`` bars and the bar length taken from the
median spacing of its timestamps:

- regime of each bar from the Kaufman efficiency ratio ER = |close[t] - close[t-n]| /
  Σ |close[i] - close[i-1]| over the n steps: ``trend_up`` / ``trend_down`` when ER >=
  ``trend_er`` (by the sign of the move), else ``range``; the first n bars have no regime.
  ``regimes`` are the shares of classified bars, ``regime_now`` the last bar's;
- volatility: ``vol_annual`` = sample std of log returns × sqrt(bars per 365 days);
  ``vol_recent_ratio`` = std of the last ``recent_bars`` returns / std of all;
  ``mean_range_pct`` = mean (high - low) / close × 100;
- signal proximity (the EMA-cross family's trigger): gap = (EMA fast - EMA slow) / ATR, EMAs
  with span and adjust=False, ATR = mean true range over ``atr_bars``; ``near_cross_share`` =
  share of bars with |gap| < ``near_cross_atr``; ``gap_now`` the last bar's gap;
- droughts (from ``signals``: rows whose action is not ``hold``): ``signals``, the longest stretch
  without one in hours (from the first to the last candle, the edges included) and
  ``hours_since_signal`` (to the last candle; None without any);
- data quality: ``bars``, ``duplicates`` (repeated timestamps), ``missing`` (bars absent between
  the first and last), ``max_gap_min``, ``zero_volume``, ``flat_bars`` (high == low) and
  ``ohlc_violations`` (high below open/close, low above them, or low > high).

``overall`` averages the regime shares and the volatility over symbols. At most ``max_symbols``
symbols are reported (alphabetically); floats are rounded to 6 decimals, undefined values None.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

ANALYSIS_ID = "market_analysis"
VERSION = 1
REGIMES = ("trend_up", "trend_down", "range")
YEAR_SECONDS = 31536000


class Params(BaseModel):
    """Tunable settings of the analysis."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    er_window: int = Field(48, ge=2, le=2000)
    trend_er: float = Field(0.3, gt=0.0, lt=1.0)
    recent_bars: int = Field(288, ge=2)
    fast: int = Field(9, ge=2, le=200)
    slow: int = Field(21, ge=3, le=400)
    atr_bars: int = Field(14, ge=2, le=400)
    near_cross_atr: float = Field(0.25, gt=0.0)
    max_symbols: int = Field(50, ge=1, le=500)


def num(x: float | None) -> float | None:
    """A JSON-safe float: rounded to 6 decimals, None when undefined."""
    if x is None:
        return None
    v = float(x)
    return round(v, 6) if math.isfinite(v) else None


def regime_expr(n: int, trend_er: float) -> pl.Expr:
    """Per-bar regime label by efficiency ratio (null for the first n bars)."""
    move = pl.col("close") - pl.col("close").shift(n)
    path = pl.col("close").diff().abs().rolling_sum(n)
    er = move.abs() / path
    trend = er >= trend_er
    return (pl.when(move.is_null()).then(None)
            .when(trend & (move > 0)).then(pl.lit("trend_up"))
            .when(trend & (move < 0)).then(pl.lit("trend_down"))
            .otherwise(pl.lit("range")))


def bar_seconds(ts: pl.Series) -> float:
    """Median spacing of the timestamps in seconds (300 when fewer than 2 bars)."""
    if ts.len() < 2:
        return 300.0
    step = ts.sort().diff().dt.total_seconds().drop_nulls().median()
    return float(step) if isinstance(step, int | float) and step > 0 else 300.0


def regimes(bars: pl.DataFrame, p: Params) -> dict:
    labels = bars.select(regime_expr(p.er_window, p.trend_er).alias("r"))["r"].drop_nulls()
    total = labels.len()
    shares = {k: num(float((labels == k).sum()) / total) if total else None for k in REGIMES}
    now = bars.select(regime_expr(p.er_window, p.trend_er).alias("r"))["r"][-1]
    return {"regimes": shares, "regime_now": now}


def volatility(bars: pl.DataFrame, p: Params, step_s: float) -> dict:
    r = bars.select((pl.col("close") / pl.col("close").shift(1)).log().alias("r"))["r"]
    r = r.drop_nulls().drop_nans()
    sd = float(np.std(r.to_numpy(), ddof=1)) if r.len() >= 2 else None
    recent = r.tail(p.recent_bars).to_numpy()
    sd_recent = float(np.std(recent, ddof=1)) if recent.size >= 2 else None
    rng = bars.select(((pl.col("high") - pl.col("low")) / pl.col("close")).mean())
    return {"vol_annual": num(sd * math.sqrt(YEAR_SECONDS / step_s)) if sd is not None else None,
            "vol_recent_ratio": num(sd_recent / sd) if sd and sd_recent is not None else None,
            "mean_range_pct": num(rng.item() * 100) if bars.height else None}


def proximity(bars: pl.DataFrame, p: Params) -> dict:
    prev = pl.col("close").shift(1)
    tr = pl.max_horizontal(pl.col("high") - pl.col("low"), (pl.col("high") - prev).abs(),
                           (pl.col("low") - prev).abs())
    fast = pl.col("close").ewm_mean(span=p.fast, adjust=False)
    slow = pl.col("close").ewm_mean(span=p.slow, adjust=False)
    gap = bars.select(((fast - slow) / tr.rolling_mean(p.atr_bars)).alias("g"))["g"]
    gap = gap.drop_nulls().drop_nans()
    gap = gap.filter(gap.is_finite())
    if gap.len() == 0:
        return {"near_cross_share": None, "gap_now": None}
    near = float((gap.abs() < p.near_cross_atr).sum()) / gap.len()
    return {"near_cross_share": num(near), "gap_now": num(gap[-1])}


def droughts(bars: pl.DataFrame, signals: pl.DataFrame | None, symbol: str) -> dict:
    first, last = bars["ts"].min(), bars["ts"].max()
    times: list = []
    if signals is not None and signals.height:
        times = (signals.filter((pl.col("symbol") == symbol) & (pl.col("action") != "hold"))
                 .sort("bar_time")["bar_time"].to_list())
    edges = [first, *times, last]
    gaps = [(b - a).total_seconds() / 3600 for a, b in zip(edges, edges[1:], strict=False)]
    since = (last - times[-1]).total_seconds() / 3600 if times else None
    return {"signals": len(times), "longest_drought_h": num(max(gaps)) if gaps else None,
            "hours_since_signal": num(since)}


def quality(bars: pl.DataFrame, step_s: float) -> dict:
    secs = np.unique(bars["ts"].dt.epoch("us").to_numpy()) / 1e6
    unique = int(secs.size)
    span = float(secs[-1] - secs[0]) if unique else 0.0
    gaps = np.diff(secs)
    bad = ((pl.col("high") < pl.max_horizontal("open", "close"))
           | (pl.col("low") > pl.min_horizontal("open", "close"))
           | (pl.col("low") > pl.col("high")))
    counts = bars.select(bad.sum().alias("bad"), (pl.col("volume") == 0).sum().alias("zero"),
                         (pl.col("high") == pl.col("low")).sum().alias("flat")).row(0)
    return {"bars": bars.height, "duplicates": bars.height - unique,
            "missing": max(0, int(round(span / step_s)) + 1 - unique) if unique else 0,
            "max_gap_min": num(float(gaps.max()) / 60) if gaps.size else None,
            "zero_volume": int(counts[1]), "flat_bars": int(counts[2]),
            "ohlc_violations": int(counts[0])}


def analyze(frames: dict[str, pl.DataFrame], params: Params) -> dict:
    """The report (see the module docstring); pure and JSON-serialisable."""
    candles = frames["candles"]
    signals = frames.get("signals")
    out: dict = {"analysis_id": ANALYSIS_ID, "version": VERSION, "symbols": {}}
    names = sorted(candles["symbol"].unique().to_list()) if candles.height else []
    for symbol in names[: params.max_symbols]:
        bars = candles.filter(pl.col("symbol") == symbol).sort("ts")
        step_s = bar_seconds(bars["ts"])
        out["symbols"][symbol] = {
            "bar_seconds": step_s, **regimes(bars, params), **volatility(bars, params, step_s),
            **proximity(bars, params), **droughts(bars, signals, symbol),
            "quality": quality(bars, step_s)}
    out["truncated_symbols"] = max(0, len(names) - params.max_symbols)
    reports = list(out["symbols"].values())
    vols = [r["vol_annual"] for r in reports if r["vol_annual"] is not None]
    out["overall"] = {
        "symbols": len(reports),
        "regimes": {k: num(float(np.mean(v))) if v else None for k, v in (
            (k, [r["regimes"][k] for r in reports if r["regimes"][k] is not None])
            for k in REGIMES)},
        "vol_annual_mean": num(float(np.mean(vols))) if vols else None,
        "signals": sum(r["signals"] for r in reports),
    }
    return out
