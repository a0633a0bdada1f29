"""`simulate` on the write-behind memory book equals `simulate` on the warehouse, row for row,
over every path the trading tables know — and the test asserts each path was taken.

The same simulation (sim market, the home's symbols, seed 7, 9 hours: 108 steps) runs in
copies of one freshly deployed home: once with ``memory=False`` (every scan and tick talks to
DuckDB), once on the default ``adapters.memory.book.MemoryBook`` (flushed at each chunk commit;
after the last injected event it runs two chunks in one process, so the book also continues
past its own flush), and once on the book interrupted once more after a commit and resumed (the
book reloaded from a warehouse holding orders, fills, positions…). The "resumed" run is the
"memory" run up to the last injected event (the same deterministic steps), so it starts from a
copy of that home there instead of running them again. All three commit every 90 simulated
minutes (18 steps): a halt's effect depends on where the chunks end (a known loop issue, not the
store's: the warehouse run shows it too), so the runs compare the stores, not chunk sizes.
Nine hours is about the shortest plan of this seed that still takes every path (a six-hour
plan has no stop-loss exit); ``test_the_scenario_takes_every_path`` fails if one goes missing.

The deployed strategy is the parity probe (``fixtures/strategies/parity_probe.py``: fast EMAs
and 0.5 % levels), so positions close by signal, stop-loss and take-profit. Between simulated
chunks, through the public app functions (``app.home.control``, a runtime pinned at
the checkpoint's time), the loop is stopped and: halted (its entries are then rejected by the
risk shell), resumed, killed (positions sold by ``kill`` orders, kill switch on), resumed; each
time the simulation continues with ``resume=True`` from its checkpoint. Every table the loop
writes is compared row for row; only wall-clock columns (ingestion/update times stamped with
``now()``, scan start and duration) are left out.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.app.simulate.loop import Plan, simulate
from trading_brain.app.simulate.plan import parse_time
from trading_brain.settings import Home

PLAN = Plan(days=0.375, seed=7, start="2026-10-01T00:00:00Z")
CHUNK = 18  # steps per commit (90 simulated minutes)
PROBE = Path(__file__).parent / "fixtures" / "strategies" / "parity_probe.py"
STEP = timedelta(minutes=5)
WALL_CLOCK = {"ingested_at", "computed_at", "updated_at@asset_pairs", "started_at@scans",
              "duration_ms@scans", "updated_at@system_meta", "registered_at",
              "created_at@strategy_versions", "deployed_at", "recorded_at@fee_schedule",
              "valid_from@fee_schedule"}
TABLES = ("orders", "order_intents", "fills", "positions", "cash_ledger", "portfolio_snapshots",
          "risk_events", "risk_state", "paper_accounts", "scans", "signals", "candles",
          "indicators", "system_meta")


def _rows(store: Store, table: str) -> list[tuple]:
    cols = [r[0] for r in store.execute(f"DESCRIBE {table}")
            if r[0] not in WALL_CLOCK and f"{r[0]}@{table}" not in WALL_CLOCK]
    rows = store.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY ALL")
    if table == "system_meta":  # the result's elapsed time is not stored; progress must match
        rows = [r for r in rows if r[0].startswith("simulate.")]
    return rows


class Stop(Exception):
    pass


def _deploy_probe(home: Home) -> None:
    """A fresh home (no bootstrap) whose active strategy is the parity probe."""
    from trading_brain.app.home.init import initialise
    from trading_brain.app.research.register import register_files
    from trading_brain.engine.registry import deploy
    from trading_brain.settings import load_settings

    initialise(home, market="sim", data=None, seed=PLAN.seed, symbols=None, bootstrap=False,
               strategy=None)
    store = Store.open(home.warehouse)
    register_files(store, load_settings(home), [PROBE], "released")
    deploy(store, "parity_probe", 1, "parity test")


def _halt(rt) -> None:  # noqa: ANN001 - an app.runtime.Runtime
    from trading_brain.app.home.control import halt

    halt(rt, ["active"], "parity: halt")


def _resume(rt) -> None:  # noqa: ANN001
    from trading_brain.app.home.control import resume

    resume(rt, ["active"], "parity: resume")


def _kill(rt) -> None:  # noqa: ANN001
    from trading_brain.app.home.control import kill_all

    out = kill_all(rt, ["active"], "parity: kill", attempts=10, wait_s=60)
    assert out["slots"]["active"]["closed"], out  # positions sold by their kill orders


# after this step's chunk is committed: stop, act on the warehouse, continue
EVENTS: dict[int, Callable] = {CHUNK: _halt, 2 * CHUNK: _resume, 3 * CHUNK: _kill,
                               4 * CHUNK: _resume}
FORK = max(EVENTS)  # "resumed" continues from a copy of the "memory" home taken here
PLAIN_STOP = FORK + CHUNK  # "resumed" only: stopped after this commit and resumed at once


def _nothing(rt) -> None:  # noqa: ANN001
    """A plain stop after a commit and a resume (a killed process restarted)."""


def _run(home: Home, *, memory: bool, events: dict[int, Callable], resume: bool = False,
         fork: Path | None = None) -> dict:
    """The plan with ``events`` injected between chunks (each needs a commit at its step);
    ``resume``: continue the home's simulation from its checkpoint; ``fork``: copy the home
    there right after the ``FORK`` event."""
    from trading_brain.app.runtime import build_runtime

    assert all(k % CHUNK == 0 for k in events)
    start, out = parse_time(PLAN.start), None
    for at in [*sorted(events), None]:
        def stop(i: int, _n: int, _item: str, at: int | None = at) -> None:
            if i == at:
                raise Stop
        if at is None:
            out = simulate(home, PLAN, resume=resume, memory=memory, chunk_steps=CHUNK)
            break
        with pytest.raises(Stop):
            simulate(home, PLAN, resume=resume, progress=stop, memory=memory,
                     chunk_steps=CHUNK)
        resume = True
        rt = build_runtime(home, now=start + at * STEP + timedelta(seconds=30))
        events[at](rt)
        if fork is not None and at == FORK:
            shutil.copytree(home.root, fork)
    assert out is not None
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict, Store]]:
    """The three runs (the warehouse run is most of the time)."""
    base = tmp_path_factory.mktemp("memory")
    _deploy_probe(Home(base / "template"))
    for name in ("warehouse", "memory"):
        shutil.copytree(base / "template", base / name)
    out = {"warehouse": _run(Home(base / "warehouse"), memory=False, events=EVENTS),
           "memory": _run(Home(base / "memory"), memory=True, events=EVENTS,
                          fork=base / "resumed")}
    out["resumed"] = _run(Home(base / "resumed"), memory=True, resume=True,
                          events={PLAIN_STOP: _nothing})
    return {k: (v, Store.open(Home(base / k).warehouse)) for k, v in out.items()}


def test_the_scenario_takes_every_path(runs: dict) -> None:
    """From the rows: exits by signal, stop-loss, take-profit and kill; a risk rejection; a
    halt and a kill switch; resumes (the risk state's and the run's own)."""
    store: Store = runs["warehouse"][1]
    reasons = {r[0] for r in store.execute(
        "SELECT DISTINCT exit_reason FROM positions WHERE status = 'closed'")}
    assert {"signal", "stop_loss", "take_profit", "kill"} <= reasons, reasons
    purposes = {r[0] for r in store.execute(
        "SELECT DISTINCT purpose FROM orders WHERE state = 'filled'")}
    assert {"entry", "exit", "stop_loss", "take_profit", "kill"} <= purposes, purposes
    rejected = store.execute("SELECT DISTINCT risk_reason FROM signals "
                             "WHERE risk_decision = 'rejected'")
    assert rejected, "no risk rejection"
    kinds = {(r[0], r[1]) for r in store.execute("SELECT kind, reason FROM risk_events")}
    assert ("halt", "manual") in kinds or any(k == "halt" for k, _ in kinds), kinds
    assert ("kill_switch", "on") in kinds and ("kill_switch", "off") in kinds, kinds
    assert sum(k == "resume" for k, _ in kinds) >= 1, kinds
    halted = [r for r in store.execute(
        "SELECT count(*) FROM signals WHERE risk_decision = 'rejected' AND bar_time BETWEEN "
        "?::TIMESTAMPTZ AND ?::TIMESTAMPTZ", [parse_time(PLAN.start) + CHUNK * STEP,
                                              parse_time(PLAN.start) + 2 * CHUNK * STEP])]
    assert halted[0][0] > 0, "the halt rejected nothing"
    progress = store.get_meta("simulate.progress")
    assert progress is not None and progress.startswith("2026-10-01T09:00")  # ran to the end


@pytest.mark.parametrize("run", ["memory", "resumed"])
def test_the_summary_equals_the_warehouse_run(runs: dict, run: str) -> None:
    ref, got = runs["warehouse"][0], runs[run][0]
    assert ref["fills"] > 0 and ref["trades"] > 0  # the comparison covers real trading
    assert {k: v for k, v in got.items() if k != "elapsed_s"} == \
        {k: v for k, v in ref.items() if k != "elapsed_s"}


@pytest.mark.parametrize("run", ["memory", "resumed"])
@pytest.mark.parametrize("table", TABLES)
def test_every_table_equals_the_warehouse_run(runs: dict, run: str, table: str) -> None:
    ref, fast = runs["warehouse"][1], runs[run][1]
    want, got = _rows(ref, table), _rows(fast, table)
    assert len(got) == len(want), f"{table}: {len(got)} rows, want {len(want)}"
    for w, g in zip(want, got, strict=True):
        assert g == w, f"{table}: first differing row\n got {g}\nwant {w}"
