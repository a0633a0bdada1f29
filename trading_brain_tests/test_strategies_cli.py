"""`trading-brain strategies …` end to end: sandboxed validation, registry, deploy/rollback, run,
check."""

from __future__ import annotations

import json

import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain_tests.conftest import REPO
from trading_brain_tests.test_cli import (
    assert_one_line_error,
    initialised_small_home,
    small_home,
    tb,
)

BIASED = REPO / "trading_brain_tests" / "fixtures" / "strategies" / "lookahead_biased.py"
EMA = REPO / "strategies" / "ema_cross" / "v1.py"


@pytest.fixture
def home(tmp_path, tmp_path_factory):
    return initialised_small_home(tmp_path_factory, tmp_path / "h")


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
    header, *lines = tb(home, "strategies", "list").stdout.splitlines()  # columns line up
    assert header.split() == ["strategy", "status", "path"] and len(lines) == len(listed)
    at_status, at_path = header.index("status"), header.index("path")
    for ln in lines:
        ref, status, path = ln.split()
        assert ln.startswith(ref + " ") and ln[at_status:].startswith(status + " "), (header, ln)
        assert ln[at_path:] == path and ln[at_status - 1] == ln[at_path - 1] == " ", (header, ln)
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


def test_validate_warmup_zero_is_a_one_line_verdict(home, tmp_path):
    f = tmp_path / "zero.py"
    f.write_text(EMA.read_text().replace("WARMUP_BARS = 1200", "WARMUP_BARS = 0"))
    proc = tb(home, "strategies", "validate", str(f), check=False)
    assert_one_line_error(proc, "WARMUP_BARS = <int >= 1> (the live scan passes the last")


def test_validate_has_an_overall_budget(tmp_path):
    home = small_home(tmp_path / "h", "[sandbox]\nvalidation_budget_s = 2\n")
    f = tmp_path / "slow.py"
    f.write_text(EMA.read_text().replace(
        "def generate(bars: pl.DataFrame, params: Params) -> pl.DataFrame:\n",
        "def generate(bars: pl.DataFrame, params: Params) -> pl.DataFrame:\n"
        "    import datetime as dt\n\n"
        "    end = dt.datetime.now() + dt.timedelta(seconds=1)\n"
        "    while dt.datetime.now() < end:\n"
        "        pass\n", 1))
    assert "while dt.datetime.now()" in f.read_text()
    proc = tb(home, "strategies", "validate", str(f), check=False)
    assert_one_line_error(proc, "time budget of 2 s (sandbox.validation_budget_s) ran out in the")


def test_terminal_escapes_in_errors_are_printed_as_visible_escapes(home, tmp_path):
    f = tmp_path / "osc.py"
    f.write_text('X = "\x1b]52;c;cGF5bG9hZA==\x07 __ \x1b[2J"\n')  # a gate finding quotes it
    proc = tb(home, "strategies", "validate", str(f), check=False)
    assert_one_line_error(proc, "\\x1b]52;c;cGF5bG9hZA==\\x07 __ \\x1b[2J")
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr


def test_run_warns_about_look_ahead(home, shared_data):
    data = shared_data / "candles" / "binance_ETHUSDT_1h_2024H1.csv.gz"
    proc = tb(home, "strategies", "run", str(BIASED), "--data", str(data))
    assert "lookahead check failed" in proc.stdout
    assert "warning: ETH/USDT: lookahead check failed" in proc.stderr
    assert "these signals use future bars" in proc.stderr
    out = json.loads(tb(home, "strategies", "run", str(BIASED), "--data", str(data),
                        "--json").stdout)["ETH/USDT"]
    assert out["lookahead"]["passed"] is False and "future bars" in out["warnings"][0]
    skipped = json.loads(tb(home, "strategies", "run", str(EMA), "--data", str(data), "--json",
                            "--lookahead-cuts", "0").stdout)["ETH/USDT"]
    assert skipped["lookahead"] is None and "look-ahead check not run" in skipped["warnings"][0]
    good = json.loads(tb(home, "strategies", "run", str(EMA), "--data", str(data),
                         "--json").stdout)["ETH/USDT"]
    assert good["lookahead"]["passed"] is True and good["warnings"] == []
