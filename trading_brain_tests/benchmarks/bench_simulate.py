"""Benchmark: `simulate` on the sim market, 9 symbols (target: 30 days in <= 60 s).

Runs ``TB_BENCH_SIM_DAYS`` days (default 2; set 30 for the full target) through the real loop in a
fresh home, prints the figures (setup + first committed chunk, per-step time of the later chunks)
and the time extrapolated to 30 days, and asserts that extrapolation against the 60 s budget. Run:
``.venv/bin/python -m pytest -o addopts='' -s trading_brain_tests/benchmarks/bench_simulate.py``
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from trading_brain.app.simulate.loop import Plan, simulate
from trading_brain.settings import Home

BUDGET_30_DAYS_S = 60.0


def test_simulate_30_days_of_9_symbols_within_budget(tmp_path: Path) -> None:
    days = float(os.environ.get("TB_BENCH_SIM_DAYS", "2"))
    t0 = time.perf_counter()
    commits: list[tuple[int, float]] = []  # (last step of a committed chunk, time)

    def progress(i: int, n: int, _item: str) -> None:
        now = time.perf_counter() - t0
        if commits and now - setup["last"] < 0.05:  # the same commit reporting its steps
            commits[-1] = (i, commits[-1][1])
        else:
            commits.append((i, now))
        setup["steps"], setup["last"] = n, now

    setup: dict = {}
    out = simulate(Home(tmp_path / "home"), Plan(days=days, seed=42, start="2024-03-01T00:00:00Z"),
                   progress=progress)
    total = time.perf_counter() - t0
    steps = setup["steps"]
    first_i, first_t = commits[0]
    if len(commits) > 1:  # steady state: the chunks after the first (setup + warm-up)
        per_step = (total - first_t) / max(steps - first_i, 1)
        projected = first_t + per_step * (288 * 30 - first_i)
    else:  # one chunk: the whole run, setup included, scaled (an upper bound)
        per_step = total / steps
        projected = total * 30 / days
    print(f"\nsimulate --days {days:g} (sim, {len(out['symbols'])} symbols): {total:.1f} s total, "
          f"{first_t:.1f} s setup + first chunk ({first_i} steps), {steps} steps, "
          f"{per_step * 1000:.1f} ms/step after it, {out['ticks']} ticks, {out['trades']} trades, "
          f"{out['fills']} fills -> 30 days projected {projected:.0f} s "
          f"(budget {BUDGET_30_DAYS_S:.0f} s)")
    assert len(out["symbols"]) == 9 and out["ticks"] > 0
    assert projected <= BUDGET_30_DAYS_S, (
        f"30 days would take ~{projected:.0f} s > {BUDGET_30_DAYS_S:.0f} s")
