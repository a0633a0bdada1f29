"""analyses/market_analysis/v1.py on hand-built frames with hand-computed answers."""

from __future__ import annotations

import json
import math
import statistics

import polars as pl
import pytest

from trading_brain_tests.analyses.helpers import FIVE, T0, TS, candles, load

M = load("market_analysis")
P = M.Params(er_window=4, recent_bars=10)


def ema_loop(x: list[float], n: int) -> list[float]:
    alpha, out = 2.0 / (n + 1), [x[0]]
    for v in x[1:]:
        out.append(out[-1] + alpha * (v - out[-1]))
    return out


def _frames() -> dict[str, pl.DataFrame]:
    rising = candles("A/USD", [float(i) for i in range(1, 31)])
    zigzag = candles("B/USD", [10.0 if i % 2 == 0 else 11.0 for i in range(30)])
    c = candles("C/USD", [float(100 + i) for i in range(10)]).with_columns(
        (pl.col("close") + 1).alias("high"), (pl.col("close") - 1).alias("low"))
    c = c.with_columns(
        pl.when(pl.int_range(pl.len()) == 8).then(pl.col("close") - 0.5).otherwise("high")
        .alias("high"),
        pl.when(pl.int_range(pl.len()) == 7).then(0.0).otherwise("volume").alias("volume"))
    c = pl.concat([c.filter(pl.int_range(pl.len()) != 3), c.slice(5, 1)])  # a gap, a duplicate
    signals = pl.DataFrame({
        "symbol": ["A/USD"] * 3, "bar_time": [T0 + 10 * FIVE, T0 + 20 * FIVE, T0 + 25 * FIVE],
        "action": ["enter", "exit", "hold"]}).with_columns(pl.col("bar_time").cast(TS))
    return {"candles": pl.concat([rising, zigzag, c]), "signals": signals}


def test_regimes_volatility_and_droughts():
    report = M.analyze(_frames(), P)
    a, b = report["symbols"]["A/USD"], report["symbols"]["B/USD"]
    assert a["regimes"] == {"trend_up": 1.0, "trend_down": 0.0, "range": 0.0}
    assert a["regime_now"] == "trend_up" and b["regime_now"] == "range"
    assert b["regimes"] == {"trend_up": 0.0, "trend_down": 0.0, "range": 1.0}
    r = [math.log(11 / 10) if i % 2 == 0 else math.log(10 / 11) for i in range(29)]
    sd = statistics.stdev(r)
    assert b["vol_annual"] == pytest.approx(sd * math.sqrt(365 * 288), abs=1e-6)
    assert b["vol_recent_ratio"] == pytest.approx(statistics.stdev(r[-10:]) / sd, abs=1e-6)
    assert b["mean_range_pct"] == 0 and b["bar_seconds"] == 300
    # non-hold signals at bars 10 and 20 of bars 0..29: gaps 50, 50, 45 minutes
    assert (a["signals"], a["longest_drought_h"], a["hours_since_signal"]) == (
        2, pytest.approx(50 / 60, abs=1e-6), 0.75)
    assert (b["signals"], b["longest_drought_h"], b["hours_since_signal"]) == (
        0, pytest.approx(29 * 5 / 60, abs=1e-6), None)
    assert report["overall"]["signals"] == 2 and report["overall"]["symbols"] == 3
    assert report["overall"]["regimes"]["range"] == pytest.approx((0 + 1 + b_c(report)) / 3,
                                                                  abs=1e-6)


def b_c(report: dict) -> float:
    return report["symbols"]["C/USD"]["regimes"]["range"]


def test_proximity_matches_a_hand_loop():
    closes = [float(i) for i in range(1, 31)]
    report = M.analyze({"candles": candles("A/USD", closes)}, P)
    fast, slow = ema_loop(closes, 9), ema_loop(closes, 21)
    tr = [0.0] + [1.0] * 29  # high = low = close: the true range is the step from the close
    gaps = [(fast[i] - slow[i]) / (sum(tr[i - 13:i + 1]) / 14) for i in range(13, 30)]
    a = report["symbols"]["A/USD"]
    assert a["gap_now"] == pytest.approx(gaps[-1], abs=1e-6)
    assert a["near_cross_share"] == pytest.approx(sum(abs(g) < 0.25 for g in gaps) / len(gaps),
                                                  abs=1e-6)


def test_data_quality_counts():
    q = M.analyze(_frames(), P)["symbols"]["C/USD"]["quality"]
    assert q == {"bars": 10, "duplicates": 1, "missing": 1, "max_gap_min": 10.0,
                 "zero_volume": 1, "flat_bars": 0, "ohlc_violations": 1}


def test_bounded_and_json_ready_and_empty_input():
    report = M.analyze(_frames(), M.Params(er_window=4, max_symbols=2))
    assert list(report["symbols"]) == ["A/USD", "B/USD"] and report["truncated_symbols"] == 1
    assert json.loads(json.dumps(report, allow_nan=False)) == report
    empty = M.analyze({"candles": candles("A/USD", [])}, P)
    assert empty["symbols"] == {} and empty["overall"]["vol_annual_mean"] is None
    one = M.analyze({"candles": candles("A/USD", [5.0])}, P)["symbols"]["A/USD"]
    assert one["vol_annual"] is None and one["regime_now"] is None
    assert one["quality"]["bars"] == 1 and one["quality"]["missing"] == 0
