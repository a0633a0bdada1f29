"""The nightly cycle with ``advisor = "anthropic"`` end to end, against the loopback fake of the
Messages API reached through the SDK's ``base_url`` (``[advisor] base_url``), on a real
simulated home (real warehouse, real sandbox workers, real registration gates).

Replies are scripted per role (analyst decision, analyst reflection, coder, reviewer):

- a tier-2 decision whose coder first sends code that does not compile (re-asked by the
  advisor with the static gate's message), then code with look-ahead the static gate cannot see
  (stopped by the REAL registration gate, sent back by the cycle's repair loop with the exact
  message), then good code: registered, gated, every thought stored;
- the reviewer's approve / reject on a candidate that passed the gates (the backtest gates are
  replaced by passing ones there, so the review is reached whatever the sim market says);
- a coder that stays hostile (a sandbox escape, look-ahead): stopped, nothing registered;
- a malformed decision → no_change / rejected with the reason; budget exhausted → no_change;
- ``evolve --advisor anthropic --json`` end to end with tokens and cost filled in.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from trading_brain.adapters.duckdb.reflection_tables import documents
from trading_brain.app.evolve import candidates as cands
from trading_brain.app.evolve.cycle import run_cycle
from trading_brain.app.home.config_file import render
from trading_brain.app.research.register import register_files
from trading_brain.app.runtime import Runtime, build_runtime
from trading_brain.app.simulate.loop import Plan, simulate
from trading_brain.domain.advisor import AdvisorSettings
from trading_brain.engine.evolution.gates import GateResult
from trading_brain.settings import EvolutionSettings, Home, load_settings
from trading_brain_tests.adapters.anthropic import helpers as h
from trading_brain_tests.adapters.sandbox.helpers import ESCAPES
from trading_brain_tests.fakes.anthropic_server import FakeAnthropic, Scripted, ok, text

NOW = datetime(2026, 10, 3, 0, 30, tzinfo=UTC)
SMALL = EvolutionSettings(sweep_size=6, family_sweep_size=3, history_days=10)
KEY = "sk-ant-e2e-key"
PREV = "fast_prev, slow_prev = fast.shift(1), slow.shift(1)"
AHEAD = "fast_prev, slow_prev = fast.shift(-1), slow.shift(-1)"


def v2(line: str = PREV) -> str:
    """ema_cross as version 2 (the family's next version in the simulated home)."""
    return h.EMA_SOURCE.replace("VERSION = 1", "VERSION = 2").replace(PREV, line)


BROKEN = v2().replace("def generate(bars: pl.DataFrame, params: Params)",
                      "def generate(bars: pl.DataFrame, params: Params")
ESCAPE = (ESCAPES / "a03_read_etc_passwd.py").read_text().replace('"attack"', '"ema_cross"') \
    .replace("VERSION = 1", "VERSION = 2")
TIER2 = h.decision("create_candidate", tier=2, target="ema_cross@1",
                   code_brief="Same crossing, read on the previous bar's EMAs.")
DOCUMENT = "Fees dominate the ema_cross edge; look for fewer, larger moves."


class Roles:
    """The fake's responder: scripted answers per role, in order (the last one repeats)."""

    def __init__(self, analyst: list[Scripted], coder: list[str] | None = None,
                 reviewer: list[dict[str, Any]] | None = None) -> None:
        self.queues: dict[str, list[Scripted]] = {
            "analyst": analyst, "coder": [ok(h.code(s)) for s in coder or [v2()]],
            "reviewer": [ok(r) for r in reviewer or [h.review()]]}
        self.asked: list[str] = []

    def __call__(self, body: dict[str, Any]) -> Scripted:
        schema = json.dumps((body.get("output_config") or {}).get("format") or {})
        role = h.role_of(body)
        if role == "analyst" and '"document"' in schema:
            self.asked.append("reflection")
            return ok({"document": DOCUMENT})
        self.asked.append(role)
        queue = self.queues.get(role) or [text("no script")]
        return queue.pop(0) if len(queue) > 1 else queue[0]


@pytest.fixture(scope="module")
def sim_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("evolve_ai") / "home"
    simulate(Home(home), Plan(market="sim", days=2, seed=7, start="2026-10-01T00:00:00+00:00",
                              symbols=("BTC/USD", "ETH/USD", "SOL/USD")))
    rt = build_runtime(home)
    register_files(rt.store, rt.settings, None, "released", workers=rt.workers)
    rt.workers.close()
    return home


@pytest.fixture
def fa(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropic]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    with FakeAnthropic(api_key=KEY) as server:
        yield server


def make_home(sim_home: Path, tmp_path: Path, fa: FakeAnthropic, **advisor: Any) -> Path:
    dst = tmp_path / "home"
    shutil.copytree(sim_home, dst)
    s = load_settings(Home(dst))
    adv = AdvisorSettings(**({"base_url": fa.url, "timeout_s": 5.0, "max_retries": 0}
                             | advisor))
    s = s.model_copy(update={"evolution": SMALL, "advisor": adv})
    Home(dst).config_file.write_text(render(s), encoding="utf-8")
    return dst


def cycle(home: Path, fa: FakeAnthropic, roles: Roles) -> tuple[Runtime, Any]:
    fa.state.responder = roles
    rt = build_runtime(home, now=NOW)
    try:
        return rt, run_cycle(rt, advisor_name=None)  # chosen: a key is set → anthropic
    finally:
        rt.workers.close()


def steps(rt: Runtime, cycle_id: str) -> list[tuple[str, int, str]]:
    return [(t["step"], int(t["seq"]), t["role"]) for t in rt.store.evolution_rows(
        "ai_thoughts", {"cycle_id": cycle_id}, order="created_at, step, seq")]


def versions(rt: Runtime) -> dict[str, str]:
    return {f"{r['strategy_id']}@{r['version']}": r["status"]
            for r in rt.store.strategy_versions()}


@pytest.mark.slow
def test_tier2_code_fails_to_compile_then_look_ahead_is_repaired_and_gated(
        sim_home: Path, tmp_path: Path, fa: FakeAnthropic) -> None:
    home = make_home(sim_home, tmp_path, fa)
    roles = Roles([ok(TIER2)], coder=[BROKEN, v2(AHEAD), v2()])
    rt, res = cycle(home, fa, roles)
    assert rt.store.evolution_cycles(res.cycle_id)[0]["advisor"] == "anthropic"
    assert res.decision["action"] == "create_candidate" and res.decision["tier"] == 2
    assert res.candidate == "ema_cross@2"
    gates = {g["gate"]: g for g in res.gates}
    assert gates["registration"]["status"] == "pass" and gates["registration"]["repairs"] == 1
    assert list(gates)[:5] == ["registration", "walk_forward", "oos_edge", "dsr", "pbo"]
    coder = [b["messages"] for b in fa.calls() if h.role_of(b) == "coder"]
    assert len(coder) == 3
    assert "[syntax]" in json.dumps(coder[1])  # the advisor re-asked with the static gate
    assert "lookahead check failed" in coder[2][0]["content"]  # the cycle's exact message
    row = rt.store.strategy_version("ema_cross", 2)
    assert row is not None and row["source"] == v2()  # the repaired source, never the bad one
    assert versions(rt)["ema_cross@1"] == "active"
    passed = all(g["status"] == "pass" for g in res.gates)
    assert row["status"] == ("candidate" if passed else "rejected")
    assert ("review" in gates) == all(g["status"] == "pass" for g in res.gates[:5])
    got = steps(rt, res.cycle_id)
    for want in [("system.analyst", 0, "system"), ("analyst.1", 0, "user"),
                 ("analyst.1", 1, "assistant"), ("panel", 0, "host"), ("coder", 0, "user"),
                 ("coder", 1, "assistant"), ("coder", 2, "host"), ("candidate", 0, "host"),
                 ("candidate", 1, "host"), ("decision", 0, "assistant"), ("gates", 0, "host"),
                 ("reflection", 1, "assistant")]:
        assert want in got, want
    plans = rt.store.evolution_rows("ai_thoughts", {"cycle_id": res.cycle_id,
                                                    "step": "candidate"}, order="seq")
    assert "(repair 1)" in json.loads(plans[-1]["content"])["reason"]
    assert res.tokens > 0 and res.cost_usd > 0
    usage = rt.store.evolution_rows("token_usage", {"cycle_id": res.cycle_id})
    assert res.tokens == sum(int(u["input_tokens"]) + int(u["output_tokens"])
                             + int(u["cache_write_tokens"]) + int(u["cache_read_tokens"])
                             for u in usage)
    assert abs(res.cost_usd - sum(float(u["cost_usd"]) for u in usage)) < 1e-9
    assert res.votes and res.votes[0]["action"] == "create_candidate"
    docs = documents(rt.store)
    assert [(d["version"], d["author"], d["content"]) for d in docs] == [
        (1, "anthropic", DOCUMENT)]
    again = run_cycle(build_runtime(home, now=NOW), advisor_name=None)
    assert again.as_json() == res.as_json()  # the night is not run twice


def passing_backtests(*_: Any, **__: Any) -> tuple[list[GateResult], dict[str, Any]]:
    return [GateResult(n, "pass", {}, "stubbed") for n in ("walk_forward", "oos_edge", "dsr",
                                                           "pbo")], {}


@pytest.mark.parametrize("verdict, status", [("approve", "candidate"), ("reject", "rejected")])
def test_the_reviewer_decides_a_candidate_that_passed_the_gates(
        sim_home: Path, tmp_path: Path, fa: FakeAnthropic, monkeypatch: pytest.MonkeyPatch,
        verdict: str, status: str) -> None:
    monkeypatch.setattr(cands, "backtest_gates", passing_backtests)
    home = make_home(sim_home, tmp_path, fa)
    roles = Roles([ok(TIER2)], coder=[v2()],
                  reviewer=[h.review(verdict, "fees still dominate")])
    rt, res = cycle(home, fa, roles)
    review = res.gates[-1]
    assert review["gate"] == "review" and review["verdict"] == verdict
    assert versions(rt)["ema_cross@2"] == status
    assert res.review is not None and res.review["verdict"] == verdict
    row = rt.store.strategy_version("ema_cross", 2)
    assert row is not None
    if verdict == "reject":
        assert "fees still dominate" in str(row["status_reason"])
        assert res.outcome == "rejected by the gates"
    body = next(b for b in fa.calls() if h.role_of(b) == "reviewer")
    assert "--- ema_cross@1" in body["messages"][0]["content"]  # the diff against the parent
    assert ("reviewer", 1, "assistant") in steps(rt, res.cycle_id)


@pytest.mark.slow
@pytest.mark.parametrize("hostile", [ESCAPE, v2(AHEAD)], ids=["escape", "look-ahead"])
def test_a_coder_that_stays_hostile_is_stopped_and_nothing_is_registered(
        sim_home: Path, tmp_path: Path, fa: FakeAnthropic, hostile: str) -> None:
    home = make_home(sim_home, tmp_path, fa, max_repairs=1)
    rt, res = cycle(home, fa, Roles([ok(TIER2)], coder=[hostile]))
    assert rt.store.strategy_version("ema_cross", 2) is None
    assert versions(rt)["ema_cross@1"] == "active"
    if hostile == ESCAPE:  # the static gate inside the advisor: no decision at all
        assert res.status == "rejected" and "static gate refused" in str(res.error)
    else:  # the registration gate, then one repair that is still look-ahead
        gate = res.gates[0]
        assert gate["status"] == "fail" and "lookahead" in str(gate["reason"])
        assert gate["repairs"] == 1 and res.candidate == "ema_cross@2"


def test_a_malformed_decision_and_an_exhausted_budget_change_nothing(
        sim_home: Path, tmp_path: Path, fa: FakeAnthropic) -> None:
    home = make_home(sim_home, tmp_path, fa, max_reply_retries=1)
    rt, res = cycle(home, fa, Roles([text("{not json"), ok({"action": "sell everything"})]))
    assert res.status == "rejected" and "advisor output rejected" in str(res.error)
    assert versions(rt)["ema_cross@1"] == "active" and "ema_cross@2" not in versions(rt)
    hosts = [t for t in steps(rt, res.cycle_id) if t[0] == "analyst.1" and t[2] == "host"]
    assert len(hosts) == 2  # each bad reply's reason recorded

    poor = tmp_path / "poor"
    poor.mkdir()
    home2 = make_home(sim_home, poor, fa, daily_token_budget=1_000)
    rt2, res2 = cycle(home2, fa, Roles([ok(TIER2)]))
    assert res2.status == "done" and res2.decision["action"] == "no_change"
    assert "budget" in res2.decision["reasoning"]
    assert any(s[0] == "budget" for s in steps(rt2, res2.cycle_id))
    assert not [c for c in fa.calls() if h.role_of(c) == "coder"]


def test_cli_evolve_anthropic_json(sim_home: Path, tmp_path: Path, fa: FakeAnthropic) -> None:
    from click.testing import CliRunner

    from trading_brain.cli import cli
    from trading_brain.errors import ConfigError

    home = make_home(sim_home, tmp_path, fa)
    fa.state.responder = Roles([ok(h.decision())])
    run: Callable[..., Any] = CliRunner().invoke
    res = run(cli, ["--home", str(home), "evolve", "--advisor", "anthropic", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["decision"]["action"] == "no_change"
    assert out["tokens"] > 0 and out["cost_usd"] > 0
    shown = run(cli, ["--home", str(home), "thoughts", out["cycle_id"], "--json"])
    roles = {t["role"] for t in json.loads(shown.stdout)}
    assert {"system", "user", "assistant", "host"} <= roles
    listed = run(cli, ["--home", str(home), "predictions", "--json"])
    preds = json.loads(listed.stdout)
    assert [(p["status"], p["metric"]) for p in preds] == [("open", "fees_paid")]
    assert "fees_paid > 300" in run(cli, ["--home", str(home), "predictions"]).stdout
    doc = json.loads(run(cli, ["--home", str(home), "strategy-document", "--json"]).stdout)
    assert (doc["version"], doc["author"], doc["content"]) == (1, "anthropic", DOCUMENT)
    assert DOCUMENT in run(cli, ["--home", str(home), "strategy-document", "--version",
                                 "1"]).stdout
    missing = run(cli, ["--home", str(home), "strategy-document", "--version", "9"])
    assert isinstance(missing.exception, ConfigError)  # the entry point: one line, exit 2
    assert "no strategy document version 9" in str(missing.exception)
