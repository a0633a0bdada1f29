"""Benchmark: `simulate` on the sim market, 9 symbols (target: 30 days in <= 60 s).

Runs ``TB_BENCH_SIM_DAYS`` days (default 1; set 30 for the full target) through the real loop in a
fresh home, prints the figures (steps, per-step time, phases) and the time extrapolated to 30 days,
and asserts that extrapolation against the 60 s budget. Run:
``.venv/bin/python -m pytest -o addopts='' -s trading_brain_tests/benchmarks/bench_simulate.py``
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from trading_brain.settings import Home
from trading_brain.simulation import Plan, simulate

BUDGET_30_DAYS_S = 60.0


def test_simulate_30_days_of_9_symbols_within_budget(tmp_path: Path) -> None:
    days = float(os.environ.get("TB_BENCH_SIM_DAYS", "1"))
    t0 = time.perf_counter()
    setup = {}

    def progress(i: int, n: int, _item: str) -> None:
        setup.setdefault("first_step_at", time.perf_counter() - t0)
        setup["steps"] = n

    out = simulate(Home(tmp_path / "home"), Plan(days=days, seed=42, start="2024-03-01T00:00:00Z"),
                   progress=progress)
    total = time.perf_counter() - t0
    steps = setup["steps"]
    loop_s = total - setup["first_step_at"]
    per_step = loop_s / max(steps - 1, 1)
    projected = setup["first_step_at"] + per_step * 288 * 30
    print(f"\nsimulate --days {days:g} (sim, {len(out['symbols'])} symbols): {total:.1f} s total, "
          f"{setup['first_step_at']:.1f} s setup + first step, {steps} steps at "
          f"{per_step * 1000:.0f} ms/step, {out['ticks']} ticks, {out['trades']} trades, "
          f"{out['fills']} fills -> 30 days projected {projected:.0f} s "
          f"(budget {BUDGET_30_DAYS_S:.0f} s)")
    assert len(out["symbols"]) == 9 and out["ticks"] > 0
    assert projected <= BUDGET_30_DAYS_S, (
        f"30 days would take ~{projected:.0f} s > {BUDGET_30_DAYS_S:.0f} s")
