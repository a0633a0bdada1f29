"""No secret leaves a cycle run with the anthropic advisor: canary values in every secret
variable (environment and ``<home>/.env``), the evolution group materialised through Dagster
against the loopback fake (a tier-2 candidate with a repair, the reviewer, the weekly
reflection), then every text column of the warehouse, the warehouse file, the Dagster metadata
of every materialisation and check, the captured logs (DEBUG, every logger) and every request
body the fake received are searched for them."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import dagster as dg
import pytest

from trading_brain.defs.evolution import EVOLUTION_ASSETS
from trading_brain.defs.resources import TradingBrainResource
from trading_brain.settings import Home
from trading_brain_tests.adapters.anthropic import helpers as h
from trading_brain_tests.adapters.anthropic.test_secrets import CANARIES, DOTENV, text_columns
from trading_brain_tests.app.test_evolve_anthropic import (
    AHEAD,
    TIER2,
    Roles,
    make_home,
    sim_home,  # noqa: F401 - the module-scoped simulated home
    v2,
)
from trading_brain_tests.fakes.anthropic_server import FakeAnthropic, ok

NOW = "2026-10-03T00:30:00+00:00"


@pytest.mark.slow
def test_no_secret_in_anything_a_cycle_writes(sim_home: Path, tmp_path: Path,  # noqa: F811
                                              monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    for name in ("KRAKEN_API_SECRET", "TELEGRAM_BOT_TOKEN", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("ANTHROPIC_API_KEY", "KRAKEN_API_KEY"):
        monkeypatch.setenv(name, CANARIES[name])
    caplog.set_level(logging.DEBUG)
    with FakeAnthropic(api_key=CANARIES["ANTHROPIC_API_KEY"]) as fa:
        home = make_home(sim_home, tmp_path, fa)
        (home / ".env").write_text("".join(f"{k}={v}\n" for k, v in DOTENV.items()))
        (home / ".env").chmod(0o600)
        fa.state.responder = Roles([ok(TIER2)], coder=[v2(AHEAD), v2()],
                                   reviewer=[h.review("approve", "fine")])
        result = dg.materialize(EVOLUTION_ASSETS, resources={
            "tb": TradingBrainResource(home=str(home), now=NOW)},
            instance=dg.DagsterInstance.ephemeral())
        bodies = json.dumps(fa.requests)
    assert result.success
    mats = [ev.step_materialization_data.materialization
            for ev in result.get_asset_materialization_events()]
    meta = {m.asset_key.to_user_string(): m.metadata for m in mats}
    decision = meta["evolution_decision"]
    assert "create_candidate" in str(decision["votes"].value)  # the votes are shown...
    assert decision["cost_usd"].value > 0 and decision["tokens"].value > 0
    assert meta["strategy_candidates"]["cost_usd"].value >= decision["cost_usd"].value
    checks = [str(c.metadata) + str(c.description)
              for c in result.get_asset_check_evaluations()]
    dagster_text = json.dumps({k: {n: str(v.value) for n, v in m.items()}
                               for k, m in meta.items()}) + "".join(checks)
    from trading_brain.app.runtime import build_runtime

    rt = build_runtime(home)
    stored = text_columns(rt.store)
    assert any("previous bar" in s for s in stored)  # ...and the thoughts are stored
    raw = Home(home).warehouse.read_bytes()
    rt.workers.close()
    for name, value in CANARIES.items():
        assert value not in bodies, f"{name} in a request body"
        assert not [s for s in stored if value in s], f"{name} in the warehouse"
        assert value.encode() not in raw, f"{name} in the warehouse file"
        assert value not in dagster_text, f"{name} in the Dagster metadata"
        assert value not in caplog.text, f"{name} in the logs"
