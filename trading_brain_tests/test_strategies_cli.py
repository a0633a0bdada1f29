"""`trading-brain strategies …` end to end: sandboxed validation, registry, deploy/rollback, run, check."""

from __future__ import annotations

import json

import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain_tests.conftest import REPO
from trading_brain_tests.test_cli import assert_one_line_error, small_home, tb

BIASED = REPO / "trading_brain_tests" / "fixtures" / "strategies" / "lookahead_biased.py"
EMA = REPO / "strategies" / "ema_cross" / "v1.py"


@pytest.fixture
def home(tmp_path):
    h = small_home(tmp_path / "h")
    tb(h, "init", "--no-bootstrap", "--strategy", "none")
    return h


def test_register_deploy_rollback(home):
    out = json.loads(tb(home, "strategies", "register", "--json").stdout)
    assert {(r["strategy"], r["created"]) for r in out} == {
        ("ema_cross", True), ("ema_rsi_volume", True), ("trend_pullback", True)}
    again = json.loads(tb(home, "strategies", "register", "--json").stdout)
    assert not any(r["created"] for r in again)  # idempotent
    tb(home, "strategies", "deploy", "ema_cross@1")
    tb(home, "strategies", "deploy", "trend_pullback")
    assert "rolled back to ema_cross@1" in tb(home, "strategies", "rollback").stdout
    listed = {(r["strategy"], r["status"]) for r in json.loads(
        tb(home, "strategies", "list", "--json").stdout)}
    assert ("ema_cross", "active") in listed and ("trend_pullback", "registered") in listed
    shown = json.loads(tb(home, "strategies", "show", "ema_cross@1", "--json").stdout)
    assert shown["params_default"] == {"fast": 9, "slow": 21, "stop_loss": 0.02,
                                       "take_profit": 0.04, "size": 0.1}
    assert shown["validation"]["lookahead"]["passed"] is True


def test_a_released_file_cannot_change(home, tmp_path):
    tb(home, "strategies", "register", str(EMA))
    edited = tmp_path / "v1.py"
    edited.write_text(EMA.read_text().replace("Exit on", "Leave on", 1) + "\n# edited\n")
    proc = tb(home, "strategies", "register", str(edited), check=False)
    assert_one_line_error(proc, "ema_cross@1 is already released with a different source")
    rows = Store.open(home / "var" / "warehouse.duckdb").strategy_versions("ema_cross")
    assert len(rows) == 1 and rows[0]["source"] == EMA.read_text()


@pytest.mark.parametrize(("source", "message"), [
    # hostile code is stopped by the static gate with a precise, single-line message
    ("import os\nSTRATEGY_ID='evil'\nVERSION=1\nWARMUP_BARS=5\n", "import of 'os' is not allowed"),
    # syntax errors name the line
    ("def generate(:\n", "line 1"),
])
def test_validate_rejects_bad_sources(home, tmp_path, source, message):
    f = tmp_path / "bad.py"
    f.write_text(source)
    assert_one_line_error(tb(home, "strategies", "validate", str(f), check=False), message)


def test_biased_fixture_fails_lookahead_and_shipped_ones_pass(home, shared_data):
    proc = tb(home, "strategies", "validate", str(BIASED), check=False)
    assert_one_line_error(proc, "lookahead check failed")
    assert "first: bar" in proc.stderr and "column 'action'" in proc.stderr
    data = shared_data / "candles" / "binance_ETHUSDT_1h_2024H1.csv.gz"
    bad = tb(home, "strategies", "check", str(BIASED), "--data", str(data), "--json", check=False)
    assert bad.returncode == 1
    report = json.loads(bad.stdout)["symbols"]["ETH/USDT"]["lookahead"]
    assert report["passed"] is False and report["first_column"] is not None
    good = json.loads(tb(home, "strategies", "check", "ema_cross@1", "--data", str(data),
                         "--json").stdout)
    assert good["passed"] is True


def test_run_prints_signals(home, shared_data):
    data = shared_data / "candles" / "binance_SOLUSDT_1h_2024H1.csv.gz"
    out = json.loads(tb(home, "strategies", "run", str(EMA), "--data", str(data),
                        "--params", '{"fast": 5, "slow": 30}', "--json").stdout)
    sol = out["SOL/USDT"]
    assert sol["bars"] == 4368 and sol["entries"] > 10
    assert {s["action"] for s in sol["signals"]} == {"enter", "exit"}
    bad = tb(home, "strategies", "run", str(EMA), "--data", str(data), "--params", '{"fats": 5}',
             check=False)
    assert_one_line_error(bad, "fats")
    assert_one_line_error(tb(home, "strategies", "run", str(EMA), "--data", str(data),
                             "--params", "{oops", check=False), "--params is not valid JSON")
