"""`simulate --evolve`: the nightly cycle at each simulated midnight, shadow slots trading on
paper, paper tests judged, promotions and reviews on the simulated clock (a short run: 2
symbols, 3 days, small sweeps, short paper tests)."""

from __future__ import annotations

import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.app.home.config_file import render
from trading_brain.app.home.init import initialise
from trading_brain.app.simulate.loop import Plan, simulate
from trading_brain.settings import EvolutionSettings, Home, load_settings

FAST = EvolutionSettings(sweep_size=6, family_sweep_size=3, history_days=3, min_trades=1,
                         paper_days_tier1=0.5, paper_days_tier2=0.5, paper_days_tier3=0.5,
                         review_days=1)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Home, dict]:
    home = Home(tmp_path_factory.mktemp("sim_evolve") / "home")
    initialise(home, market="sim", seed=7, symbols="BTC/USD,ETH/USD", bootstrap=False,
               strategy=None)
    settings = load_settings(home).model_copy(update={"evolution": FAST})
    home.config_file.write_text(render(settings), encoding="utf-8")
    out = simulate(home, Plan(market="sim", days=3, seed=7, start="2026-10-01T00:00:00+00:00",
                              evolve=True))
    return home, out


def test_the_summary_counts_the_evolution(run: tuple[Home, dict]) -> None:
    home, out = run
    ev = out["evolution"]
    assert ev["cycles"] == 2  # the midnights of Oct 2 and Oct 3 (not the run's start)
    assert ev["candidates_created"] >= 1 and ev["paper_tests"] >= 1
    assert {"trades", "final_equity", "max_drawdown", "halts"} <= set(out)
    store = Store.open(home.warehouse)
    nights = sorted(str(r["night"]) for r in store.evolution_cycles())
    assert nights == ["2026-10-02", "2026-10-03"]
    tests = store.evolution_rows("paper_tests")
    assert all(str(t["started_at"])[:10] in nights for t in tests)
    assert ev["paper_tests"] == len(tests)
    assert ev["promoted"] == sum(a == "promote" for _, _, a, _ in store.deployment_history())


def test_shadow_slots_traded_on_paper_with_their_own_ledger(run: tuple[Home, dict]) -> None:
    home, _ = run
    store = Store.open(home.warehouse)
    slots = {t["slot"] for t in store.evolution_rows("paper_tests")}
    assert slots and slots <= {"shadow1", "shadow2", "shadow3"}
    for slot in slots:
        assert store.starting_capital(slot) is not None  # its own starting_cash deposit
    rows = store.execute("SELECT DISTINCT slot FROM signals")
    assert slots <= {r[0] for r in rows}  # the scan ran the candidates beside the active
    venues = store.execute("SELECT DISTINCT account FROM paper_accounts")
    assert slots & {r[0] for r in venues} or not store.execute(
        "SELECT 1 FROM orders WHERE slot <> 'active'")
