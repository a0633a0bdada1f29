"""Whole-process benchmarks of `trading-brain backtest|optimize|--help` (not part of `make test`).

Run: .venv/bin/python -m pytest -o addopts='' -s \
    trading_brain_tests/benchmarks/bench_backtest_cli.py

Figures (printed with /proc/loadavg; wall time of whole processes, the MEDIAN of a few runs, so
a busy machine inflates them; the targets are meant for a quiet machine):
- `trading-brain --help` <= 0.3 s;
- `trading-brain backtest --json` of ema_cross over the real binance_SOLUSDT_5m file (52.9k bars,
  sandboxed generate included): exact engine <= 4 s, `--engine fast` <= 1.5 s; neither imports
  dagster, vectorbt or pandas (checked with `python -X importtime`);
- `trading-brain optimize` of 100 parameter sets vs 100 whole-process runs of a plain-Python loop
  of the same rules (polars reads the file; EMAs, signals and fills are Python loops): >= 10x.
  A handful of plain runs are measured (median) and extrapolated to 100 (printed as such); the
  plain loop's final equity must equal `backtest --params` for the same set, so both do the
  same job.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trading_brain_tests.conftest import SHARED_DATA, require_shared

EXE = Path(sys.executable).with_name("trading-brain")
FILE = SHARED_DATA / "candles" / "binance_SOLUSDT_5m_2024H1.csv.gz"
PLAIN_RUNS = 3
HELP_S, EXACT_S, FAST_S, SWEEP_RATIO = 0.3, 4.0, 1.5, 10.0
GRID = {"fast": list(range(3, 13)), "slow": list(range(21, 51, 3))}  # 100 valid sets

PLAIN = r'''
import sys
import polars as pl

path, fast, slow = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
CASH, FEE, SLIP, SIZE, SL, TP = 10_000.0, 0.0026, 0.0005, 0.1, 0.02, 0.04
df = pl.read_csv(path)
o, h, lo, c = (df[k].cast(pl.Float64).to_list() for k in ("open", "high", "low", "close"))
af, as_ = 2 / (fast + 1), 2 / (slow + 1)
ef, es = [c[0]], [c[0]]
for x in c[1:]:
    ef.append(af * x + (1 - af) * ef[-1])
    es.append(as_ * x + (1 - as_) * es[-1])
action = ["hold"] * len(c)
for i in range(max(slow, 1), len(c)):
    if ef[i] > es[i] and ef[i - 1] <= es[i - 1]:
        action[i] = "enter"
    elif ef[i] < es[i] and ef[i - 1] >= es[i - 1]:
        action[i] = "exit"
cash, qty, sl_lvl, tp_lvl, pending = CASH, 0.0, 0.0, 0.0, "hold"
for i in range(len(o)):
    if qty > 0.0:
        px = 0.0
        if o[i] <= sl_lvl:
            px = o[i]
        elif lo[i] <= sl_lvl <= h[i]:
            px = sl_lvl
        elif tp_lvl <= o[i]:
            px = o[i]
        elif lo[i] <= tp_lvl <= h[i]:
            px = tp_lvl
        elif pending == "exit":
            px = o[i] * (1 - SLIP)
        if px:
            cash += qty * px * (1 - FEE)
            qty = 0.0
    elif pending == "enter":
        price = o[i] * (1 + SLIP)
        limit = SIZE * cash
        qty = limit / (1 + FEE) / price
        cash -= limit
        sl_lvl, tp_lvl = price * (1 - SL), price * (1 + TP)
    pending = action[i]
print(cash + qty * c[-1])
'''


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "TRADING_BRAIN_HOME"}


def load() -> str:
    """The 1/5/15-minute load averages (other processes inflate wall times)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def timed(args: list[str], cwd: Path, repeat: int = 1) -> tuple[float, subprocess.CompletedProcess]:
    """(median wall time, last completed process) of ``repeat`` whole-process runs."""
    walls, proc = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, env=env(), cwd=cwd,
                              timeout=600)
        walls.append(time.perf_counter() - t)
        assert proc.returncode == 0, proc.stderr
    return statistics.median(walls), proc


def top_modules(args: list[str], cwd: Path) -> set[str]:
    """Top-level modules imported by the command (``python -X importtime``)."""
    imports = subprocess.run([sys.executable, "-X", "importtime", "-m", "trading_brain.cli",
                              *args], capture_output=True, text=True, env=env(), cwd=cwd)
    return {ln.split("|")[-1].strip().split(".")[0] for ln in imports.stderr.splitlines()
            if ln.startswith("import time:")}


@pytest.fixture(scope="module")
def data() -> Path:
    return require_shared(FILE, "shared candle data")


def test_help_is_fast(tmp_path):
    wall, proc = timed([str(EXE), "--help"], tmp_path, repeat=7)
    assert "backtest" in proc.stdout and "optimize" in proc.stdout
    heavy = top_modules(["--help"], tmp_path) & {"polars", "dagster", "duckdb", "vectorbt",
                                                  "pandas", "pydantic", "numpy"}
    print(f"\ntrading-brain --help: median {wall:.3f} s (target <= {HELP_S} s), heavy modules "
          f"imported: {sorted(heavy) or 'none'}; load {load()}")
    assert not heavy
    assert wall <= HELP_S


def test_backtest_whole_process(data, tmp_path):
    args = [str(EXE), "--home", str(tmp_path), "backtest", "--strategy", "ema_cross", "--data",
            str(data), "--json"]
    wall, proc = timed(args, tmp_path, repeat=3)
    out = json.loads(proc.stdout)
    assert out["metrics"]["n_trades"] > 100
    fast, fast_proc = timed([*args, "--engine", "fast"], tmp_path, repeat=5)
    assert json.loads(fast_proc.stdout)["trades"] == out["trades"]
    mods = top_modules(args[1:], tmp_path)
    fast_mods = top_modules([*args[1:], "--engine", "fast"], tmp_path)
    print(f"\nbacktest --json, ema_cross, {FILE.name}: median exact engine {wall:.2f} s (target "
          f"<= {EXACT_S} s), fast engine {fast:.2f} s (target <= {FAST_S} s); top-level "
          f"modules: {len(mods)} / {len(fast_mods)}; load {load()}")
    for m in (mods, fast_mods):
        assert not m & {"dagster", "vectorbt", "pandas"}
    assert wall <= EXACT_S
    assert fast <= FAST_S


def test_sweep_of_100_sets_vs_plain_processes(data, tmp_path):
    script = tmp_path / "plain.py"
    script.write_text(PLAIN)
    plain_walls, finals = [], []
    for fast, slow in [(3, 21), (9, 30), (12, 48)][:PLAIN_RUNS]:
        wall, proc = timed([sys.executable, str(script), str(data), str(fast), str(slow)], tmp_path)
        plain_walls.append(wall)
        finals.append(((fast, slow), float(proc.stdout)))
    (fast, slow), final = finals[1]
    _, check = timed([str(EXE), "--home", str(tmp_path), "backtest", "--strategy", "ema_cross",
                      "--data", str(data), "--params", json.dumps({"fast": fast, "slow": slow}),
                      "--json"], tmp_path)
    assert json.loads(check.stdout)["metrics"]["final_equity"] == pytest.approx(final, rel=1e-9)
    plain_100 = statistics.median(plain_walls) * 100
    before = load()
    wall, proc = timed([str(EXE), "--home", str(tmp_path), "optimize", "--strategy", "ema_cross",
                        "--data", str(data), "--grid", json.dumps(GRID), "--json"], tmp_path,
                       repeat=3)
    out = json.loads(proc.stdout)
    assert len(out["results"]) == 100
    ratio = plain_100 / wall
    gen = generate_cost(data)
    print(f"\noptimize, 100 sets over {FILE.name}: median {wall:.2f} s whole process "
          f"({wall / 100 * 1e3:.0f} ms per set); plain-Python process: median "
          f"{statistics.median(plain_walls):.2f} s ({min(plain_walls):.2f}-"
          f"{max(plain_walls):.2f}) over {len(plain_walls)} runs, extrapolated x100 = "
          f"{plain_100:.0f} s; ratio {ratio:.1f}x (target >= {SWEEP_RATIO:g}x). Floor: one "
          f"sandboxed generate call over these bars costs {gen * 1e3:.0f} ms (x100 = "
          f"{gen * 100:.1f} s); load {before} -> {load()}")
    assert ratio >= SWEEP_RATIO


def generate_cost(data: Path, calls: int = 5) -> float:
    """Mean wall time of one warm sandboxed ``generate`` of ema_cross over ``data`` (in-process)."""
    from trading_brain.app.research.backtest import VersionWorker
    from trading_brain.app.research.register import load_bars, strategy_source
    from trading_brain.settings import Settings

    bars = next(iter(load_bars([str(data)]).values()))
    with VersionWorker.open(Settings(), "ema_cross@1", strategy_source("ema_cross")[2]) as worker:
        worker.generate(bars, {})
        t = time.perf_counter()
        for i in range(calls):
            worker.generate(bars, {"fast": 3 + i})
        return (time.perf_counter() - t) / calls
