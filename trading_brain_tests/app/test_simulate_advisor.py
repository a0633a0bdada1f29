"""`simulate --evolve --advisor offline|anthropic`: the option reaches the nightly cycle and is
stored in the plan (older plans without it still load); without ``--evolve`` it is refused
with one line; and the whole path end to end (issue 12): ``trading-brain simulate --days 10
--evolve --advisor anthropic`` in a subprocess against the loopback fake of the Messages API
reached through the SDK's own ``ANTHROPIC_BASE_URL`` (the responder is ``Fund`` below), with
canary values in every secret (environment and ``<home>/.env``) searched for afterwards."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from trading_brain.adapters.duckdb import Store
from trading_brain.app.home.config_file import render
from trading_brain.app.home.init import initialise
from trading_brain.app.simulate.loop import PLAN_KEY
from trading_brain.app.simulate.plan import Plan
from trading_brain.cli import cli
from trading_brain.domain.advisor import AdvisorSettings
from trading_brain.errors import ConfigError
from trading_brain.settings import EvolutionSettings, Home, load_settings
from trading_brain_tests.adapters.anthropic import helpers as h
from trading_brain_tests.adapters.anthropic.test_secrets import CANARIES, DOTENV, text_columns
from trading_brain_tests.fakes.anthropic_server import FakeAnthropic, Scripted, Usage, ok

START = "2026-10-01T00:00:00+00:00"
BASE = ["simulate", "--market", "sim", "--seed", "7", "--start", START,
        "--symbols", "BTC/USD", "--json"]


def test_one_day_with_the_offline_advisor_runs_and_is_stored(tmp_path: Path) -> None:
    home = tmp_path / "home"
    res = CliRunner().invoke(cli, ["--home", str(home), *BASE, "--days", "1", "--evolve",
                                   "--advisor", "offline"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["evolution"]["cycles"] == 0
    stored = Plan.from_json(Store.open(Home(home).warehouse).get_meta(PLAN_KEY) or "")
    assert stored.evolve and stored.advisor == "offline"


def test_the_advisor_reaches_the_nightly_cycle(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    res = CliRunner().invoke(cli, ["--home", str(tmp_path / "home"), *BASE, "--days", "2",
                                   "--evolve", "--advisor", "anthropic"])
    assert isinstance(res.exception, ConfigError)  # the first midnight asks for the key
    assert "ANTHROPIC_API_KEY" in str(res.exception)


def test_advisor_without_evolve_is_refused_on_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from trading_brain.cli import main; main()", "--home",
         str(tmp_path / "home"), *BASE, "--days", "1", "--advisor", "offline"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: --advisor needs --evolve (it chooses who decides each night)"]
    assert not (tmp_path / "home").exists()


def test_a_stored_plan_without_advisor_still_loads() -> None:
    old = {"market": "sim", "days": 1.0, "seed": 7, "start": START, "data": [],
           "symbols": ["BTC/USD"], "end": None, "evolve": True}
    assert Plan.from_json(json.dumps(old)).advisor is None


# --- end to end: ten simulated days, nine nights decided by the anthropic advisor -----------

KEY = CANARIES["ANTHROPIC_API_KEY"]  # every secret is a canary, grepped for at the end
CANDIDATE = h.EMA_SOURCE.replace("VERSION = 1", "VERSION = 2") \
    .replace("fast: int = Field(9,", "fast: int = Field(21,") \
    .replace("slow: int = Field(21,", "slow: int = Field(55,")  # fewer, larger moves
DOCUMENT = "ema_cross pays its fees on every cross; slower EMAs trade less."
# Gates a better candidate can pass on a 3-day window; the paper test ends after one night.
GATES = EvolutionSettings(sweep_size=6, family_sweep_size=3, history_days=3, min_trades=1,
                          margin=0.0, min_dsr=0.0, max_pbo=1.0, paper_days_tier1=0.5,
                          paper_days_tier2=1, paper_days_tier3=0.5, review_days=1)
MODELS = {"analyst": "claude-opus-4-6", "coder": "claude-sonnet-4-6",
          "reviewer": "claude-haiku-4-5"}  # one price row each (DEFAULT_PRICES)
# The fake's usage figures per reply, and their cost by hand from the price table (USD/Mtok):
USAGE = {"analyst": Usage(4_000, 900, 2_500, 7_500),  # opus 5/25/6.25/0.5: $0.061875
         "reflection": Usage(6_000, 1_600),  # opus: 30,000 + 40,000 → $0.07
         "coder": Usage(5_000, 3_000, 2_000),  # sonnet 3/15/3.75/0.3: $0.0675
         "reviewer": Usage(7_000, 600, 1_000)}  # haiku 1/5/1.25/0.1: $0.01125
COST = {"analyst": 0.061875, "reflection": 0.07, "coder": 0.0675, "reviewer": 0.01125}


def user_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else "".join(b["text"] for b in content)


class Fund:
    """The fake's responder: a scripted fund manager. The analyst asks for a tier-2 candidate on
    the first night, then promotes it once its paper test passed (cancels it when the test
    ended otherwise) and else changes nothing; the coder writes ``CANDIDATE``, the reviewer
    approves, the weekly reflection writes ``DOCUMENT``. Every reply is logged by role."""

    def __init__(self) -> None:
        self.replies: list[tuple[str, str]] = []

    def _analyst(self, user: str) -> dict[str, Any]:
        if not any(kind == "analyst" for kind, _ in self.replies):
            return h.decision("create_candidate", tier=2, target="ema_cross@1",
                              code_brief="Same crossing on slower EMAs (21/55): fewer trades.")
        found = re.search(r"## candidates and paper tests\n(.*)\n", user)
        cands = json.loads(found.group(1)) if found else []
        paper = cands[0]["paper"] if cands else None
        if paper == "passed":
            return h.decision("promote_candidate", target=cands[0]["ref"])
        if paper in ("failed", "inconclusive"):
            return h.decision("cancel_candidate", target=cands[0]["ref"])
        return h.decision()

    def __call__(self, body: dict[str, Any]) -> Scripted:
        role = h.role_of(body)
        if role == "analyst" and '"document"' in json.dumps(body["output_config"]):
            role, obj = "reflection", {"document": DOCUMENT}
        elif role == "coder":
            obj = h.code(CANDIDATE, "slower EMAs")
        elif role == "reviewer":
            obj = h.review("approve", "fewer trades, same rules")
        else:
            obj = self._analyst(user_text(body))
        reply = ok(obj, usage=USAGE[role])
        self.replies.append((role, reply.text))
        return reply


def advisor_rows(store: Store) -> list[dict[str, Any]]:
    """The advisor's own thoughts (not the cycle's context/decision/gates records)."""
    return [t for t in store.evolution_rows("ai_thoughts", order="cycle_id, step, seq")
            if t["step"].split(".")[0] in ("system", "analyst", "coder", "reviewer",
                                            "reflection")]


@pytest.mark.slow
def test_ten_days_decided_by_the_anthropic_advisor_end_to_end(tmp_path: Path) -> None:
    """~25 s alone (the slowest of the issue-12 tests): the subprocess steps 2,880
    five-minute bars of ONE symbol through scan, risk and executor, and runs nine nightly
    cycles; one of them runs the real gates (sandbox registration, walk-forward, DSR, PBO on
    3 days) and the shadow paper test runs beside the active slot for a night. Fewer days
    would not reach promotion, a second weekly reflection and several quiet nights."""
    home = Home(tmp_path / "home")
    initialise(home, market="sim", seed=7, symbols="BTC/USD", bootstrap=False, strategy=None)
    settings = load_settings(home).model_copy(update={"evolution": GATES, "advisor": (
        AdvisorSettings(analyst_model=MODELS["analyst"], coder_model=MODELS["coder"],
                        reviewer_model=MODELS["reviewer"], timeout_s=30.0, max_retries=0))})
    home.config_file.write_text(render(settings), encoding="utf-8")
    (home.root / ".env").write_text("".join(f"{k}={v}\n" for k, v in DOTENV.items()))
    (home.root / ".env").chmod(0o600)
    fund = Fund()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "KRAKEN_",
                                                                    "TELEGRAM_"))}
    with FakeAnthropic(api_key=KEY, responder=fund) as fa:
        env |= {"ANTHROPIC_API_KEY": KEY, "KRAKEN_API_KEY": CANARIES["KRAKEN_API_KEY"],
                "ANTHROPIC_BASE_URL": fa.url}  # no base_url setting: the SDK's own variable
        proc = subprocess.run(
            [sys.executable, "-c", "from trading_brain.cli import main; main()", "--home",
             str(home.root), *BASE, "--days", "10", "--evolve", "--advisor", "anthropic"],
            capture_output=True, text=True, timeout=280, env=env)
        calls = fa.calls()
        counted = fa.calls("/v1/messages/count_tokens")
        bodies = json.dumps(fa.requests)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    store = Store.open(home.warehouse)

    # nine nights, each decided by the anthropic advisor through the fake
    cycles = sorted(store.evolution_cycles(), key=lambda c: str(c["night"]))
    assert [str(c["night"]) for c in cycles] == [f"2026-10-{d:02d}" for d in range(2, 11)]
    assert {(c["status"], c["advisor"]) for c in cycles} == {("done", "anthropic")}
    roles = Counter(role for role, _ in fund.replies)
    assert roles == {"analyst": 9, "reflection": 2, "coder": 1, "reviewer": 1}
    assert len(calls) == len(counted) == len(fund.replies)  # counted before every call
    for body in calls:
        role = h.role_of(body)
        assert body["model"] == MODELS[role]

    # the candidate: written by the coder, gated, reviewed, shadow-tested, then promoted
    # (or cancelled, had its paper test failed)
    decisions = [json.loads(c["decision"]) if isinstance(c["decision"], str)
                 else c["decision"] for c in cycles]
    actions = [d["action"] for d in decisions]
    assert actions[0] == "create_candidate" and decisions[0]["tier"] == 2
    first = cycles[0]["cycle_id"]
    gates = json.loads(store.evolution_rows("ai_thoughts", {"cycle_id": first,
                                                            "step": "gates"})[0]["content"])
    assert gates["candidate"] == "ema_cross@2"
    assert [(g["gate"], g["status"]) for g in gates["gates"]] == [
        (n, "pass") for n in ("registration", "walk_forward", "oos_edge", "dsr", "pbo")] + [
        ("review", "pass")]
    row = store.strategy_version("ema_cross", 2)
    assert row is not None and row["source"] == CANDIDATE
    [test] = store.evolution_rows("paper_tests")
    assert (test["strategy_id"], int(test["version"]), test["slot"]) == ("ema_cross", 2,
                                                                         "shadow1")
    assert test["status"] in ("passed", "failed", "inconclusive")
    history = [(sid, int(v), a) for sid, v, a, _ in store.deployment_history()]
    later = [a for a in actions[1:] if a != "no_change"]  # the night its paper test ended
    if test["status"] == "passed":
        assert later == ["promote_candidate"]
        assert ("ema_cross", 2, "promote") in history
        assert row["status"] in ("active", "rolled_back")  # the shell may roll it back later
    else:
        assert later == ["cancel_candidate"] and row["status"] == "cancelled"
    ev = out["evolution"]
    assert (ev["cycles"], ev["candidates_created"], ev["paper_tests"]) == (9, 1, 1)
    assert ev["promoted"] + ev["cancelled"] == 1

    # every thought stored: each role's system prompt once per cycle, every user message and
    # every reply exactly as the fake sent it
    rows = advisor_rows(store)
    assert sorted(t["content"] for t in rows if t["role"] == "assistant") == sorted(
        text for _, text in fund.replies)
    assert sorted(t["content"] for t in rows if t["role"] == "user") == sorted(
        user_text(b) for b in calls)
    assert not [t for t in rows if t["role"] == "host" and t["step"] != "panel"]
    per_cycle = Counter((t["cycle_id"], t["step"].split(".")[0], t["role"]) for t in rows)
    for c in cycles:
        cid = c["cycle_id"]
        assert per_cycle[(cid, "system", "system")] == (3 if cid == first else 1)
        assert per_cycle[(cid, "analyst", "user")] == per_cycle[(cid, "analyst",
                                                                 "assistant")] == 1
    for step in ("coder", "reviewer"):
        assert per_cycle[(first, step, "user")] == per_cycle[(first, step, "assistant")] == 1
    reflected = sorted(t["cycle_id"] for t in rows if t["step"] == "reflection"
                       and t["role"] == "assistant")
    assert reflected == [first, cycles[3]["cycle_id"]]  # Fri 2 Oct and Mon 5 Oct: weekly

    # token_usage: one row per reply, costed from the fake's usage figures to the cent
    usage = store.evolution_rows("token_usage")
    assert len(usage) == len(calls)
    reflection_calls = {u["call_id"] for u in usage if ":reflection:" in u["call_id"]}
    for u in usage:
        kind = "reflection" if u["call_id"] in reflection_calls else u["role"]
        want = USAGE[kind]
        assert (u["model"], u["input_tokens"], u["output_tokens"], u["cache_write_tokens"],
                u["cache_read_tokens"]) == (MODELS[u["role"]], want.input_tokens,
                                            want.output_tokens,
                                            want.cache_creation_input_tokens,
                                            want.cache_read_input_tokens)
        assert u["cost_usd"] == pytest.approx(COST[kind], abs=1e-12)
    for c in cycles:
        mine = [u for u in usage if u["cycle_id"] == c["cycle_id"]]
        assert c["cost_usd"] == pytest.approx(sum(u["cost_usd"] for u in mine), abs=1e-9)
        assert c["tokens"] == sum(u["input_tokens"] + u["output_tokens"]
                                  + u["cache_write_tokens"] + u["cache_read_tokens"]
                                  for u in mine)
    total = sum(c["cost_usd"] for c in cycles)  # 9 x 0.061875 + 2 x 0.07 + 0.0675 + 0.01125
    assert total == pytest.approx(0.775625, abs=1e-9) and round(total, 2) == 0.78

    # no secret (environment or .env) in a request, the warehouse, its file or the output
    stored, raw = text_columns(store), home.warehouse.read_bytes()
    for name, value in CANARIES.items():
        assert value not in bodies, f"{name} in a request body"
        assert not [t for t in stored if value in t], f"{name} in the warehouse"
        assert value.encode() not in raw, f"{name} in the warehouse file"
        assert value not in proc.stdout + proc.stderr, f"{name} in the output"
