"""Shared pieces of the anthropic advisor tests: a night's context, scripted replies, settings,
and an ``AnthropicAdvisor`` wired to the loopback fake through the real SDK (``base_url``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from trading_brain.adapters.anthropic.advisor import AnthropicAdvisor
from trading_brain.adapters.anthropic.prompts import ANALYST, CODER, REVIEWER
from trading_brain.adapters.duckdb import Store
from trading_brain.engine.evolution.context import CandidateInfo, EvolutionContext, VersionInfo
from trading_brain.settings import Secrets, Settings, parse_settings
from trading_brain_tests.fakes.anthropic_server import FakeAnthropic, Scripted, ok

REPO = Path(__file__).resolve().parents[3]
EMA_SOURCE = (REPO / "strategies" / "ema_cross" / "v1.py").read_text()
NOW = datetime(2026, 10, 5, 2, 30, tzinfo=UTC)
KEY = "sk-ant-test-key"
SPACE = {"properties": {"fast": {"type": "integer", "minimum": 2, "maximum": 50},
                        "slow": {"type": "integer", "minimum": 5, "maximum": 100}}}


def ctx(cycle_id: str = "cycle-2026-10-05-abcdef01", now: datetime = NOW,
        candidates: tuple[CandidateInfo, ...] = ()) -> EvolutionContext:
    active = VersionInfo("ema_cross", 1, "active", EMA_SOURCE, SPACE,
                         {"fast": 9, "slow": 21}, shipped=True)
    cand = VersionInfo("ema_cross", 2, "candidate", EMA_SOURCE, SPACE, {"fast": 12, "slow": 30})
    return EvolutionContext(
        cycle_id=cycle_id, now=now, active=active, versions=(active, cand),
        candidates=candidates or (CandidateInfo("ema_cross@2", 1, "passed", NOW, "tweak"),),
        benchmarks={"active": {"slot": {"net_pnl": -412.5, "fees_paid": 380.25, "trades": 61,
                                        "win_rate": 0.31, "max_drawdown": 0.22}}},
        reports={"market_analysis": {"version": 1, "regimes": {"range": 0.7, "trend": 0.3}},
                 "trade_performance": {"version": 1, "fee_drag": 0.92}},
        open_predictions=({"claim": "fees fall", "metric": "fees_paid"},),
        observations=("ema_cross@1 loses to fees in range markets",))


def decision(action: str = "no_change", **over: Any) -> dict[str, Any]:
    """An analyst reply (``AnalystReply`` JSON) with every field present."""
    base: dict[str, Any] = {
        "action": action, "reasoning": "Net P&L -412.5 with 380.25 fees: fees dominate.",
        "observation": "fees eat the edge", "tier": None, "target": None, "params": None,
        "code_brief": None, "family": None,
        "predictions": [{"claim": "fees stay above 300", "metric": "fees_paid",
                         "comparator": ">", "threshold": 300.0, "deadline_days": 7,
                         "subject": "active"}]}
    return base | over


def code(source: str, notes: str = "written to the brief") -> dict[str, str]:
    return {"source": source, "notes": notes}


def review(verdict: str = "approve", *concerns: str) -> dict[str, Any]:
    return {"verdict": verdict, "concerns": list(concerns)}


PREV_LINE = "fast_prev, slow_prev = fast.shift(1), slow.shift(1)"
LOOKAHEAD_LINE = "fast_prev, slow_prev = fast.shift(-1), slow.shift(-1)"


def v3_source(prev_line: str = PREV_LINE) -> str:
    """ema_cross as version 3 (the next version in ``ctx()``), with its ``prev`` line swapped."""
    return EMA_SOURCE.replace("VERSION = 1", "VERSION = 3").replace(PREV_LINE, prev_line)


def role_of(body: dict[str, Any]) -> str:
    """Which role a request is for, from its system prompt's last block."""
    last = (body.get("system") or [{}])[-1].get("text", "")
    return {ANALYST: "analyst", CODER: "coder", REVIEWER: "reviewer"}.get(last, "?")


def responder(analyst: dict[str, Any] | None = None, coder: str | None = None,
              verdict: str = "approve") -> Any:
    """Answers by role: the analyst's decision, the coder's source, the reviewer's verdict."""
    def answer(body: dict[str, Any]) -> Scripted:
        role = role_of(body)
        if role == "coder":
            return ok(code(coder or v3_source()))
        if role == "reviewer":
            return ok(review(verdict))
        return ok(analyst or decision())
    return answer


def settings(**advisor: Any) -> Settings:
    base: dict[str, Any] = {"timeout_s": 5.0, "max_retries": 2}
    return parse_settings({"advisor": base | advisor})


def advisor(fa: FakeAnthropic, store: Store, **over: Any) -> AnthropicAdvisor:
    """The advisor as production opens it (``make_client``, ``models.list``), on the fake."""
    s = settings(**({"base_url": fa.url} | over))
    return AnthropicAdvisor.open(s, Secrets(anthropic_api_key=SecretStr(KEY)), store)


def thoughts(store: Store, cycle_id: str = "cycle-2026-10-05-abcdef01") -> list[dict[str, Any]]:
    return store.evolution_rows("ai_thoughts", {"cycle_id": cycle_id},
                                order="created_at, step, seq")


def usage_rows(store: Store) -> list[dict[str, Any]]:
    return store.evolution_rows("token_usage")
