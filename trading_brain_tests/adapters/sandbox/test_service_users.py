"""Every path to strategy code goes through the sandbox-worker service (``ports.StrategyWorkers``):
simulate and the scan (the runtime's ``workers``), registration (``validate``: a fresh worker
per version), the warehouse backtest (the runtime's ``workers``), and the ``backtest`` and
``optimize`` commands (a service of their own, closed at the end). A counting service over the
real pool is injected and asked who came."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.sandbox.pool import PooledWorker, SandboxWorkers
from trading_brain.app.research.strategy_files import STRATEGIES_ROOT
from trading_brain.app.simulate.loop import Plan, simulate
from trading_brain.app.simulate.plan import parse_time
from trading_brain.ports import StrategyWorker
from trading_brain.settings import Home, Settings
from trading_brain_tests.test_backtest_cli import run_main, v_shape, write_csv

pytestmark = pytest.mark.slow

EMA_CROSS = STRATEGIES_ROOT / "ema_cross" / "v1.py"
START = "2024-03-01T00:00:00Z"


class CountingWorkers:
    """``ports.StrategyWorkers`` over the real pool, recording every request."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.inner = SandboxWorkers(settings)
        self.gets: list[str] = []
        self.validations = 0
        self.closes = 0

    def get(self, version_ref: str, source: str) -> PooledWorker:
        self.gets.append(version_ref)
        return self.inner.get(version_ref, source)

    def validate(self, source: str) -> StrategyWorker:
        self.validations += 1
        return self.inner.validate(source)

    def close(self) -> None:
        self.closes += 1
        self.inner.close()


@pytest.fixture
def counted(monkeypatch) -> list[CountingWorkers]:
    """Every service the app opens (runtimes and commands) is a counting one."""
    import trading_brain.app.research.register as register
    import trading_brain.app.runtime as runtime

    made: list[CountingWorkers] = []

    def opening(settings: Settings) -> CountingWorkers:
        made.append(CountingWorkers(settings))
        return made[-1]

    monkeypatch.setattr(register, "open_workers", opening)
    if hasattr(runtime, "process_workers"):
        monkeypatch.setattr(runtime, "process_workers", opening)
    return made


def test_simulate_scan_registration_and_the_warehouse_backtest_use_the_service(tmp_path,
                                                                               counted):
    from trading_brain.app.research.version_backtest import run_version_backtest
    from trading_brain.app.runtime import build_runtime
    from trading_brain.app.scan import scan_once

    home = Home(tmp_path / "home")
    plan = Plan(days=0.05, seed=7, start=START, symbols=("BTC/USD", "ETH/USD"))
    simulate(home, plan)
    validations = sum(c.validations for c in counted)
    assert validations == 1  # ema_cross@1 registered by simulate, in a fresh worker
    gets = [ref for c in counted for ref in c.gets]
    assert gets and set(gets) == {"ema_cross@1"}  # booted, primed, scanned: one version
    assert any(c.closes for c in counted if c.gets)  # the run closed its workers

    rt = build_runtime(home)
    service = CountingWorkers(rt.settings)
    rt = replace(rt, workers=service)
    now = parse_time(START) + timedelta(days=0.05)
    outcome = scan_once(rt, now)
    assert outcome.result.signals and service.gets == ["ema_cross@1"]

    out = run_version_backtest(rt, "ema_cross@1", {
        "start": "", "end": "", "symbols": [], "timeframe": "5m", "engine": "fast",
        "params_json": "", "cash": 10_000.0, "fee": 0.0026, "slippage": 0.0005})
    assert out["json"]["strategy"] == "ema_cross@1"
    assert service.gets == ["ema_cross@1", "ema_cross@1"] and service.validations == 0
    service.close()
    Store.open(home.warehouse)  # the warehouse is free again


def test_registration_validates_each_file_in_a_fresh_worker(tmp_path, counted):
    from trading_brain.app.home.init import initialise
    from trading_brain.app.research.register import register_files

    home = Home(tmp_path / "home")
    initialise(home, market="sim", data=None, seed=7, symbols="BTC/USD", bootstrap=False,
               strategy=None)
    service = CountingWorkers()
    files = [EMA_CROSS, STRATEGIES_ROOT / "trend_pullback" / "v1.py"]
    rows = register_files(Store.open(home.warehouse), Settings(), files, "released",
                          workers=service)
    assert [r["created"] for r in rows] == [True, True]
    assert service.validations == 2 and service.gets == [] and service.closes == 0
    service.close()


def test_backtest_and_optimize_commands_use_the_service(tmp_path, monkeypatch, capsys,
                                                        counted):
    data = str(write_csv(tmp_path / "x_BTCUSD_5m.csv", v_shape(400)))
    code, _out, err = run_main(monkeypatch, capsys, tmp_path, "backtest", "--strategy",
                               "ema_cross", "--data", data, "--engine", "fast", "--json")
    assert code == 0, err
    code, _out, err = run_main(monkeypatch, capsys, tmp_path, "optimize", "--strategy",
                               "ema_cross", "--data", data, "--grid",
                               '{"fast": [5, 9], "slow": [21, 30]}', "--json")
    assert code == 0, err
    assert [c.gets for c in counted] == [["ema_cross@1"], ["ema_cross@1"]]
    assert all(c.closes == 1 for c in counted)  # each command closed its own service
