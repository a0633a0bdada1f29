"""What ``trading-brain simulate`` adds to its summary: the starting cash, the return, the
number of steps, and the report of the simulated period (``app.reports``).

Contract of ``after_simulation(home, final_equity, now) -> SimulationExtras``:
- reads the run's stored plan (``simulate.plan``: start, end) and the ``active`` slot's
  deposits from the home's warehouse;
- ``steps``: the 5-minute decision bars of the window (what progress counts);
- ``report``: the report of ``[start, last step's close]`` written to ``var/reports/``
  (``simulation-<first day>_<last day>``), or None with ``note`` saying why (no snapshot in the
  window, or the disk refused the files) — the simulation itself never fails for its report;
- ``return_pct`` = final equity / starting cash - 1, in percent, rounded to 2 decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from trading_brain.adapters.duckdb import Store
from trading_brain.app.reports.build import Report
from trading_brain.app.reports.service import simulation_report
from trading_brain.app.simulate.loop import PLAN_KEY
from trading_brain.app.simulate.plan import Plan, parse_time, steps_of
from trading_brain.errors import DataError
from trading_brain.settings import Home


@dataclass(frozen=True)
class SimulationExtras:
    start_cash: float | None
    return_pct: float | None
    steps: int
    report: Report | None
    note: str | None = None


def after_simulation(home: Home, final_equity: float, now: datetime) -> SimulationExtras:
    store = Store.open(home.warehouse)
    raw = store.get_meta(PLAN_KEY)
    plan = Plan.from_json(raw) if raw else None
    deposit = store.starting_capital("active")
    cash = float(deposit) if deposit is not None else None
    ret = round((final_equity / cash - 1) * 100, 2) if cash else None
    if plan is None or plan.start is None or plan.end is None:
        return SimulationExtras(cash, ret, 0, None, "no stored simulation plan")
    start = parse_time(plan.start)
    steps = steps_of(start, parse_time(plan.end))
    if not steps:
        return SimulationExtras(cash, ret, 0, None, "empty simulation window")
    try:
        rep = simulation_report(home, store, start, steps[-1], now)
    except (DataError, OSError) as e:
        return SimulationExtras(cash, ret, len(steps), None, f"no report: {e}")
    return SimulationExtras(cash, ret, len(steps), rep)
