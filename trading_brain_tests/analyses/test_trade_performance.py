"""analyses/trade_performance/v1.py on hand-built trades with hand-computed answers."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from trading_brain_tests.analyses.helpers import T0, TS, candles, load

M = load("trade_performance")
H = timedelta(hours=1)


def _trades() -> pl.DataFrame:
    return pl.DataFrame({
        "position_id": ["t1", "t2", "t3"], "slot": ["active"] * 3,
        "strategy_id": ["a", "a", "a"], "version": [1, 2, 1],
        "symbol": ["X/USD", "X/USD", "Y/USD"],
        "entry_time": [T0, T0 + H, T0 + 2 * H],
        "exit_time": [T0 + H / 2, T0 + 3 * H, T0 + 27 * H],
        "entry_price": [100.0, 100.0, 50.0], "exit_price": [103.0, 98.0, 50.4],
        "quantity": [2.0, 1.0, 4.0], "net_pnl": [5.0, -3.0, -0.5],
        "gross_pnl": [6.0, -2.0, 1.5], "fees": [1.0, 1.0, 2.0],
        "exit_reason": ["signal", "stop_loss", "signal"],
        "regime": ["trend_up", None, None],
    }).with_columns(pl.col("entry_time", "exit_time").cast(TS))


def _candles() -> pl.DataFrame:
    x = candles("X/USD", [100.0] * 49)  # 00:00 .. 04:00, flat closes: regime "range"
    i = pl.int_range(pl.len())
    return x.with_columns(
        pl.when(i == 2).then(97.0).when(i == 14).then(98.0).when(i == 30).then(90.0)
        .otherwise("low").alias("low"),  # 00:10 in t1, 01:10 in t2, 02:30 in t2
        pl.when(i == 3).then(104.0).when(i == 20).then(101.0).when(i == 36).then(120.0)
        .otherwise("high").alias("high"))  # 03:00 (i == 36) is after t2's exit: not held


def test_groups_fee_drag_and_excursions():
    report = M.analyze({"trades": _trades(), "candles": _candles()}, M.Params(er_window=4))
    assert report["trades"] == 3
    x, y = report["by_symbol"]["X/USD"], report["by_symbol"]["Y/USD"]
    assert x == {"trades": 2, "wins": 1, "win_rate": 0.5, "net_pnl": 2.0, "expectancy": 1.0,
                 "fees": 2.0, "mean_return": pytest.approx((5 / 200 - 3 / 100) / 2)}
    assert (y["trades"], y["wins"], y["mean_return"]) == (1, 0, -0.5 / 200)
    assert {k: v["trades"] for k, v in report["by_regime"].items()} == {
        "trend_up": 1, "range": 1, "unknown": 1}  # own label, from the bars, no bars for Y
    assert {k: v["trades"] for k, v in report["by_version"].items()} == {"a@1": 2, "a@2": 1}
    assert {k: v["net_pnl"] for k, v in report["by_hour"].items()} == {
        "0": 5.0, "1": -3.0, "2": -0.5}
    assert {k: v["trades"] for k, v in report["by_hold"].items()} == {
        "<1h": 1, "1-4h": 1, ">=24h": 1}
    assert report["fee_drag"] == {
        "fees": 4.0, "gross_pnl": 5.5, "net_pnl": 1.5,
        "fees_pct_of_gross_profit": pytest.approx(400 / 7.5, abs=1e-6),
        "fees_bps_of_notional": 80.0, "fee_flipped": 1}
    # t1 dips to 97 and peaks 104; t2 dips to 90 (02:30) and peaks 101; Y has no bars
    assert report["mae"] == {
        "trades": 2, "mean": pytest.approx(0.065), "median": pytest.approx(0.065),
        "p90": pytest.approx(float(np.quantile([0.03, 0.1], 0.9))),
        "mean_winners": pytest.approx(0.03), "mean_losers": pytest.approx(0.1),
        "mfe_mean": pytest.approx(0.025)}
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_no_candles_no_trades_and_the_group_cap():
    report = M.analyze({"trades": _trades()}, M.Params(max_groups=1))
    assert report["mae"]["trades"] == 0 and report["mae"]["mean"] is None
    assert report["by_regime"] == {"unknown": {
        "trades": 2, "wins": 0, "win_rate": 0.0, "net_pnl": -3.5, "expectancy": -1.75,
        "fees": 3.0, "mean_return": pytest.approx((-3 / 100 - 0.5 / 200) / 2)}}
    assert list(report["by_symbol"]) == ["X/USD"]  # most trades first
    empty = M.analyze({"trades": _trades().clear(), "candles": _candles()}, M.Params())
    assert empty["trades"] == 0 and empty["by_symbol"] == {}
    assert empty["fee_drag"]["fees_pct_of_gross_profit"] is None
