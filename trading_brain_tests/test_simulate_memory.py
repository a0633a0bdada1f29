"""`simulate` on the write-behind memory book equals `simulate` on the warehouse, row for row.

The same short simulation (sim market, the home's symbols, seed 42, 0.3 day) runs twice in
fresh homes: once with ``memory=False`` (every scan and tick talks to DuckDB) and once with the
default ``adapters.memory_book.MemoryBook`` (flushed at each chunk commit), and a third time on
the book in small chunks, interrupted after a commit and resumed. Every table the loop
writes is compared row for row; only wall-clock columns (ingestion/update times stamped with
``now()``, scan start and duration) are left out.
"""

from __future__ import annotations

import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.app.simulate.loop import Plan, simulate
from trading_brain.settings import Home

PLAN = Plan(days=0.3, seed=42, start="2024-03-01T00:00:00Z")
WALL_CLOCK = {"ingested_at", "computed_at", "updated_at@asset_pairs", "started_at@scans", "duration_ms@scans",
              "updated_at@system_meta", "registered_at", "created_at@strategy_versions",
              "deployed_at", "recorded_at@fee_schedule", "valid_from@fee_schedule"}
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


def _interrupted(home: Home) -> dict:
    """The memory run in chunks of 20 steps, stopped after its second commit, then resumed
    (the book is loaded from a warehouse already holding orders, fills, positions...)."""
    def stop(i: int, _n: int, _item: str) -> None:
        if i == 40:
            raise Stop
    with pytest.raises(Stop):
        simulate(home, PLAN, progress=stop, chunk_steps=20)
    return simulate(home, PLAN, resume=True, chunk_steps=20)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict, Store]]:
    base = tmp_path_factory.mktemp("memory")
    out = {"warehouse": simulate(Home(base / "warehouse"), PLAN, memory=False),
           "memory": simulate(Home(base / "memory"), PLAN),
           "resumed": _interrupted(Home(base / "resumed"))}
    return {k: (v, Store.open(Home(base / k).warehouse)) for k, v in out.items()}


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
