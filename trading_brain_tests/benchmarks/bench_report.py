"""Benchmark: the daily report on a home holding 30 days of 9 symbols renders in <= 3 s.

Builds the home once (``simulate`` 30 days, 9 symbols, sim market seed 42: ~1 min), then times
``app.reports.service.report`` (read, figures, 5 charts, Markdown + HTML + PNG files) for the
newest day with data, ``TB_BENCH_REPORT_RUNS`` times (default 7) after one warm-up call, and
prints the median wall time and CPU time, the cold first call (matplotlib imported inside
it), the weekly and the 30-day simulation report for scale, and the load average (2 shared
cores: wall times from a busy machine are upper bounds; CPU time is not). Asserts the
median wall time against the budget. Run:
``.venv/bin/python -m pytest -o addopts='' -s trading_brain_tests/benchmarks/bench_report.py``
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import pytest

from trading_brain.app.simulate.loop import Plan, simulate
from trading_brain.settings import Home

BUDGET_S = 3.0
T = TypeVar("T")
DAYS = 30


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    h = Home(tmp_path_factory.mktemp("bench_report") / "home")
    t0 = time.perf_counter()
    out = simulate(h, Plan(days=DAYS, seed=42, start="2024-03-01T00:00:00Z"))
    print(f"\nhome: simulate --days {DAYS} ({len(out['symbols'])} symbols, {out['trades']} "
          f"trades, {out['fills']} fills) built in {time.perf_counter() - t0:.1f} s")
    assert len(out["symbols"]) == 9
    return h


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def _cpu(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of one call: CPU time does not grow with other processes' load."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def test_daily_report_of_30_days_of_9_symbols_within_budget(home: Home) -> None:
    from trading_brain.adapters.duckdb import Store

    store = Store.open(home.warehouse)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    from trading_brain.app.reports.service import report, simulation_report

    cold, rep = _timed(lambda: report(home, store, "daily", None, now))
    cold += time.perf_counter() - t0 - cold  # the import counts in the cold call
    runs = int(os.environ.get("TB_BENCH_REPORT_RUNS", "7"))
    pairs = [_cpu(lambda: report(home, store, "daily", None, now)) for _ in range(runs)]
    times, cpu = [w for w, _ in pairs], [c for _, c in pairs]
    weekly, _ = _timed(lambda: report(home, store, "weekly", None, now))
    start = datetime(2024, 3, 1, tzinfo=UTC)
    whole, _ = _timed(lambda: simulation_report(home, store, start,
                                                start.replace(day=31), now))
    median = statistics.median(times)
    load = os.getloadavg()
    snaps = store.execute("SELECT count(*) FROM portfolio_snapshots")[0][0]
    print(f"daily report ({rep.period.label}, 9 symbols, home of {DAYS} days, {snaps} "
          f"snapshots): median {median:.2f} s over {runs} runs (min {min(times):.2f}, max "
          f"{max(times):.2f}), CPU median {statistics.median(cpu):.2f} s; cold first call "
          f"incl. imports {cold:.2f} s; weekly "
          f"{weekly:.2f} s; the whole 30 days {whole:.2f} s; load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores "
          f"(budget {BUDGET_S:.0f} s)")
    assert median <= BUDGET_S, f"daily report median {median:.2f} s > {BUDGET_S} s"
    assert rep.markdown_path.is_file() and rep.html_path.is_file()
