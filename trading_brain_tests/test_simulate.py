"""`trading-brain simulate` (trading_brain/app/simulate/loop.py): the live loop offline.

Real components throughout: real DuckDB homes in tmp_path, the sandboxed ema_cross@1, the sim
market or real replayed candles from ../shared/data, the CLI in a subprocess for SIGKILL.
Short windows (0.1 day, 3 symbols) keep this module fast.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from trading_brain.adapters.duckdb import Store
from trading_brain.app.simulate.loop import CHUNK_ENV, PLAN_KEY, PROGRESS_KEY, Plan, simulate
from trading_brain.cli import cli
from trading_brain.errors import ConfigError
from trading_brain.settings import Home, Settings
from trading_brain_tests.conftest import require_shared

REPO = Path(__file__).resolve().parents[1]
SOL_5M = REPO.parent / "shared" / "data" / "candles" / "binance_SOLUSDT_5m_2024H1.csv.gz"
SYMBOLS = ("BTC/USD", "ETH/USD", "SOL/USD")
START = "2024-03-01T00:00:00Z"
ARGS = ["simulate", "--days", "0.1", "--seed", "7", "--start", START,
        "--symbols", ",".join(SYMBOLS), "--json"]
KEYS = ["days", "symbols", "ticks", "trades", "orders", "fills", "final_equity", "cash",
        "positions_value", "fees_paid", "max_drawdown", "halts", "elapsed_s",
        "start_cash", "return_pct", "report"]  # the CLI's additions come last


def _cli(home: Path) -> list[str]:
    return [sys.executable, "-c", "from trading_brain.cli import main; main()", "--home",
            str(home)]


@pytest.fixture(scope="module")
def _baseline_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    """One uninterrupted run through the CLI (in-process); the SIGKILLed runs must equal it,
    which is also the determinism check (same seed and start, two independent runs)."""
    home = tmp_path_factory.mktemp("sim") / "home"
    res = CliRunner().invoke(cli, ["--home", str(home), *ARGS])
    assert res.exit_code == 0, res.output
    return home, json.loads(res.stdout.strip().splitlines()[-1]), res.stderr


@pytest.fixture
def baseline(_baseline_run: tuple[Path, dict, str]) -> tuple[Path, dict]:
    return _baseline_run[0], _baseline_run[1]


@pytest.fixture
def baseline_stderr(_baseline_run: tuple[Path, dict, str]) -> str:
    return _baseline_run[2]


def _strip(out: dict) -> dict:
    return {k: v for k, v in out.items() if k not in ("elapsed_s", "report")}


def test_json_shape_and_warehouse_records(baseline: tuple[Path, dict]) -> None:
    home, out = baseline
    assert list(out) == KEYS
    assert out["symbols"] == list(SYMBOLS) and out["days"] == 0.1
    assert out["trades"] >= 1 and out["fills"] >= out["trades"]  # the window trades
    assert out["ticks"] > 0 and out["halts"] == 0
    assert out["final_equity"] == pytest.approx(out["cash"] + out["positions_value"], abs=0.02)
    assert 0 <= out["max_drawdown"] < 1
    store = Store.open(Home(home).warehouse)
    # written exactly as live: a scan per 5-minute step, positions/fills/ledger agree
    scans = store.execute("SELECT count(*), min(bar_time), max(bar_time) FROM scans")[0]
    assert scans[0] == 29  # 0.1 day = 28.8 -> 29 decision bars
    assert scans[1] == datetime(2024, 3, 1, tzinfo=UTC)
    assert store.execute("SELECT count(*) FROM positions")[0][0] == out["trades"]
    assert store.execute("SELECT count(*) FROM fills")[0][0] == out["fills"]
    assert float(store.cash_balance("active")) == pytest.approx(out["cash"], abs=0.01)
    assert store.active_version() == ("ema_cross", 1)
    assert store.execute("SELECT count(*) FROM candles WHERE timeframe = '5m'")[0][0] > 0


def test_json_adds_start_cash_return_and_the_report(baseline: tuple[Path, dict],
                                                    baseline_stderr: str) -> None:
    home, out = baseline
    assert out["start_cash"] == 10_000.0
    assert out["return_pct"] == round((out["final_equity"] / 10_000.0 - 1) * 100, 2)
    html = Path(out["report"])
    assert html.parent == Home(home).var / "reports"
    assert html.name == "simulation-2024-03-01.html" and html.is_file()
    md = html.with_suffix(".md").read_text()
    assert f"| Final equity | {out['final_equity']:,.2f} |" in md  # the same final equity
    assert "step " not in baseline_stderr  # stderr is no terminal here: no progress lines


def test_text_summary_is_readable(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["--home", str(tmp_path / "h"), "simulate", "--days", "0.05",
                                   "--seed", "7", "--start", START, "--symbols", "BTC/USD"])
    assert res.exit_code == 0, res.output
    lines = dict(line.split(None, 1) if not line.startswith(("starting", "final", "max",
                                                             "steps"))
                 else line.rsplit("  ", 1) for line in res.stdout.splitlines())
    lines = {k.strip(): v.strip() for k, v in lines.items()}
    assert lines["starting cash"] == "10,000.00"
    assert lines["return"].endswith("%") and lines["halts"] == "0"
    assert lines["steps / ticks"].startswith("15 / ")  # 0.05 day = 15 five-minute steps
    assert "a step is one 5-minute bar" in lines["steps / ticks"]
    assert {"final equity", "trades", "fees", "max drawdown", "report"} <= set(lines)
    assert "step " not in res.stderr


def test_default_strategy_is_deployed_and_said(baseline: tuple[Path, dict],
                                               baseline_stderr: str) -> None:
    assert "deploying ema_cross@1" in baseline_stderr
    store = Store.open(Home(baseline[0]).warehouse)
    assert store.active_version() == ("ema_cross", 1)


def _run_until(args: list[str], step: int) -> str | None:
    """Start the CLI (committing every 12 steps), SIGKILL it once it reports step ``step``
    done; its last report line (None if it finished first)."""
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONUNBUFFERED": "1", CHUNK_ENV: "12"})
    assert p.stderr is not None
    for line in p.stderr:
        if line.startswith("step ") and int(line.split()[1].split("/")[0]) >= step:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            return line.strip()
    p.wait()
    return None


def test_sigkill_at_several_points_then_resume_equals_uninterrupted(
        tmp_path: Path, baseline: tuple[Path, dict]) -> None:
    home = tmp_path / "h"
    killed = [_run_until([*_cli(home), *ARGS, "--progress-lines"], 3)]
    for step in (11, 20):  # resumed runs go on from the checkpoint; kill them again
        killed.append(_run_until([*_cli(home), *ARGS, "--resume", "--progress-lines"], step))
    assert all(killed), f"a run finished before its kill point: {killed}"
    point = Store.open(Home(home).warehouse).get_meta(PROGRESS_KEY)
    assert point is not None and point.split("|")[0] >= "2024-03-01T01:40"  # step 20 was done
    done = subprocess.run([*_cli(home), "simulate", "--resume", "--json", "--progress-lines"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "step 29/29" in done.stderr and "step 1/29" not in done.stderr  # it resumed
    assert _strip(json.loads(done.stdout)) == _strip(baseline[1])
    assert _positions(home) == _positions(baseline[0])  # the same trades, not just the counts


def _positions(home: Path) -> list[tuple]:
    return Store.open(Home(home).warehouse).execute(
        "SELECT symbol, entry_time, entry_price, quantity, exit_time, exit_price, exit_reason "
        "FROM positions ORDER BY entry_time, symbol")


def test_resume_without_a_simulation_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no simulation to resume"):
        simulate(Home(tmp_path / "new"), Plan(), resume=True)
    assert not (tmp_path / "new").exists()  # nothing was created


def test_new_run_in_a_home_holding_one_is_refused(baseline: tuple[Path, dict]) -> None:
    with pytest.raises(ConfigError, match="--resume"):
        simulate(Home(baseline[0]), Plan(days=0.1, seed=7, start=START, symbols=SYMBOLS))
    assert json.loads(Store.open(Home(baseline[0]).warehouse).get_meta(PLAN_KEY))["seed"] == 7


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["--home", str(tmp_path / "x"), "simulate", "--market", "replay"])
    assert res.exit_code != 0 and "--data" in str(res.exception or res.output)
    res = runner.invoke(cli, ["--home", str(tmp_path / "x"), "simulate", "--days", "0"])
    assert res.exit_code != 0 and "--days" in str(res.exception or res.output)


def test_replay_matches_backtest_exact_trades(tmp_path: Path) -> None:
    """Replayed real SOL 5m bars: simulate's positions equal backtest --engine exact's trades."""
    require_shared(SOL_5M)
    from trading_brain.app.research import backtest as bt
    from trading_brain.app.research.register import load_bars, strategy_source

    start = datetime(2024, 1, 6, tzinfo=UTC)
    plan = Plan(market="replay", days=0.2, start=start.isoformat(), data=(str(SOL_5M),))
    simulate(Home(tmp_path / "h"), plan)
    store = Store.open(Home(tmp_path / "h").warehouse)
    sim = store.frame("SELECT entry_time, entry_price::DOUBLE AS entry_price, exit_time, "
                      "exit_price::DOUBLE AS exit_price FROM positions ORDER BY entry_time")
    assert sim.height >= 2, "pick a slice where the strategy trades"

    bars = load_bars([str(SOL_5M)], None, None)
    sym = next(iter(bars))
    end = start + timedelta(days=0.2)
    frame = bars[sym].filter((pl.col("ts") >= start - timedelta(minutes=5 * 1300))
                             & (pl.col("ts") < end))
    _sid, _ver, source, _ = strategy_source("ema_cross@1", None)
    with bt.VersionWorker.open(Settings(), "ema_cross@1", source) as worker:
        _schema, defaults = worker.defaults()
        sig = worker.signals({sym: frame}, defaults)[sym]
    # decisions only from the simulation's first decision bar on (before it: warm-up)
    sig = sig.with_columns(pl.when(frame["ts"] < start).then(pl.lit("hold"))
                           .otherwise(pl.col("action")).alias("action"))
    result = bt.run_backtest({sym: frame}, {sym: sig}, "exact", bt.Costs(10_000.0, 0.0026, 0.0005))
    ref = result.trades.select("entry_time", "entry_price", "exit_time", "exit_price")
    assert ref.height == sim.height
    assert ref["entry_time"].to_list() == sim["entry_time"].to_list()
    assert ref["exit_time"].to_list() == sim["exit_time"].to_list()
    for col in ("entry_price", "exit_price"):
        a, b = ref[col].to_list(), sim[col].to_list()
        assert [x is None for x in a] == [x is None for x in b]
        assert [x for x in a if x is not None] == pytest.approx(
            [x for x in b if x is not None], rel=1e-6)


def test_a_reported_step_is_committed(tmp_path: Path) -> None:
    """``progress`` hears of a step only once its chunk is committed: another connection (a new
    ``Store`` has no share in the run's session) already sees its checkpoint."""
    home = Home(tmp_path / "h")
    seen: list[tuple[int, str]] = []

    def progress(i: int, _n: int, _item: str) -> None:
        point = Store(home.warehouse).get_meta(PROGRESS_KEY)
        assert point is not None
        seen.append((i, point))

    simulate(home, Plan(days=0.05, seed=7, start=START, symbols=SYMBOLS[:1]), progress=progress)
    assert [i for i, _ in seen] == list(range(1, 16))  # 0.05 day = 14.4 -> 15 steps
    start = datetime(2024, 3, 1, tzinfo=UTC)
    for i, point in seen:
        assert point.split("|")[0] >= (start + timedelta(minutes=5 * i)).isoformat()


def test_cached_scan_inputs_equal_the_warehouse_reads(baseline: tuple[Path, dict]) -> None:
    """What ``simulate``'s scans read from memory is what a warehouse read returns."""
    from trading_brain.app.runtime import build_runtime
    from trading_brain.app.scan import load_inputs
    from trading_brain.app.scan_inputs import CachedInputs
    from trading_brain.engine.scan import BAR

    rt = build_runtime(Home(baseline[0]))
    day = datetime(2024, 3, 1, tzinfo=UTC)
    symbols = rt.settings.symbols
    cached = CachedInputs()
    held_from = day - BAR * 1000
    cached.hold_candles(rt.store.read_candles(symbols, "5m", held_from, day + BAR * 40),
                        symbols, held_from, day + BAR * 40)
    cached.hold_indicators(rt.store.read_indicators(symbols, "5m", day - BAR * 12, day + BAR * 40),
                           symbols, day - BAR * 12, day + BAR * 40)
    for k in (1, 2, 17, 29):
        now = day + BAR * k + timedelta(seconds=30)
        live, memo = load_inputs(rt, now), load_inputs(rt, now, inputs=cached)
        assert live[0] == memo[0] and live[2] == memo[2] and live[4] == memo[4]  # slots, pairs
        assert sorted(live[1]) == sorted(memo[1]) == sorted(symbols)
        for sym in symbols:
            assert live[1][sym].equals(memo[1][sym]) and live[1][sym].height > 0
        assert live[3].equals(memo[3]) and live[3].height > 0
    # a window the held span does not cover is read from the warehouse
    early = day - BAR * 990 + timedelta(seconds=30)
    assert load_inputs(rt, early)[1]["BTC/USD"].equals(
        load_inputs(rt, early, inputs=cached)[1]["BTC/USD"])


def test_a_worker_that_fails_to_boot_fails_the_run(tmp_path: Path, monkeypatch) -> None:
    """The active version's worker boots in the background (the worker service's spawner
    thread) while the first day syncs; what that boot raises is raised by ``simulate`` itself
    (before any step), and no worker is left running."""
    import threading

    from trading_brain.adapters.sandbox.host import SandboxedStrategy
    from trading_brain.errors import SandboxViolation

    real, started = SandboxedStrategy.start, []

    def failing(self):
        if threading.current_thread().name == "sandbox-spawner":
            raise SandboxViolation("boot refused (test)")
        started.append(self)
        return real(self)

    monkeypatch.setattr(SandboxedStrategy, "start", failing)
    home = Home(tmp_path / "home")
    with pytest.raises(SandboxViolation, match="boot refused"):
        simulate(home, Plan(days=0.05, seed=7, start=START, symbols=SYMBOLS))
    assert all(s._proc is None for s in started)  # registration's and any other: closed
    assert Store.open(home.warehouse).get_meta(PROGRESS_KEY) is None  # no step was committed
