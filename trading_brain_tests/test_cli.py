"""The `trading-brain` console script as a user runs it: JSON outputs, one-line errors, exit
codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from trading_brain.adapters.duckdb import Store
from trading_brain.cli import COMMANDS, cli
from trading_brain_tests.conftest import built_once

EXE = Path(sys.executable).with_name("trading-brain")


def tb(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRADING_BRAIN_HOME"}
    proc = subprocess.run([str(EXE), "--home", str(home), *args], capture_output=True, text=True,
                          env=env, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def assert_one_line_error(proc: subprocess.CompletedProcess, text: str) -> None:
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], proc.stderr


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def small_home(root: Path, extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "trading_brain.toml").write_text(
        'symbols = ["BTC/USD", "ETH/USD"]\n[history]\ndays_5m = 1\ndays_1h = 2\ndays_1d = 5\n'
        + extra)
    return root


def initialised_small_home(tmp_path_factory: pytest.TempPathFactory, dst: Path) -> Path:
    """``dst``: a copy of ``small_home`` after ``init --no-bootstrap --strategy none`` (that
    init runs once per test run: ``conftest.built_once``; a home holds no absolute path)."""
    def build(root: Path) -> None:
        tb(small_home(root), "init", "--no-bootstrap", "--strategy", "none")

    shutil.copytree(built_once(tmp_path_factory, "small-home-initialised", build), dst)
    return dst


def test_init_then_status_json(tmp_path):
    home = small_home(tmp_path / "h")
    out = json.loads(tb(home, "init", "--json").stdout)
    assert out["market"] == "sim" and out["symbols"] == ["BTC/USD", "ETH/USD"]
    assert out["candles_stored"] > 2 * (288 - 2)
    assert out["active_strategy"] == "ema_cross@1"  # registered through the sandbox, deployed
    assert (home / "var" / "warehouse.duckdb").is_file()
    assert (home / "var" / "dagster" / "dagster.yaml").is_file()
    status = json.loads(tb(home, "status", "--json").stdout)
    assert status["mode"] == {"market": "sim", "execution": "paper", "allow_live_orders": False}
    btc = status["candles"]["BTC/USD"]
    assert set(btc) == {"5m", "1h", "1d"} and btc["1d"]["count"] == 5
    assert btc["5m"]["last"].endswith("Z")
    # init is idempotent with --if-needed and refuses to clobber a config with new options
    assert "already initialised" in tb(home, "init", "--if-needed").stderr
    assert_one_line_error(tb(home, "init", "--market", "kraken", check=False), "pass --force")


def test_errors_are_one_line(tmp_path):
    assert_one_line_error(tb(tmp_path / "nothing", "status", check=False),
                          "run `trading-brain init` first")
    bad = small_home(tmp_path / "bad", extra='[kraken]\nrest_urll = "x"\n')
    assert_one_line_error(tb(bad, "init", "--no-bootstrap", check=False),
                          "unknown setting 'kraken.rest_urll'")
    assert not (bad / "var").exists()  # nothing was created
    assert_one_line_error(tb(tmp_path / "r", "init", "--market", "replay", check=False),
                          "--market replay needs --data")


def test_import_ohlcv_good_and_bad_files(tmp_path, tmp_path_factory, shared_data):
    home = initialised_small_home(tmp_path_factory, tmp_path / "h")
    src = shared_data / "candles" / "binance_SOLUSDT_1d_2024H1.csv.gz"
    out = json.loads(tb(home, "import-ohlcv", str(src), "--json").stdout)
    assert json.dumps(out).count("182") >= 1
    store = Store.open(home / "var" / "warehouse.duckdb")
    assert store.read_candles(["SOL/USDT"], "1d").height == 182
    broken = tmp_path / "broken.csv"
    broken.write_text("timestamp,open,high,low,volume\n2024-01-01T00:00:00Z,1,2,0.5,10\n")
    proc = tb(home, "import-ohlcv", str(broken), "--symbol", "SOL/USDT", "--timeframe", "1d",
              check=False)
    assert_one_line_error(proc, "close")
    assert store.read_candles(["SOL/USDT"], "1d").height == 182  # unchanged
