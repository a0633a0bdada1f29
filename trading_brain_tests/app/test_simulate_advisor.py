"""`simulate --evolve --advisor offline|anthropic`: the option reaches the nightly cycle and is
stored in the plan (older plans without it still load); without ``--evolve`` it is refused
with one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from trading_brain.adapters.duckdb import Store
from trading_brain.app.simulate.loop import PLAN_KEY
from trading_brain.app.simulate.plan import Plan
from trading_brain.cli import cli
from trading_brain.errors import ConfigError
from trading_brain.settings import Home

START = "2026-10-01T00:00:00+00:00"
BASE = ["simulate", "--market", "sim", "--seed", "7", "--start", START,
        "--symbols", "BTC/USD", "--json"]


def test_one_day_with_the_offline_advisor_runs_and_is_stored(tmp_path: Path) -> None:
    home = tmp_path / "home"
    res = CliRunner().invoke(cli, ["--home", str(home), *BASE, "--days", "1", "--evolve",
                                   "--advisor", "offline"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["evolution"]["cycles"] == 0
    stored = Plan.from_json(Store.open(Home(home).warehouse).get_meta(PLAN_KEY) or "")
    assert stored.evolve and stored.advisor == "offline"


def test_the_advisor_reaches_the_nightly_cycle(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    res = CliRunner().invoke(cli, ["--home", str(tmp_path / "home"), *BASE, "--days", "2",
                                   "--evolve", "--advisor", "anthropic"])
    assert isinstance(res.exception, ConfigError)  # the first midnight asks for the key
    assert "ANTHROPIC_API_KEY" in str(res.exception)


def test_advisor_without_evolve_is_refused_on_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from trading_brain.cli import main; main()", "--home",
         str(tmp_path / "home"), *BASE, "--days", "1", "--advisor", "offline"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: --advisor needs --evolve (it chooses who decides each night)"]
    assert not (tmp_path / "home").exists()


def test_a_stored_plan_without_advisor_still_loads() -> None:
    old = {"market": "sim", "days": 1.0, "seed": 7, "start": START, "data": [],
           "symbols": ["BTC/USD"], "end": None, "evolve": True}
    assert Plan.from_json(json.dumps(old)).advisor is None
