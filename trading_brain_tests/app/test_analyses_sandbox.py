"""The cycle's analyses in the sandbox worker (``app/evolve/analyses_run.py``) and advisor-written
analysis versions (``app/evolve/analysis_update.py``), on a real simulated home.

One short ``simulate`` (3 symbols, 2 days) makes the ledger; each test copies that home. Real
DuckDB, real locked-down workers (the runtime's ``SandboxWorkers``), real cycles.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from trading_brain.adapters.duckdb.reflection_tables import analysis_versions, save_analysis
from trading_brain.app.evolve import analysis_update
from trading_brain.app.evolve.analyses_run import (
    active_analysis,
    prewarm,
    read_frames,
    run_analyses,
)
from trading_brain.app.evolve.cycle import run_cycle
from trading_brain.app.home.config_file import render
from trading_brain.app.runtime import Runtime, build_runtime
from trading_brain.engine.evolution.decision import Decision, parse_decision
from trading_brain.engine.registry import sha256
from trading_brain.settings import EvolutionSettings, Home, load_settings
from trading_brain_tests.analyses.helpers import ROOT, load
from trading_brain_tests.conftest import register_released, two_day_sim

pytestmark = pytest.mark.slow

NOW = datetime(2026, 10, 3, 0, 30, tzinfo=UTC)
SINCE = NOW - timedelta(days=10)
SMALL = EvolutionSettings(sweep_size=6, family_sweep_size=3, history_days=10)
TRADES_V1 = (ROOT / "trade_performance" / "v1.py").read_text(encoding="utf-8")
# a v2 of trade_performance: v1's report plus a marker (a code transform of the released file)
TRADES_V2 = TRADES_V1.replace("VERSION = 1", "VERSION = 2").replace(
    '"mae": excursions(t, candles)}', '"mae": excursions(t, candles), "v2": True}')
CRASHING_MARKET_V2 = """ANALYSIS_ID = "market_analysis"
VERSION = 2
from pydantic import BaseModel


class Params(BaseModel):
    pass


def analyze(frames, params):
    return {"bars": frames["candles"].height // 0}
"""


@pytest.fixture(scope="module")
def sim_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = two_day_sim(tmp_path_factory, tmp_path_factory.mktemp("analyses") / "home",
                       ("BTC/USD", "ETH/USD", "SOL/USD"))
    settings = load_settings(Home(home)).model_copy(update={"evolution": SMALL})
    Home(home).config_file.write_text(render(settings), encoding="utf-8")
    register_released(home)
    return home


@pytest.fixture
def rt(sim_home: Path, tmp_path: Path) -> Iterator[Runtime]:
    dst = tmp_path / "home"
    shutil.copytree(sim_home, dst)
    runtime = build_runtime(dst, now=NOW)
    yield runtime
    runtime.workers.close()


def _reports(rt: Runtime, cycle_id: str) -> dict[str, dict[str, Any]]:
    return {r["analysis_id"]: r
            for r in rt.store.evolution_rows("analysis_reports", {"cycle_id": cycle_id})}


def _decision(action: str, source: str) -> Decision:
    return parse_decision({"action": action, "reasoning": "test", "source": source},
                          known_versions=set(), now=NOW)


def _store(rt: Runtime, action: str, source: str):
    ctx = SimpleNamespace(now=NOW, cycle_id="test-cycle")
    return analysis_update.store_analysis(rt, ctx, _decision(action, source))  # type: ignore[arg-type]


def test_shipped_analyses_through_the_runtime_workers_equal_in_process(rt: Runtime) -> None:
    out = run_analyses(rt.store, NOW, SINCE, "c1", workers=rt.workers)
    frames = read_frames(rt.store, SINCE, NOW)
    assert frames["candles"].height > 0 and frames["trades"].height > 0
    for aid in ("market_analysis", "trade_performance"):
        module = load(aid)
        assert out[aid] == json.loads(json.dumps(module.analyze(frames, module.Params())))
    rows = _reports(rt, "c1")
    assert {k: (r["status"], r["version"]) for k, r in rows.items()} == {
        "market_analysis": ("ok", 1), "trade_performance": ("ok", 1)}
    service = rt.workers.analyses()  # type: ignore[attr-defined]
    live = set(service.live())  # one warm worker per shipped source, kept for the next night
    assert live == {sha256((ROOT / a / "v1.py").read_text(encoding="utf-8"))
                    for a in ("market_analysis", "trade_performance")}
    again = run_analyses(rt.store, NOW, SINCE, "c2", workers=rt.workers)
    assert again == out and set(service.live()) == live


def test_prewarm_boots_the_active_workers_in_the_background(rt: Runtime) -> None:
    prewarm(rt.store, rt.workers)
    service = rt.workers.analyses()  # type: ignore[attr-defined]
    entries = [service._live[k] for k in service.live()]
    assert len(entries) == 2 and all(e.boot is not None for e in entries)
    for e in entries:
        e.boot.result(timeout=120)
        assert e.worker._proc is not None and e.worker._proc.alive()


def test_an_endless_analysis_times_out_and_nothing_keeps_running(rt: Runtime,
                                                                  tmp_path: Path) -> None:
    root = tmp_path / "analyses"
    (root / "market_analysis").mkdir(parents=True)
    (root / "market_analysis" / "v1.py").write_text(CRASHING_MARKET_V2.replace(
        "VERSION = 2", "VERSION = 1").replace(
        'return {"bars": frames["candles"].height // 0}', "while True:\n        pass"))
    out = run_analyses(rt.store, NOW, SINCE, "c1", workers=rt.workers, root=root,
                       timeout_s=1.5, ids=("market_analysis",))
    assert out == {"market_analysis": {"timeout": "no report within 1.5 s; worker killed",
                                       "version": 1}}
    assert _reports(rt, "c1")["market_analysis"]["status"] == "timeout"
    assert not [t for t in threading.enumerate() if t.name == "analysis" and t.is_alive()]


def test_a_module_the_gate_refuses_is_an_error_report_never_run(rt: Runtime,
                                                                tmp_path: Path) -> None:
    root = tmp_path / "analyses"
    (root / "trade_performance").mkdir(parents=True)
    (root / "trade_performance" / "v1.py").write_text(TRADES_V1.replace(
        "import math\n", "import math\nimport os\n").replace(
        '"trades": t.height,', '"trades": t.height, "cwd": os.getcwd(),'))
    out = run_analyses(rt.store, NOW, SINCE, "c1", workers=rt.workers, root=root,
                       ids=("trade_performance",))
    error = out["trade_performance"]["error"]
    assert "rejected by the static gate" in error and "import of 'os'" in error
    assert rt.workers.analyses().live() == []  # type: ignore[attr-defined]


def test_a_crash_is_recorded_the_cycle_goes_on_and_an_advisor_analysis_becomes_active(
        rt: Runtime) -> None:
    save_analysis(rt.store, {"analysis_id": "market_analysis", "version": 2,
                             "sha256": sha256(CRASHING_MARKET_V2), "source": CRASHING_MARKET_V2,
                             "path": "<stored>", "cycle_id": "earlier", "reason": "test",
                             "created_at": NOW})

    class Update:
        name = "scripted"

        def decide(self, context):
            return _decision("update_trade_analysis", TRADES_V2)

    res = run_cycle(rt, advisor=Update(), now=NOW)
    assert res.status == "done", res.error
    assert len(rt.workers.analyses().live()) == 2  # type: ignore[attr-defined] # the runtime's
    rows = _reports(rt, res.cycle_id)
    crash = rows["market_analysis"]
    assert (crash["status"], crash["version"]) == ("error", 2)
    assert "ZeroDivisionError" in crash["error"] and "line 11" in crash["error"]
    assert (rows["trade_performance"]["status"], rows["trade_performance"]["version"]) == ("ok", 1)
    assert [g["gate"] for g in res.gates] == ["analysis_sandbox"]
    assert res.gates[0]["status"] == "pass" and res.gates[0]["run"] == "ok"
    assert res.candidate == "trade_performance@2"
    nxt = run_analyses(rt.store, NOW + timedelta(days=1), SINCE, "next", workers=rt.workers)
    assert nxt["trade_performance"]["v2"] is True and nxt["trade_performance"]["version"] == 2
    stored = analysis_versions(rt.store, "trade_performance")
    assert [r["version"] for r in stored] == [2]
    assert Path(stored[0]["path"]).read_text(encoding="utf-8") == TRADES_V2


@pytest.mark.parametrize(("source", "gate", "why"), [
    (TRADES_V2.replace('frames["trades"]', 'frames["orders"]'), "analysis_sandbox",
     "the test run in the sandbox ended error: KeyError"),
    (TRADES_V2.replace("def analyze(", "def analyze_(").replace(
        "def fee_drag(", "def analyze(frames, params):\n    while True:\n        pass\n\n\n"
        "def fee_drag("), "analysis_sandbox", "the test run in the sandbox ended timeout"),
    (TRADES_V2.replace("import math\n", "import math\nimport subprocess\n"), "analysis_static",
     "import of 'subprocess' is not allowed"),
    (TRADES_V1, "analysis_static", "VERSION must be above 1"),
], ids=["crashes-on-real-frames", "endless", "forbidden-import", "not-newer"])
def test_an_advisor_analysis_that_fails_is_not_stored_and_v1_keeps_running(
        rt: Runtime, monkeypatch: pytest.MonkeyPatch, source: str, gate: str, why: str) -> None:
    monkeypatch.setattr(analysis_update, "TRIAL_TIMEOUT_S", 1.5)
    ref, result = _store(rt, "update_trade_analysis", source)
    assert (result.name, result.status) == (gate, "fail") and why in result.reason
    assert analysis_versions(rt.store, "trade_performance") == []
    active = active_analysis(rt.store, "trade_performance")
    assert active is not None and (active.version, active.origin) == (1, "shipped")
    out = run_analyses(rt.store, NOW, SINCE, "after", workers=rt.workers,
                       ids=("trade_performance",))
    assert out["trade_performance"]["version"] == 1 and "v2" not in out["trade_performance"]


def test_a_stored_version_never_changes(rt: Runtime) -> None:
    first = _store(rt, "update_trade_analysis", TRADES_V2)[1]
    assert (first.name, first.status, first.metrics["run"]) == ("analysis_sandbox", "pass", "ok")
    ref, again = _store(rt, "update_trade_analysis", TRADES_V2)  # a re-run of the night
    assert again.passed and "already stored" in again.reason
    other = TRADES_V2.replace('"v2": True', '"v2": False')
    ref, changed = _store(rt, "update_trade_analysis", other)
    assert not changed.passed and "released versions never change" in changed.reason
    assert [r["sha256"] for r in analysis_versions(rt.store)] == [sha256(TRADES_V2)]
