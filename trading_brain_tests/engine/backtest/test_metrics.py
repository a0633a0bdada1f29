"""Metrics definitions, the JSON shape of a result, the sweep, and input errors."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

from trading_brain.engine.backtest import run_exact, run_fast, run_fast_many, run_fast_portfolio
from trading_brain.engine.backtest.metrics import build_metrics, day_ends, equity_stats
from trading_brain.engine.backtest.sweep import run_sweep
from trading_brain.engine.evolution import returns
from trading_brain.errors import DataError
from trading_brain_tests.engine.backtest.helpers import ema_cross, frame, load_candles, signals

FLAT = (100.0, 101.0, 99.0, 100.0)


DAY = 86_400_000_000  # µs
HOUR = 3_600_000_000


def test_equity_metrics_by_hand():
    # one bar per day: the daily marks are the initial equity (the first bar's, as for
    # total_return) and every bar's close; the first day's return is 0 (no fill before the
    # second bar's open)
    eq = np.array([100.0, 110.0, 99.0, 120.0])
    ends = day_ends(np.arange(4, dtype=np.int64) * DAY)
    assert ends.tolist() == [0, 1, 2, 3]
    r = np.array([0.0, 0.1, -0.1, 120 / 99 - 1])
    m = build_metrics(eq, np.array([5.0, -2.0, 3.0]), fees_paid=1.5, exposure=0.25, ends=ends)
    assert m.total_return == pytest.approx(0.2) and m.final_equity == 120.0
    assert m.max_drawdown == pytest.approx(0.1)
    assert m.sharpe == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(365))
    assert m.sortino == pytest.approx(r.mean() / math.sqrt(0.01 / 4) * math.sqrt(365))
    assert (m.win_rate, m.n_trades, m.profit_factor) == (pytest.approx(2 / 3), 3, 4.0)
    flat = equity_stats(np.full(5, 7.0), day_ends(np.arange(5, dtype=np.int64) * DAY))
    assert flat["sharpe"][0] == 0.0 and flat["sortino"][0] == 0.0 and flat["max_drawdown"][0] == 0.0


def test_sharpe_is_daily_and_annualised_with_sqrt_365():
    """Hourly bars over 3 days and a missing day: the ratios are those of the end-of-day marks
    (``engine.evolution.returns``), not of the per-bar returns."""
    rng = np.random.default_rng(3)
    ts = np.concatenate([np.arange(24) * HOUR + d * DAY for d in (0, 1, 3)]).astype(np.int64)
    eq = 1000.0 * np.cumprod(1 + rng.normal(0, 0.01, ts.size))
    ends = day_ends(ts)
    assert ends.tolist() == [23, 47, 47, 71]  # day 2 has no bars: day 1's mark again
    marks = np.array([eq[0], eq[23], eq[47], eq[47], eq[71]])
    daily = marks[1:] / marks[:-1] - 1
    s = equity_stats(eq, ends)
    assert s["sharpe"][0] == pytest.approx(returns.sharpe_ratio(daily))
    assert s["sharpe"][0] == pytest.approx(daily.mean() / daily.std(ddof=1) * math.sqrt(365))
    assert s["sortino"][0] == pytest.approx(returns.sortino_ratio(daily) or 0.0)
    per_bar = np.diff(eq) / eq[:-1]
    assert s["sharpe"][0] != pytest.approx(per_bar.mean() / per_bar.std(ddof=1)
                                           * math.sqrt(365 * 24))
    one_day = equity_stats(eq[:24], day_ends(ts[:24]))  # one daily return: undefined -> 0
    assert one_day["sharpe"][0] == 0.0 and one_day["sortino"][0] == 0.0
    assert day_ends(ts[:0]).size == 0


def test_to_json_dict_shape_and_utc_times():
    bars = frame([FLAT, FLAT, (100.0, 101.0, 90.0, 95.0), FLAT, FLAT])
    res = run_fast(bars, signals(bars, {0: "enter", 2: "enter"}, stop_loss=0.05))
    d = json.loads(json.dumps(res.to_json_dict()))
    assert set(d) == {"metrics", "trades"}
    assert set(d["metrics"]) == {
        "final_equity",
        "total_return",
        "sharpe",
        "sortino",
        "max_drawdown",
        "win_rate",
        "n_trades",
        "fees_paid",
        "exposure",
        "profit_factor",
    }
    closed, still_open = d["trades"]
    assert (
        closed["entry_time"] == "2024-01-01T00:05:00Z"
        and closed["exit_time"] == "2024-01-01T00:10:00Z"
    )
    assert closed["exit_reason"] == "stop_loss" and still_open["exit_time"] is None
    assert set(closed) == {
        "symbol",
        "entry_time",
        "exit_time",
        "entry_price",
        "exit_price",
        "quantity",
        "pnl",
        "fees",
        "exit_reason",
    }
    assert d["metrics"]["profit_factor"] == 0.0 and d["metrics"]["n_trades"] == 1


def test_sweep_matches_single_runs_and_uses_threads():
    bars = load_candles("binance_ETHUSDT_5m_2024H1.csv.gz", rows=6_000)
    grid = [(f, s) for f in (5, 9, 13) for s in (30, 50)]
    sets = [
        ema_cross(bars, f, s, size=0.2, stop_loss=0.01 * (i % 3 + 1))
        for i, (f, s) in enumerate(grid)
    ]
    one = run_sweep(bars, sets, workers=1)
    two = run_sweep(bars, sets, workers=2)
    assert one["set"].to_list() == list(range(len(sets)))
    assert one.equals(two)
    many = run_fast_many(bars, sets)
    for j in (0, 3, 5):
        row = one.row(j, named=True)
        single = run_fast(bars, sets[j]).metrics
        assert many[j].metrics == single
        for key, val in row.items():
            if key != "set":
                assert val == pytest.approx(getattr(single, key), rel=1e-9, abs=1e-12), key
    assert one["final_equity"].n_unique() == len(sets)


def test_per_bar_sizes_and_stops_are_honoured():
    bars = frame([FLAT] * 8)
    sig = signals(bars, {0: "enter", 2: "exit", 3: "enter", 5: "exit"})
    sig = sig.with_columns(pl.Series("size", [0.5, 1.0, 1.0, 0.25, 1.0, 1.0, 1.0, 1.0]))
    fast, exact = run_fast(bars, sig), run_exact(bars, sig)
    assert fast.trades["quantity"].to_list() == pytest.approx(exact.trades["quantity"].to_list())
    q1, q2 = fast.trades["quantity"].to_list()
    assert q1 == pytest.approx(5000 / 1.0026 / 100.05) and q2 < q1 / 2


def test_bad_inputs_raise_data_error():
    bars = frame([FLAT] * 4)
    with pytest.raises(DataError, match="rows"):
        run_exact(bars, signals(bars, {}).head(3))
    with pytest.raises(DataError):
        run_fast(bars, signals(bars, {}).head(3))
    shifted = signals(bars, {}).with_columns(pl.col("ts").dt.offset_by("1m"))
    with pytest.raises(DataError, match="ts"):
        run_exact(bars, shifted)
    with pytest.raises(DataError):
        run_fast(bars, shifted)
    unsorted = bars.reverse()
    with pytest.raises(DataError, match="sorted"):
        run_fast(unsorted, signals(unsorted, {}))
    other = frame([FLAT] * 4, start="2024-02-01")
    with pytest.raises(DataError, match="same bar times"):
        run_fast_portfolio(
            {"A": bars, "B": other}, {"A": signals(bars, {}), "B": signals(other, {})}
        )


def test_sweep_simulates_a_repeated_frame_once_and_repeats_its_row(monkeypatch):
    from trading_brain.engine.backtest import sweep

    bars = load_candles("binance_ETHUSDT_5m_2024H1.csv.gz", rows=3_000)
    a, b = ema_cross(bars, 5, 30), ema_cross(bars, 9, 50)
    widths = []
    real = sweep.simulate

    def counting(bl, o, *args, **kw):
        widths.append(o.entries.shape[1])
        return real(bl, o, *args, **kw)

    monkeypatch.setattr(sweep, "simulate", counting)
    got = run_sweep(bars, [a, b, a, a], workers=1)
    assert widths == [2]  # two distinct frames, one kernel call
    assert got["set"].to_list() == [0, 1, 2, 3]
    ref = run_sweep(bars, [a, b], workers=1)
    for j, src in enumerate([0, 1, 0, 0]):
        assert got.drop("set").row(j) == ref.drop("set").row(src)


def test_sweep_metrics_equal_single_runs_bit_for_bit():
    """The sweep's per-segment equity is the same arithmetic as run_fast's: equal floats."""
    from dataclasses import asdict

    bars = load_candles("binance_SOLUSDT_5m_2024H1.csv.gz", rows=20_000)
    sets = [ema_cross(bars, 5, 30, size=1.0, stop_loss=0.005, take_profit=0.01),
            ema_cross(bars, 9, 50, size=0.3, stop_loss=None, take_profit=None),
            signals(bars, {}),  # no trade at all
            signals(bars, {10: "enter"})]  # still open at the end
    table = run_sweep(bars, sets, workers=2)
    for j, sig in enumerate(sets):
        row = table.row(j, named=True)
        row.pop("set")
        assert row == asdict(run_fast(bars, sig).metrics), j
