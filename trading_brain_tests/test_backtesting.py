"""The backtest/optimise service: input checks, gap rule, engines, sweep, ranking, walk-forward."""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from trading_brain.app.research import backtest as bt
from trading_brain.app.research import optimize as opt
from trading_brain.engine.backtest import run_exact_portfolio, run_fast, run_fast_portfolio
from trading_brain.errors import ConfigError, DataError
from trading_brain_tests.conftest import SHARED_DATA, make_candles, require_shared
from trading_brain_tests.engine.backtest.helpers import assert_same_trades, ema_cross

SCHEMA = {"properties": {
    "fast": {"type": "integer", "minimum": 2, "maximum": 50},
    "size": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    "mode": {"type": "string", "enum": ["a", "b"]},
    "flag": {"type": "boolean"},
}}


def bars(symbol: str = "BTC/USD", n: int = 3000, seed: int = 1) -> pl.DataFrame:
    return make_candles(symbol, "5m", n=n, seed=seed).select("ts", "open", "high", "low", "close",
                                                             "volume")


def sets_for(b: pl.DataFrame, combos: list[tuple[int, int]]) -> list[pl.DataFrame]:
    return [ema_cross(b, f, s, 0.5, 0.01, 0.02) for f, s in combos]


# --- inputs ---------------------------------------------------------------------------------
def test_one_line_collapses_pydantic_reports():
    text = ("invalid params: 1 validation error for Params\nbogus\n  Extra inputs are not "
            "permitted [type=extra_forbidden]\n    For further information visit https://x\n")
    line = bt.one_line(text)
    assert "\n" not in line and "bogus" in line and "For further" not in line


@pytest.mark.parametrize("text, needle", [("{bad", "not valid JSON"), ("[1, 2]", "JSON object"),
                                          ('"x"', "JSON object")])
def test_json_object_rejects(text, needle):
    with pytest.raises(ConfigError, match=needle):
        bt.json_object(text, "--params")


def test_json_object_and_time_parsing():
    assert bt.json_object('{"fast": 5}', "--params") == {"fast": 5}
    assert bt.json_object(None, "--params") == {}
    assert bt.parse_time("2024-01-02", "--start") == datetime(2024, 1, 2, tzinfo=UTC)
    assert bt.parse_time("2024-01-02T03:00:00+01:00", "--end") == datetime(2024, 1, 2, 2,
                                                                          tzinfo=UTC)
    assert bt.parse_time("2024-01-02T03:00:00Z", "--end").hour == 3
    with pytest.raises(ConfigError, match="--start must be an ISO-8601"):
        bt.parse_time("yesterday", "--start")


@pytest.mark.parametrize("params, needle", [
    ({"bogus": 1}, "unknown parameter 'bogus'"),
    ({"fast": "x"}, "'fast'.*not an integer"),
    ({"fast": 2.5}, "'fast'.*not an integer"),
    ({"fast": True}, "'fast'.*not an integer"),
    ({"fast": 51}, "'fast'.*maximum 50"),
    ({"size": 0}, "'size'.*exclusiveMinimum"),
    ({"size": float("nan")}, "'size'.*finite"),
    ({"mode": "c"}, "'mode'.*not one of"),
    ({"flag": 1}, "'flag'.*true/false"),
])
def test_check_params_names_the_bad_key(params, needle):
    with pytest.raises(ConfigError, match=needle):
        bt.check_params(params, SCHEMA, "x@1")


def test_check_params_accepts_valid_values():
    bt.check_params({"fast": 50, "size": 1, "mode": "b", "flag": False}, SCHEMA, "x@1")
    bt.check_params({"fast": 7.0}, SCHEMA, "x@1")  # an integral float is an integer


def test_grid_sets_is_the_cartesian_product_over_defaults():
    sets = opt.grid_sets({"fast": [5, 9], "slow": [21, 30, 50]},
                         {"fast": 9, "slow": 21, "sl": 0.02})
    assert len(sets) == 6 and all(s["sl"] == 0.02 for s in sets)
    assert {(s["fast"], s["slow"]) for s in sets} == {(f, s) for f in (5, 9) for s in (21, 30, 50)}
    assert sets[0] == {"fast": 5, "slow": 21, "sl": 0.02}
    for grid in ({}, {"fast": []}, {"fast": 5}):
        with pytest.raises(ConfigError):
            opt.grid_sets(grid, {})


def test_costs_are_validated():
    assert bt.Costs().fee == 0.0026
    for kwargs in ({"cash": 0}, {"cash": float("inf")}, {"fee": -0.1}, {"slippage": 0.7}):
        with pytest.raises(ConfigError):
            bt.Costs(**kwargs)


# --- gaps ----------------------------------------------------------------------------------------
def with_gaps(n_gaps: int, gap_bars: int, n: int = 2000) -> pl.DataFrame:
    b = bars(n=n)
    drop = np.zeros(n, dtype=bool)
    for k in range(n_gaps):
        start = 100 + k * (gap_bars + 50)
        drop[start:start + gap_bars] = True
    return b.filter(~pl.Series(drop))


def test_small_venue_gaps_pass():
    bt.check_gaps({"A/USD": with_gaps(20, 12, n=10_000)})  # twenty one-hour holes in 5m data
    bt.check_gaps({"A/USD": with_gaps(3, 300, n=20_000)})  # three day-long outages


def test_gap_ridden_data_is_refused_with_the_count():
    with pytest.raises(DataError, match=r"A/USD: data has 4 gaps larger than 288 bars"):
        bt.check_gaps({"A/USD": with_gaps(4, 300, n=20_000)})
    with pytest.raises(DataError, match="misses 6.0% of its bars in 10 gaps"):  # holes add up
        bt.check_gaps({"A/USD": with_gaps(10, 12, n=2000)})
    with pytest.raises(DataError, match="needs at least 2"):
        bt.check_gaps({"A/USD": bars(n=1)})
    assert bt.large_gap_bars(86_400e6) == 3 and bt.large_gap_bars(3600e6) == 24


def test_real_kraken_hourly_export_gap_rule():
    path = SHARED_DATA / "candles" / "kraken_XBTUSD_1h_2013-2023.csv.gz"
    require_shared(path)
    from trading_brain.app.research.register import load_bars

    real = load_bars([str(path)])
    with pytest.raises(DataError, match="gaps larger than 24 bars"):  # pre-2017 history
        bt.check_gaps(real)
    bt.check_gaps(bt.window(real, datetime(2019, 1, 1, tzinfo=UTC), None))  # recent: fine


def test_window_drops_symbols_without_bars():
    b = {"A/USD": bars(n=100), "B/USD": bars("B/USD", n=10)}
    cut = b["A/USD"]["ts"][50]
    out = bt.window(b, cut, None)
    assert list(out) == ["A/USD"] and out["A/USD"]["ts"].min() == cut
    with pytest.raises(DataError):
        bt.window(b, datetime(2030, 1, 1, tzinfo=UTC), None)


# --- engines, records ---------------------------------------------------------------------------
def test_engines_agree_and_share_cash_across_symbols():
    data = {"BTC/USD": bars(seed=1), "ETH/USD": bars("ETH/USD", seed=2)}
    sig = {s: ema_cross(b, 5, 20, 0.5, 0.01, 0.02) for s, b in data.items()}
    costs = bt.Costs(5000, 0.001, 0.0002)
    fast = bt.run_backtest(data, sig, "fast", costs)
    exact = bt.run_backtest(data, sig, "exact", costs)
    assert_same_trades(fast.trades, exact.trades)
    assert set(fast.trades["symbol"]) == {"BTC/USD", "ETH/USD"}
    ref = run_exact_portfolio(data, sig, 5000, 0.001, 0.0002)
    assert exact.metrics == ref.metrics
    with pytest.raises(ConfigError):
        bt.run_backtest(data, sig, "slow", costs)


def test_fast_engine_refuses_misaligned_symbols():
    data = {"BTC/USD": bars(n=500), "ETH/USD": bars("ETH/USD", n=400)}
    sig = {s: ema_cross(b, 5, 20) for s, b in data.items()}
    with pytest.raises(DataError, match="--engine exact"):
        bt.run_backtest(data, sig, "fast", bt.Costs())
    assert bt.run_backtest(data, sig, "exact", bt.Costs()).metrics.final_equity > 0


def test_backtest_json_and_record(store):
    data = {"BTC/USD": bars()}
    sig = {"BTC/USD": ema_cross(data["BTC/USD"], 5, 20, 0.5, 0.01, 0.02)}
    costs = bt.Costs()
    res = bt.run_backtest(data, sig, "exact", costs)
    out = bt.backtest_json("x@3", "exact", {"fast": 5}, res)
    assert list(out) == ["strategy", "engine", "params", "metrics", "trades"]
    assert list(out["metrics"]) == list(bt.METRIC_KEYS)
    row, trades = bt.backtest_record(out, res, "abc", data, costs)
    assert (row["strategy_id"], row["version"], len(trades)) == ("x", 3, res.trades.height)
    store.save_backtest(row, trades)
    got = store.execute("SELECT strategy_id, version, engine FROM backtests")
    n = store.execute("SELECT count(*) FROM backtest_trades")[0][0]
    assert got == [("x", 3, "exact")] and n == res.trades.height
    again, _ = bt.backtest_record(out, res, "abc", data, costs)
    assert again["backtest_id"] == row["backtest_id"]
    other = {**out, "params": {"fast": 6}}
    other_id = bt.backtest_record(other, res, "abc", data, costs)[0]["backtest_id"]
    assert other_id != row["backtest_id"]
    moved = {"BTC/USD": data["BTC/USD"].with_columns(pl.col("close") * 1.0001)}
    assert bt.backtest_record(out, res, "abc", moved, costs)[0]["backtest_id"] != row["backtest_id"]


def test_json_metrics_nulls_non_finite():
    m = {k: 1.0 for k in bt.METRIC_KEYS} | {"profit_factor": math.inf, "n_trades": 3.0}
    out = bt.json_metrics(m)
    assert out["profit_factor"] is None and out["n_trades"] == 3
    assert isinstance(out["n_trades"], int)


# --- optimise ------------------------------------------------------------------------------------
COMBOS = [(5, 20), (8, 30), (12, 40), (3, 10)]


def test_sweep_matches_single_runs():
    b = bars()
    sets = sets_for(b, COMBOS)
    got = opt.sweep({"BTC/USD": b}, [{"BTC/USD": s} for s in sets], bt.Costs())
    for m, s in zip(got, sets, strict=True):
        ref = asdict(run_fast(b, s).metrics)
        assert m["n_trades"] == ref["n_trades"]
        assert m["final_equity"] == pytest.approx(ref["final_equity"], rel=1e-9)
        assert m["sharpe"] == pytest.approx(ref["sharpe"], rel=1e-9, abs=1e-12)


def test_sweep_of_several_symbols_shares_cash():
    data = {"BTC/USD": bars(seed=3), "ETH/USD": bars("ETH/USD", seed=4)}
    signal_sets = [{s: ema_cross(b, f, sl, 0.5) for s, b in data.items()} for f, sl in COMBOS[:2]]
    got = opt.sweep(data, signal_sets, bt.Costs())
    for m, sig in zip(got, signal_sets, strict=True):
        assert m == asdict(run_fast_portfolio(data, sig).metrics)


def test_ranking_best_first_nan_last_drawdown_lower_is_better():
    rows = [{"sharpe": 1.0, "max_drawdown": 0.3}, {"sharpe": math.nan, "max_drawdown": 0.1},
            {"sharpe": 2.0, "max_drawdown": 0.2}, {"sharpe": 2.0, "max_drawdown": 0.5}]
    assert opt.ranking(rows, "sharpe") == [2, 3, 0, 1]
    assert opt.ranking(rows, "max_drawdown") == [1, 2, 0, 3]
    with pytest.raises(ConfigError, match="unknown objective"):
        opt.ranking(rows, "luck")


@pytest.mark.parametrize("folds", [1, 3])
def test_walk_forward_fits_in_sample_and_scores_out_of_sample(folds):
    b = bars(n=4000, seed=5)
    sets = sets_for(b, COMBOS)
    params = [{"fast": f, "slow": s} for f, s in COMBOS]
    wf = opt.walk_forward({"BTC/USD": b}, [{"BTC/USD": s} for s in sets], params, bt.Costs(),
                         "total_return", train=0.6, folds=folds)
    assert wf["objective"] == "total_return" and len(wf["folds"]) == folds
    cut = int(4000 * 0.6)
    assert wf["folds"][0]["train"]["bars"] == cut
    assert sum(f["test"]["bars"] for f in wf["folds"]) == 4000 - cut
    for f in wf["folds"]:
        t0 = datetime.fromisoformat(f["test"]["start"].replace("Z", "+00:00"))
        t1 = datetime.fromisoformat(f["test"]["end"].replace("Z", "+00:00")) + timedelta(minutes=5)
        train = b.filter(pl.col("ts") < t0)
        test = b.filter((pl.col("ts") >= t0) & (pl.col("ts") < t1))
        ins = [run_fast(train, s.filter(pl.col("ts") < t0)).metrics.total_return for s in sets]
        best = int(np.argmax(ins))
        assert f["best_params"] == params[best]
        assert f["in_sample"]["total_return"] == pytest.approx(ins[best], rel=1e-9)
        oos = run_fast(test, sets[best].filter(pl.col("ts").is_in(test["ts"].implode())))
        assert f["out_of_sample"]["total_return"] == pytest.approx(oos.metrics.total_return,
                                                                   rel=1e-9, abs=1e-12)
    gaps = [f["in_sample"]["total_return"] - f["out_of_sample"]["total_return"]
            for f in wf["folds"]]
    assert wf["gap"] == pytest.approx(float(np.mean(gaps)))


def test_walk_forward_rejects_bad_settings():
    b = bars(n=50)
    one = [{"BTC/USD": ema_cross(b, 3, 10)}]
    with pytest.raises(ConfigError):
        opt.walk_forward({"BTC/USD": b}, one, [{}], bt.Costs(), "sharpe", train=0.95)
    with pytest.raises(DataError, match="too few bars"):
        opt.walk_forward({"BTC/USD": b}, one, [{}], bt.Costs(), "sharpe", folds=20)
