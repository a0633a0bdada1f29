"""`trading-brain backtest` / `optimize` as users run them: JSON shapes, engines, errors, storage.

A few runs go through the installed console script (subprocess); the rest call the same
``cli.main`` in-process (argv patched) so one-line errors and exit codes are the real ones.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from trading_brain.app.research.backtest import METRIC_KEYS
from trading_brain.cli import cli, main
from trading_brain_tests.conftest import SHARED_DATA, make_candles, require_shared

EXE = Path(sys.executable).with_name("trading-brain")
CANDLES = SHARED_DATA / "candles"
TRADE_KEYS = ["symbol", "entry_time", "exit_time", "entry_price", "exit_price", "quantity", "pnl",
              "fees", "exit_reason"]


def real(name: str) -> Path:
    return require_shared(CANDLES / name, "shared candle data")


def tb(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRADING_BRAIN_HOME"}
    return subprocess.run([str(EXE), "--home", str(home), *args], capture_output=True, text=True,
                          env=env, timeout=120)


def run_main(monkeypatch, capsys, home: Path, *args: str) -> tuple[int, str, str]:
    """``cli.main`` in-process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["trading-brain", "--home", str(home), *args])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error_line(code: int, err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    assert "Traceback" not in err
    return lines[0]


def write_csv(path: Path, df: pl.DataFrame) -> Path:
    df.select(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias("timestamp"), "open", "high",
              "low", "close", "volume").write_csv(path)
    return path


def v_shape(n: int = 300) -> pl.DataFrame:
    """5m bars falling then rising gently: ema_cross enters after the bottom and stays in."""
    half = n // 2
    close = np.concatenate([np.linspace(100, 90, half),
                            90 * (1 + 0.0001 * np.arange(1, n - half + 1))])
    open_ = np.concatenate([[100.0], close[:-1]])
    return pl.DataFrame({
        "ts": [datetime(2024, 3, 1, tzinfo=UTC) + timedelta(minutes=5 * i) for i in range(n)],
        "open": open_, "high": np.maximum(open_, close) * 1.0002,
        "low": np.minimum(open_, close) * 0.9998, "close": close, "volume": 1.0,
    })


def check_shape(out: dict, strategy: str, engine: str) -> None:
    assert list(out) == ["strategy", "engine", "params", "metrics", "trades", "backtest_id",
                         "units"]
    assert list(out["units"]) == list(METRIC_KEYS)
    assert out["units"]["sharpe"] == "daily returns, annualised with √365"
    assert out["strategy"] == strategy and out["engine"] == engine
    assert list(out["metrics"]) == list(METRIC_KEYS)
    for t in out["trades"]:
        assert list(t) == TRADE_KEYS
        assert t["entry_time"].endswith("Z") and datetime.fromisoformat(t["entry_time"])
        if t["exit_time"] is None:
            assert t["exit_reason"] is None
        else:
            assert t["exit_time"].endswith("Z") and t["exit_time"] > t["entry_time"]
            assert t["exit_reason"] in ("signal", "stop_loss", "take_profit")


# --- real console script --------------------------------------------------------------------
def test_backtest_json_on_the_real_5m_file(tmp_path):
    path = real("binance_BTCUSDT_5m_2024H1.csv.gz")
    proc = tb(tmp_path, "backtest", "--strategy", "ema_cross", "--data", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    check_shape(out, "ema_cross@1", "exact")
    assert out["backtest_id"] is None  # no initialised home: nothing stored
    assert out["params"] == {"fast": 9, "slow": 21, "stop_loss": 0.02, "take_profit": 0.04,
                             "size": 0.1}
    trades = out["trades"]
    closed = [t for t in trades if t["exit_time"] is not None]
    assert out["metrics"]["n_trades"] == len(closed) > 100
    assert {t["exit_reason"] for t in closed} == {"signal", "stop_loss", "take_profit"}
    assert {t["symbol"] for t in trades} == {"BTC/USDT"}
    assert out["metrics"]["fees_paid"] == pytest.approx(sum(t["fees"] for t in trades))
    pnl = sum(t["pnl"] for t in trades)  # closed + marked open position = equity change
    assert out["metrics"]["final_equity"] == pytest.approx(10_000 + pnl, rel=1e-9)


@pytest.mark.parametrize("args, needle", [
    (["--strategy", "no_such_strategy"], "unknown strategy 'no_such_strategy'"),
    (["--strategy", "ema_cross", "--params", "{fast: 5"], "--params is not valid JSON"),
])
def test_console_script_one_line_errors(tmp_path, args, needle):
    proc = tb(tmp_path, "backtest", *args, "--data", str(tmp_path))
    line = one_error_line(proc.returncode, proc.stderr)
    assert needle in line and proc.stdout == ""


# --- in-process -----------------------------------------------------------------------------
def test_optimize_json_shape_and_order(tmp_path):
    path = real("binance_ETHUSDT_1h_2024H1.csv.gz")
    grid = {"fast": [5, 9, 12], "slow": [21, 40]}
    proc = CliRunner().invoke(cli, ["--home", str(tmp_path), "optimize", "--strategy",
                                    "ema_cross", "--data", str(path), "--grid", json.dumps(grid),
                                    "--objective", "total_return", "--json"])
    assert proc.exit_code == 0, proc.output
    out = json.loads(proc.stdout)
    assert list(out) == ["strategy", "units", "results", "walk_forward"]
    assert out["strategy"] == "ema_cross@1"
    assert out["units"]["total_return"].startswith("fraction")  # JSON keeps fractions
    res = out["results"]
    assert len(res) == 6 and all(list(r["metrics"]) == list(METRIC_KEYS) for r in res)
    assert {(r["params"]["fast"], r["params"]["slow"]) for r in res} == {(f, s) for f in (5, 9, 12)
                                                                          for s in (21, 40)}
    assert all(r["params"]["stop_loss"] == 0.02 for r in res)  # defaults kept
    rets = [r["metrics"]["total_return"] for r in res]
    assert rets == sorted(rets, reverse=True) and len(set(rets)) > 1
    wf = out["walk_forward"]
    assert wf["objective"] == "total_return" and wf["train_fraction"] == 0.7
    (fold,) = wf["folds"]
    assert fold["train"]["end"] < fold["test"]["start"]
    assert fold["best_params"] in [r["params"] for r in res]
    assert list(fold["in_sample"]) == list(fold["out_of_sample"]) == list(METRIC_KEYS)
    assert wf["gap"] == pytest.approx(fold["in_sample"]["total_return"]
                                      - fold["out_of_sample"]["total_return"])
    # the best set replayed by `backtest --engine fast` gives the sweep's metrics
    best = res[0]
    again = CliRunner().invoke(cli, ["--home", str(tmp_path), "backtest", "--strategy",
                                     "ema_cross@1", "--data", str(path), "--engine", "fast",
                                     "--params", json.dumps(best["params"]), "--json"])
    assert again.exit_code == 0, again.output
    for k, v in json.loads(again.stdout)["metrics"].items():
        assert v == pytest.approx(best["metrics"][k], rel=1e-9, abs=1e-12), k


def test_fast_and_exact_same_trades_on_real_files(tmp_path):
    sol = str(real("binance_SOLUSDT_1h_2024H1.csv.gz"))
    eth = str(real("binance_ETHUSDT_1h_2024H1.csv.gz"))
    outs = {}
    for engine in ("exact", "fast"):  # two symbols sharing one cash pool
        r = CliRunner().invoke(cli, ["--home", str(tmp_path), "backtest", "--strategy",
                                     "ema_cross", "--data", sol, "--data", eth, "--engine",
                                     engine, "--params", '{"size": 0.6}', "--json"])
        assert r.exit_code == 0, r.output
        outs[engine] = json.loads(r.stdout)
        check_shape(outs[engine], "ema_cross@1", engine)
    a, b = outs["exact"]["trades"], outs["fast"]["trades"]
    assert len(a) == len(b) > 20 and {t["symbol"] for t in a} == {"SOL/USDT", "ETH/USDT"}
    for x, y in zip(a, b, strict=True):
        for k in TRADE_KEYS:
            if isinstance(x[k], float):
                assert x[k] == pytest.approx(y[k], rel=1e-9), k
            else:
                assert x[k] == y[k], k


def test_params_override_changes_the_result(tmp_path):
    path = str(real("binance_BTCUSDT_1h_2024H1.csv.gz"))
    outs = []
    for extra in ([], ["--params", '{"fast": 20, "slow": 60, "size": 0.5}']):
        r = CliRunner().invoke(cli, ["--home", str(tmp_path), "backtest", "--strategy",
                                     "ema_cross", "--data", path, "--json", *extra])
        assert r.exit_code == 0, r.output
        outs.append(json.loads(r.stdout))
    base, tuned = outs
    assert tuned["params"] == {**base["params"], "fast": 20, "slow": 60, "size": 0.5}
    assert tuned["metrics"]["n_trades"] < base["metrics"]["n_trades"]
    assert tuned["metrics"]["final_equity"] != base["metrics"]["final_equity"]


def test_open_position_has_null_exit_and_unusual_name_works(tmp_path, monkeypatch, capsys):
    path = write_csv(tmp_path / "my weird data (v2).csv", v_shape())
    code, out, err = run_main(monkeypatch, capsys, tmp_path, "backtest", "--strategy",
                              "ema_cross", "--data", str(path), "--json")
    assert code == 0, err
    res = json.loads(out)
    check_shape(res, "ema_cross@1", "exact")
    (trade,) = res["trades"]
    assert trade["symbol"].endswith("/USD") and trade["exit_time"] is None
    assert res["metrics"]["n_trades"] == 0 and res["metrics"]["exposure"] > 0
    code, out, _ = run_main(monkeypatch, capsys, tmp_path, "backtest", "--strategy", "ema_cross",
                            "--data", str(path), "--symbol", "abc/usd", "--json")
    assert code == 0 and json.loads(out)["trades"][0]["symbol"] == "ABC/USD"


@pytest.mark.parametrize("case, needle", [
    ("unknown_param", "unknown parameter 'bogus' for ema_cross@1"),
    ("bad_value", "ema_cross@1: invalid params"),
    ("missing_file", "no such file or folder"),
    ("empty_file", "file is empty"),
    ("missing_column", "missing column(s) 'close'"),
    ("gaps", "gaps larger than 288 bars"),
    ("bad_engine", "unknown engine 'turbo'"),
    ("no_data", "give --data PATH, or --symbols"),
    ("both", "either --data or --symbols"),
    ("bad_start", "--start must be an ISO-8601"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, monkeypatch, capsys, case, needle):
    good = write_csv(tmp_path / "good_BTCUSD_5m.csv", make_candles(n=400))
    args = {"unknown_param": ["--data", str(good), "--params", '{"bogus": 1}'],
            "bad_value": ["--data", str(good), "--params", '{"fast": 30, "slow": 10}'],
            "missing_file": ["--data", str(tmp_path / "nope.csv")],
            "bad_engine": ["--data", str(good), "--engine", "turbo"],
            "no_data": [],
            "both": ["--data", str(good), "--symbols", "BTC/USD"],
            "bad_start": ["--data", str(good), "--start", "soon"]}.get(case)
    if case == "empty_file":
        (tmp_path / "e.csv").write_text("")
        args = ["--data", str(tmp_path / "e.csv")]
    elif case == "missing_column":
        write_csv(tmp_path / "m.csv", make_candles(n=50)).write_text(
            "timestamp,open,high,low\n2024-01-01T00:00:00Z,1,2,0.5\n")
        args = ["--data", str(tmp_path / "m.csv")]
    elif case == "gaps":
        holes = make_candles(n=3000).with_row_index().filter(pl.col("index") % 600 > 400)
        args = ["--data", str(write_csv(tmp_path / "g.csv", holes.drop("index")))]
    code, out, err = run_main(monkeypatch, capsys, tmp_path, "backtest", "--strategy",
                              "ema_cross", *args, "--json")
    assert needle in one_error_line(code, err) and out == ""


def test_optimize_bad_grid_key_and_objective(tmp_path, monkeypatch, capsys):
    good = str(write_csv(tmp_path / "x_BTCUSD_5m.csv", make_candles(n=400)))
    base = ["optimize", "--strategy", "ema_cross", "--data", good]
    code, _, err = run_main(monkeypatch, capsys, tmp_path, *base, "--grid", '{"fsat": [1, 2]}')
    assert "unknown parameter 'fsat'" in one_error_line(code, err)
    code, _, err = run_main(monkeypatch, capsys, tmp_path, *base, "--grid", '{"fast": [1, 5]}')
    assert "'fast'" in one_error_line(code, err) and "minimum 2" in err
    code, _, err = run_main(monkeypatch, capsys, tmp_path, *base, "--grid", '{"fast": [5]}',
                            "--objective", "luck")
    assert "unknown objective 'luck'" in one_error_line(code, err)
    code, _, err = run_main(monkeypatch, capsys, tmp_path, *base)
    assert "--grid must name at least one parameter" in one_error_line(code, err)
    code, _, err = run_main(monkeypatch, capsys, tmp_path, *base, "--grid", '{"fast": [5]}',
                            "--folds", "0")
    assert "--folds in [1, 50]" in one_error_line(code, err)
    code, _, err = run_main(monkeypatch, capsys, tmp_path, *base, "--grid", '{"fast": 5}')
    assert "must be a non-empty JSON list" in one_error_line(code, err)
    code, _, err = run_main(monkeypatch, capsys, tmp_path, "optimize", "--grid", '{"fast": [5]}',
                            "--data", good)
    assert "--strategy ID[@VERSION] is required" in one_error_line(code, err)


def test_optimize_skips_invalid_combinations_and_prints_a_table(tmp_path, monkeypatch, capsys):
    good = str(write_csv(tmp_path / "x_BTCUSD_5m.csv", make_candles(n=1500)))
    base = ["optimize", "--strategy", "ema_cross", "--data", good, "--folds", "2"]
    code, out, err = run_main(monkeypatch, capsys, tmp_path, *base, "--grid",
                              '{"fast": [5, 30], "slow": [10, 40]}')
    assert code == 0, err
    assert "note: skipped 1 invalid combination(s)" in err
    assert "fast (30) must be < slow (10)" in err
    assert "3 parameter sets, best first by Sharpe (daily, √365)" in out
    assert out.count("walk-forward fold") == 2
    assert "in-sample minus out-of-sample Sharpe (daily, √365)" in out
    rows = [ln for ln in out.splitlines() if ln.startswith("  Sharpe (daily, √365) ")]
    assert len(rows) == 3  # returns as percents, as `backtest` prints them
    assert all(re.search(r"  return [+-]\d+\.\d\d%  trades", ln) for ln in rows), rows
    code, out, err = run_main(monkeypatch, capsys, tmp_path, *base, "--grid",
                              '{"fast": [30], "slow": [10, 20]}')
    assert "no valid parameter combination" in one_error_line(code, err)


def test_warehouse_backtest_is_stored(tmp_path, monkeypatch, capsys):
    from trading_brain.adapters.duckdb import Store

    (tmp_path / "trading_brain.toml").write_text('market = "sim"\n')
    store = Store.open(tmp_path / "var" / "warehouse.duckdb")
    candles = pl.concat([make_candles("BTC/USD", n=2000, seed=1),
                         make_candles("ETH/USD", n=2000, seed=2, price=50.0)])
    store.upsert_candles(candles, source="test")
    args = ["backtest", "--strategy", "ema_cross", "--symbols", "BTC/USD,eth/usd", "--start",
            "2026-01-02", "--end", "2026-01-07", "--params", '{"fast": 3, "slow": 8}', "--json"]
    code, out, err = run_main(monkeypatch, capsys, tmp_path, *args)
    assert code == 0, err
    res = json.loads(out)
    assert {t["symbol"] for t in res["trades"]} == {"BTC/USD", "ETH/USD"}
    assert min(t["entry_time"] for t in res["trades"]) >= "2026-01-02"
    rows = store.execute("SELECT backtest_id, strategy_id, version, engine, symbols FROM backtests")
    assert len(rows) == 1 and rows[0][1:4] == ("ema_cross", 1, "exact")
    assert res["backtest_id"] == rows[0][0]  # --json names the stored id, as text mode does
    assert json.loads(rows[0][4]) == ["BTC/USD", "ETH/USD"]
    n = store.execute("SELECT count(*) FROM backtest_trades")[0][0]
    assert n == len(res["trades"])
    code, _, _ = run_main(monkeypatch, capsys, tmp_path, *args)  # same inputs: same id, replaced
    assert code == 0 and store.execute("SELECT count(*) FROM backtests")[0][0] == 1
    code, out, err = run_main(monkeypatch, capsys, tmp_path, *args[:-1])  # text mode: same id
    assert code == 0 and f"stored as backtest {rows[0][0][:16]}" in out
    code, _, err = run_main(monkeypatch, capsys, tmp_path, *args[:3], "--symbols", "DOGE/USD")
    assert "no 5m candles for DOGE/USD" in one_error_line(code, err)


def test_strategy_failure_is_one_line(tmp_path, monkeypatch, capsys):
    from trading_brain.adapters.duckdb import Store

    source = (Path(__file__).resolve().parents[1] / "strategies" / "ema_cross" / "v1.py"
              ).read_text()
    source = source.replace('STRATEGY_ID = "ema_cross"', 'STRATEGY_ID = "boom"').replace(
        '    fast = ema(pl.col("close"), params.fast)',
        '    raise RuntimeError(f"kaboom after {bars.height} bars")\n'
        '    fast = ema(pl.col("close"), params.fast)')
    assert "kaboom" in source
    (tmp_path / "trading_brain.toml").write_text("")
    store = Store.open(tmp_path / "var" / "warehouse.duckdb")
    store.insert_strategy_version({
        "strategy_id": "boom", "version": 1, "source": source, "sha256": "x", "reason": "test",
        "warmup_bars": 10, "params_default": {}, "param_space": {}, "status": "registered",
        "created_at": datetime.now(UTC)})
    data = write_csv(tmp_path / "b_BTCUSD_5m.csv", make_candles(n=100))
    code, out, err = run_main(monkeypatch, capsys, tmp_path, "backtest", "--strategy", "boom@1",
                              "--data", str(data), "--json")
    line = one_error_line(code, err)
    assert line.startswith("error: boom@1: ") and "kaboom after 100 bars" in line, line
    assert out == ""
    assert store.execute("SELECT count(*) FROM backtests")[0][0] == 0


def test_human_output(tmp_path):
    path = write_csv(tmp_path / "v_SOLUSD_5m.csv", v_shape())
    r = CliRunner().invoke(cli, ["--home", str(tmp_path), "backtest", "--strategy", "ema_cross",
                                 "--data", str(path)])
    assert r.exit_code == 0, r.output
    assert "ema_cross@1 (exact engine) on SOL/USD: 300 bars" in r.output
    assert "0 closed trades (+1 open)" in r.output
    assert re.search(r"return [+-]\d+\.\d\d%  Sharpe \(daily, √365\) -?\d+\.\d\d  "
                     r"Sortino \(daily, √365\) -?\d+\.\d\d  max drawdown \d+\.\d\d%",
                     r.output), r.output
    assert not math.isnan(float(r.output.split("final equity ")[1].split()[0]))


def test_optimize_generates_each_distinct_set_once(tmp_path, monkeypatch, capsys):
    """A grid listing a value twice: one sandboxed generate per distinct set, all distinct
    sets in one batch call (one worker round trip per symbol), rows for all."""
    from trading_brain.app.research.backtest import VersionWorker

    batches: list[list[dict]] = []
    real = VersionWorker.signal_sets

    def counting(self, bars, sets):
        batches.append([dict(p) for p in sets])
        return real(self, bars, sets)

    monkeypatch.setattr(VersionWorker, "signal_sets", counting)
    good = str(write_csv(tmp_path / "x_BTCUSD_5m.csv", make_candles(n=1500)))
    code, out, err = run_main(monkeypatch, capsys, tmp_path, "optimize", "--strategy",
                              "ema_cross", "--data", good, "--grid",
                              '{"fast": [5, 9, 5, 30], "slow": [10, 40]}', "--json")
    assert code == 0, err
    assert len(batches) == 1  # one batch (no progress bar: not a TTY)
    assert len(batches[0]) == 6  # (5|9|30) x (10|40); the repeated 5 is not generated again
    res = json.loads(out)["results"]
    assert len(res) == 7  # 8 combinations minus (30, 10): fast must be < slow
    assert "skipped 1 invalid combination(s)" in err
    fives = [r["metrics"] for r in res if r["params"]["fast"] == 5 and r["params"]["slow"] == 40]
    assert len(fives) == 2 and fives[0] == fives[1]
