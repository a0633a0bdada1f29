"""Trade performance, version 1: where the P&L comes from, what fees take, how deep trades dip.

Input frames (analyses/README.md): ``trades`` (required; closed trades) and ``candles``
(optional; the bars the trades were held through). Per trade: ``hold_h`` = exit - entry in
hours, ``hour`` = UTC hour of the entry, ``bucket`` of the hold (``<1h``, ``1-4h``, ``4-24h``,
``>=24h``), ``notional`` = entry_price × quantity, ``ret`` = net_pnl / notional, ``regime`` =
the trade's own column when present and not null, else the efficiency-ratio regime (same rule
as ``market_analysis`` v1, window ``er_window``) of the last bar opened at or before the entry,
else ``unknown``.

- ``by_symbol``, ``by_regime``, ``by_version`` (``family@N``), ``by_hour``, ``by_hold``: per
  group ``trades``, ``wins`` (net > 0), ``win_rate``, ``net_pnl``, ``expectancy`` (mean net),
  ``fees``, ``mean_return``; at most ``max_groups`` groups (most trades first);
- ``fee_drag``: ``fees``, ``gross_pnl``, ``net_pnl``, ``fees_pct_of_gross_profit`` = 100 × fees
  / Σ gross of trades with gross > 0, ``fees_bps_of_notional`` = 10⁴ × fees / Σ notional, and
  ``fee_flipped`` = trades with gross > 0 but net <= 0;
- ``mae``: per trade, over the bars opened in [entry_time, exit_time) of its symbol (a trade
  with no such bar is left out): MAE = max(0, 1 - min(low) / entry_price) and MFE = max(0,
  max(high) / entry_price - 1); reported ``trades`` measured, ``mean``, ``median``, ``p90``
  of MAE, ``mean_winners`` / ``mean_losers`` and ``mfe_mean`` (fractions).

Floats are rounded to 6 decimals; undefined values are None.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

ANALYSIS_ID = "trade_performance"
VERSION = 1
BUCKETS = ((1.0, "<1h"), (4.0, "1-4h"), (24.0, "4-24h"))


class Params(BaseModel):
    """Tunable settings of the analysis."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    er_window: int = Field(48, ge=2, le=2000)
    trend_er: float = Field(0.3, gt=0.0, lt=1.0)
    max_groups: int = Field(50, ge=1, le=500)


def num(x: float | None) -> float | None:
    """A JSON-safe float: rounded to 6 decimals, None when undefined."""
    if x is None:
        return None
    v = float(x)
    return round(v, 6) if math.isfinite(v) else None


def bucket_expr() -> pl.Expr:
    expr = pl.when(pl.col("hold_h") < BUCKETS[0][0]).then(pl.lit(BUCKETS[0][1]))
    for limit, label in BUCKETS[1:]:
        expr = expr.when(pl.col("hold_h") < limit).then(pl.lit(label))
    return expr.otherwise(pl.lit(">=24h"))


def bar_regimes(candles: pl.DataFrame, p: Params) -> pl.DataFrame:
    """``symbol, ts, bar_regime`` by efficiency ratio over ``er_window`` bars."""
    n = p.er_window
    move = pl.col("close") - pl.col("close").shift(n)
    er = move.abs() / pl.col("close").diff().abs().rolling_sum(n)
    label = (pl.when(move.is_null()).then(None)
             .when((er >= p.trend_er) & (move > 0)).then(pl.lit("trend_up"))
             .when((er >= p.trend_er) & (move < 0)).then(pl.lit("trend_down"))
             .otherwise(pl.lit("range")))
    return (candles.sort("symbol", "ts")
            .with_columns(label.over("symbol").alias("bar_regime"))
            .select("symbol", "ts", "bar_regime"))


def prepare(trades: pl.DataFrame, candles: pl.DataFrame | None, p: Params) -> pl.DataFrame:
    t = trades.with_columns(
        ((pl.col("exit_time") - pl.col("entry_time")).dt.total_seconds() / 3600).alias("hold_h"),
        pl.col("entry_time").dt.hour().alias("hour"),
        (pl.col("entry_price") * pl.col("quantity")).alias("notional"),
        (pl.col("strategy_id") + "@" + pl.col("version").cast(pl.String)).alias("ver"),
    ).with_columns(bucket_expr().alias("bucket"),
                   (pl.col("net_pnl") / pl.col("notional")).alias("ret"))
    own = pl.col("regime") if "regime" in t.columns else pl.lit(None, dtype=pl.String)
    if candles is not None and candles.height:
        found = t.sort("entry_time").join_asof(
            bar_regimes(candles, p).sort("ts"), left_on="entry_time", right_on="ts",
            by="symbol", strategy="backward", check_sortedness=False)
        t = found.with_columns(pl.coalesce(own, pl.col("bar_regime"), pl.lit("unknown"))
                               .alias("regime_at_entry"))
    else:
        t = t.with_columns(pl.coalesce(own, pl.lit("unknown")).alias("regime_at_entry"))
    return t.sort("exit_time", "entry_time")


def grouped(t: pl.DataFrame, key: str, limit: int) -> dict:
    g = (t.group_by(key).agg(
        pl.len().alias("trades"), (pl.col("net_pnl") > 0).sum().alias("wins"),
        pl.col("net_pnl").sum().alias("net_pnl"), pl.col("net_pnl").mean().alias("expectancy"),
        pl.col("fees").sum().alias("fees"), pl.col("ret").mean().alias("mean_return"))
        .sort(["trades", key], descending=[True, False]).head(limit))
    out: dict = {}
    for r in g.to_dicts():
        out[str(r[key])] = {"trades": int(r["trades"]), "wins": int(r["wins"]),
                            "win_rate": num(r["wins"] / r["trades"]),
                            "net_pnl": num(r["net_pnl"]), "expectancy": num(r["expectancy"]),
                            "fees": num(r["fees"]), "mean_return": num(r["mean_return"])}
    return out


def fee_drag(t: pl.DataFrame) -> dict:
    fees, gross = float(t["fees"].sum()), float(t["gross_pnl"].sum())
    profit = float(t.filter(pl.col("gross_pnl") > 0)["gross_pnl"].sum())
    notional = float(t["notional"].sum())
    flipped = t.filter((pl.col("gross_pnl") > 0) & (pl.col("net_pnl") <= 0)).height
    return {"fees": num(fees), "gross_pnl": num(gross), "net_pnl": num(float(t["net_pnl"].sum())),
            "fees_pct_of_gross_profit": num(100 * fees / profit) if profit > 0 else None,
            "fees_bps_of_notional": num(1e4 * fees / notional) if notional > 0 else None,
            "fee_flipped": flipped}


def excursions(t: pl.DataFrame, candles: pl.DataFrame | None) -> dict:
    mae: list[float] = []
    mfe: list[float] = []
    won: list[bool] = []
    if candles is not None and candles.height:
        by_symbol = {s: c.sort("ts") for (s,), c in candles.group_by("symbol")}
        for r in t.select("symbol", "entry_time", "exit_time", "entry_price",
                          "net_pnl").iter_rows():
            bars = by_symbol.get(r[0])
            if bars is None or r[3] is None or r[3] <= 0:
                continue
            held = bars.filter((pl.col("ts") >= r[1]) & (pl.col("ts") < r[2]))
            if held.height == 0:
                continue
            mae.append(max(0.0, 1 - float(held["low"].to_numpy().min()) / r[3]))
            mfe.append(max(0.0, float(held["high"].to_numpy().max()) / r[3] - 1))
            won.append(r[4] > 0)
    arr, wins = np.array(mae), np.array(won, dtype=bool)
    return {"trades": len(mae),
            "mean": num(float(arr.mean())) if mae else None,
            "median": num(float(np.median(arr))) if mae else None,
            "p90": num(float(np.quantile(arr, 0.9))) if mae else None,
            "mean_winners": num(float(arr[wins].mean())) if wins.any() else None,
            "mean_losers": num(float(arr[~wins].mean())) if (~wins).any() else None,
            "mfe_mean": num(float(np.mean(mfe))) if mfe else None}


def analyze(frames: dict[str, pl.DataFrame], params: Params) -> dict:
    """The report (see the module docstring); pure and JSON-serialisable."""
    candles = frames.get("candles")
    t = prepare(frames["trades"], candles, params)
    k = params.max_groups
    return {"analysis_id": ANALYSIS_ID, "version": VERSION, "trades": t.height,
            "by_symbol": grouped(t, "symbol", k), "by_regime": grouped(t, "regime_at_entry", k),
            "by_version": grouped(t, "ver", k), "by_hour": grouped(t, "hour", k),
            "by_hold": grouped(t, "bucket", k), "fee_drag": fee_drag(t),
            "mae": excursions(t, candles)}
