"""How long the nightly cycle's Dagster steps keep the `warehouse` pool from the scan (issue 12).

A sim home (``simulate --days 10``, 9 symbols, seed 7), then ``evolution_job``'s assets
materialised ``RUNS`` times (each on a fresh copy of the home, so each run is a full cycle)
on an instance whose pools have one slot, as ``trading-brain up`` configures them. For the two
cycle steps (``evolution_decision``, ``strategy_candidates``, which claim the slot per warehouse
connection: ``defs.pool_slot``) it prints the step's time, the number of claims, the seconds the
slot was held in all, and the longest single hold (the most a scan step could have waited
for it, plus Dagster's own polling). Targets, asserted on the medians: the steps hold the slot
for at most half their time, the longest single hold is <= ``LONGEST_HOLD_S``, and a step makes
at most ``MAX_CLAIMS`` claims (each costs two Dagster storage writes). A second benchmark prints
what one claim + free costs (the linger off).

Run: ``.venv/bin/python -m pytest -o addopts='' -o python_files='bench_*.py' -s \
     trading_brain_tests/benchmarks/bench_evolution_pool.py`` (or ``make bench``)
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

RUNS = 3
LONGEST_HOLD_S = 2.0
MAX_CLAIMS = 20
NOW = "2026-10-11T00:30:00+00:00"
POOLS = {"concurrency": {"pools": {"default_limit": 1}}}


def _figures(home: Path) -> dict[str, dict[str, float]]:
    from trading_brain.defs.evolution import EVOLUTION_ASSETS
    from trading_brain.defs.resources import TradingBrainResource

    with dg.instance_for_test(overrides=POOLS) as inst:
        result = dg.materialize(EVOLUTION_ASSETS, instance=inst, resources={
            "tb": TradingBrainResource(home=str(home), now=NOW)})
        assert result.success
        steps = {s.step_key: s for s in inst.get_run_step_stats(result.run_id)}
        out = {}
        for ev in result.get_asset_materialization_events():
            m = ev.step_materialization_data.materialization
            if "warehouse_claims" not in m.metadata:
                continue
            name = m.asset_key.to_user_string()
            stat = steps[name]
            out[name] = {
                "step_s": float((stat.end_time or 0) - (stat.start_time or 0)),
                **{k: float(str(m.metadata[k].value)) for k in (
                    "warehouse_claims", "warehouse_held_s", "warehouse_longest_hold_s")}}
        return out


def test_the_cycle_steps_leave_the_warehouse_pool_free_most_of_the_time(tmp_path: Path
                                                                        ) -> None:
    base = tmp_path / "base"
    done = subprocess.run([sys.executable, "-m", "trading_brain.cli", "--home", str(base),
                           "simulate", "--days", "10", "--seed", "7", "--start",
                           "2026-10-01T00:00:00Z", "--json"], capture_output=True, text=True,
                          check=False, timeout=1200)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = []
    for i in range(RUNS):
        home = tmp_path / f"run{i}"
        shutil.copytree(base, home)
        t0 = time.monotonic()
        runs.append(_figures(home))
        print(f"run {i}: {time.monotonic() - t0:.1f} s  {runs[-1]}")
    print("load:", Path("/proc/loadavg").read_text().strip())
    for step in ("evolution_decision", "strategy_candidates"):
        med = {k: statistics.median(r[step][k] for r in runs) for k in runs[0][step]}
        print(f"{step} (median of {RUNS}): step {med['step_s']:.2f} s, "
              f"{med['warehouse_claims']:.0f} claims, held {med['warehouse_held_s']:.2f} s, "
              f"longest hold {med['warehouse_longest_hold_s']:.2f} s")
        assert med["warehouse_held_s"] <= 0.5 * med["step_s"]
        assert med["warehouse_longest_hold_s"] <= LONGEST_HOLD_S
        assert med["warehouse_claims"] <= MAX_CLAIMS


def test_what_one_claim_costs() -> None:
    """One claim + free of the slot in a SQLite instance (linger off): the price the linger
    saves on every connection of a burst. Printed as the median of 40; bound 200 ms."""
    from trading_brain.defs.pool_slot import StepPoolSlot

    with dg.instance_for_test(overrides=POOLS) as inst:
        slot = StepPoolSlot(inst, "run-x", "step", "warehouse", linger_s=0)
        times = []
        for _ in range(40):
            t = time.perf_counter()
            with slot.held():
                pass
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(f"\nclaim + free: median {med * 1000:.1f} ms, max {max(times) * 1000:.1f} ms over 40; "
          f"load {Path('/proc/loadavg').read_text().strip()}")
    assert slot.claims == 40 and med < 0.2
