"""Every shipped analysis: the contract, the sandbox's static gate, and runs on real data (a
simulated home's warehouse, real Binance candles from ../shared/data)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_brain.adapters.sandbox.gate import check_source
from trading_brain_tests.analyses.helpers import ROOT, TS, load, warehouse_frames
from trading_brain_tests.conftest import SHARED_DATA, require_shared

SHIPPED = sorted(ROOT.glob("*/v*.py"))


def _finite(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _finite(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return value is None or isinstance(value, str | int | bool)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_contract_and_static_gate(path: Path):
    findings, _ = check_source(path.read_text(encoding="utf-8"), kind="analysis")
    assert findings == []
    module = load(path.parent.name, int(path.stem[1:]))
    assert module.ANALYSIS_ID == path.parent.name and module.VERSION == int(path.stem[1:])
    assert module.Params() == module.Params() and module.Params.model_config["frozen"]


def test_the_gate_refuses_what_an_analysis_must_not_do():
    bad = "import os\n\ndef analyze(frames, params):\n    return open('x').read()\n"
    rules = {f.rule for f in check_source(bad, kind="analysis")[0]}
    assert {"import", "name"} <= rules
    assert len(SHIPPED) >= 2


@pytest.fixture(scope="module")
def sim_frames(tmp_path_factory) -> dict[str, pl.DataFrame]:
    home = tmp_path_factory.mktemp("sim") / "home"
    subprocess.run(
        [sys.executable, "-c", "from trading_brain.cli import main; main()", "--home", str(home),
         "simulate", "--days", "1", "--seed", "7", "--start", "2026-10-01T00:00:00Z", "--json"],
        capture_output=True, text=True, timeout=600, check=True)
    return warehouse_frames(home / "var" / "warehouse.duckdb")


def test_both_on_a_simulated_home(sim_frames):
    market = load("market_analysis")
    report = market.analyze(sim_frames, market.Params())
    symbols = sim_frames["candles"]["symbol"].unique().to_list()
    assert sorted(report["symbols"]) == sorted(symbols) and len(symbols) == 9
    acted = sim_frames["signals"].filter(pl.col("action") != "hold").height
    assert report["overall"]["signals"] == acted > 0
    for r in report["symbols"].values():
        assert sum(r["regimes"].values()) == pytest.approx(1, abs=1e-5)
        assert r["quality"]["duplicates"] == 0 and r["quality"]["ohlc_violations"] == 0
    assert _finite(report) and len(json.dumps(report)) < 64_000
    trades = load("trade_performance")
    t = trades.analyze(sim_frames, trades.Params())
    closed = sim_frames["trades"]
    assert t["trades"] == closed.height > 0
    assert sum(g["trades"] for g in t["by_symbol"].values()) == closed.height
    assert sum(g["trades"] for g in t["by_hour"].values()) == closed.height
    assert t["fee_drag"]["fees"] == pytest.approx(closed["fees"].sum(), abs=1e-5)
    assert t["fee_drag"]["net_pnl"] == pytest.approx(closed["net_pnl"].sum(), abs=1e-5)
    assert 0 < t["mae"]["trades"] <= closed.height and t["mae"]["mean"] >= 0
    assert _finite(t) and len(json.dumps(t)) < 64_000


def _real_btc(days: int = 30) -> pl.DataFrame:
    path = require_shared(SHARED_DATA / "candles" / "binance_BTCUSDT_5m_2024H1.csv.gz",
                          "real BTC 5m candles")
    raw = pl.read_csv(path, try_parse_dates=True).head(days * 288)
    return raw.select(pl.lit("BTC/USD").alias("symbol"), pl.col("timestamp").cast(TS).alias("ts"),
                      *[pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close",
                                                            "volume")])


def test_both_on_real_candles():
    bars = _real_btc()
    market = load("market_analysis")
    r = market.analyze({"candles": bars}, market.Params())["symbols"]["BTC/USD"]
    closes = bars["close"].to_numpy()
    sd = float(np.std(np.diff(np.log(closes)), ddof=1))
    assert r["vol_annual"] == pytest.approx(sd * math.sqrt(365 * 288), abs=1e-5)
    assert 0.1 < r["vol_annual"] < 3.0 and r["bar_seconds"] == 300
    assert sum(r["regimes"].values()) == pytest.approx(1, abs=1e-5)
    secs = bars["ts"].dt.epoch("s").to_numpy()
    span = (secs.max() - secs.min()) / 300 + 1
    assert r["quality"]["bars"] == bars.height
    assert r["quality"]["missing"] == int(span) - bars["ts"].n_unique()
    # three hand-placed trades: MAE is the deepest low below the entry among the held bars
    picks = [(100, 148), (1000, 1010), (5000, 5400)]
    ts, low, close = bars["ts"], bars["low"].to_numpy(), bars["close"].to_numpy()
    trades = pl.DataFrame({
        "position_id": ["a", "b", "c"], "slot": ["active"] * 3, "strategy_id": ["s"] * 3,
        "version": [1] * 3, "symbol": ["BTC/USD"] * 3,
        "entry_time": [ts[i] for i, _ in picks], "exit_time": [ts[j] for _, j in picks],
        "entry_price": [float(close[i - 1]) for i, _ in picks],
        "exit_price": [float(close[j - 1]) for _, j in picks], "quantity": [0.01] * 3,
        "net_pnl": [1.0, -1.0, 2.0], "gross_pnl": [1.5, -0.5, 2.5], "fees": [0.5] * 3,
        "exit_reason": ["signal"] * 3}).with_columns(pl.col("entry_time", "exit_time").cast(TS))
    want = [max(0.0, 1 - float(low[i:j].min()) / float(close[i - 1])) for i, j in picks]
    perf = load("trade_performance")
    t = perf.analyze({"trades": trades, "candles": bars}, perf.Params())
    assert t["mae"]["trades"] == 3
    assert t["mae"]["mean"] == pytest.approx(float(np.mean(want)), abs=1e-6)
    assert t["mae"]["median"] == pytest.approx(float(np.median(want)), abs=1e-6)
    assert set(t["by_regime"]) <= {"trend_up", "trend_down", "range"}
    assert trades["exit_time"][0] - trades["entry_time"][0] == timedelta(hours=4)
    assert {k: v["trades"] for k, v in t["by_hold"].items()} == {  # 4 h exactly: 4-24h
        "4-24h": 1, "<1h": 1, ">=24h": 1}
