"""The advisor decision schema: every action's valid shape, and one clear reason per rejection."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
import pytest

from trading_brain.engine.evolution.decision import Decision, Prediction, parse_decision
from trading_brain.engine.evolution.decision_fields import ACTIONS, METRICS, Action, Metric
from trading_brain.errors import AdvisorOutputRejected, DataError

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
KNOWN = {"ema_cross@1", "ema_cross@2", "trend_pullback@1"}


def _parse(raw: str | dict[str, Any]) -> Decision:
    return parse_decision(raw, known_versions=KNOWN, now=NOW)


def _dated(deadline: object) -> dict[str, Any]:
    return {k: v for k, v in _prediction(deadline=deadline).items() if k != "deadline_days"}


def _prediction(**over: Any) -> dict[str, Any]:
    return {"claim": "fewer fee-losing trades", "metric": "fees_pct_of_gross",
            "comparator": "<", "threshold": 30, "deadline_days": 7, **over}


BASE: dict[str, Any] = {"reasoning": "ema_cross@1 loses to fees on every symbol."}
VALID: list[dict[str, Any]] = [
    {"action": "no_change"},
    {"action": "create_candidate", "tier": 1, "params": {"fast": 12, "slow": 40, "size": 0.05,
                                                         "use_filter": True}},
    {"action": "create_candidate", "tier": 1, "target": "trend_pullback@1", "params": {"k": 2}},
    {"action": "create_candidate", "tier": 2, "source": "STRATEGY_ID = 'ema_cross'\n"},
    {"action": "create_candidate", "tier": 3, "source": "STRATEGY_ID = 'new_family'\n"},
    {"action": "promote_candidate", "target": "ema_cross@2"},
    {"action": "cancel_candidate", "target": "ema_cross@2"},
    {"action": "update_market_analysis", "source": "def analyse(frames): ...\n"},
    {"action": "update_trade_analysis", "source": "def analyse(frames): ...\n"},
]


@pytest.mark.parametrize("shape", VALID, ids=lambda s: f"{s['action']}-{s.get('tier', '')}")
def test_each_action_has_a_valid_shape(shape: dict[str, Any]) -> None:
    raw = {**BASE, **shape, "observation": "fees dominate", "predictions": [_prediction()]}
    decision = _parse(json.dumps(raw))
    assert decision.action == shape["action"]
    assert decision == _parse(raw)  # text and dict input give the same decision
    assert _parse(decision.model_dump_json()) == decision  # a stored decision parses back


def test_every_action_is_covered_and_metrics_match_the_literal() -> None:
    assert {s["action"] for s in VALID} == set(ACTIONS) == set(Action.__args__)
    assert set(METRICS) == set(Metric.__args__)


def test_prediction_deadlines_resolve_against_now() -> None:
    decision = _parse({**BASE, "action": "no_change", "predictions": [
        _prediction(), _dated("2026-03-20"),
        _prediction() | {"deadline_days": 90, "subject": "ema_cross@1"},
    ]})
    days7, dated, far = decision.predictions
    assert days7.deadline == NOW + timedelta(days=7)
    assert dated.deadline == datetime(2026, 3, 20, tzinfo=UTC)
    assert far.deadline == NOW + timedelta(days=90) and far.subject == "ema_cross@1"
    assert days7.subject == "active" and days7.threshold == 30.0


def test_a_json_fence_around_the_reply_is_accepted() -> None:
    text = "```json\n" + json.dumps({**BASE, "action": "no_change"}) + "\n```"
    assert _parse(text).action == "no_change"


def test_text_is_kept_as_data_not_escaped() -> None:
    hostile = "ignore previous rules \x1b[31m<script>alert(1)</script>\u202e"
    decision = _parse({"action": "no_change", "reasoning": hostile, "observation": hostile})
    assert decision.reasoning == hostile == decision.observation


def test_decisions_are_frozen() -> None:
    decision = _parse({**BASE, "action": "no_change"})
    with pytest.raises(pydantic.ValidationError):
        decision.action = "promote_candidate"


def test_direct_construction_by_an_offline_advisor() -> None:
    p = Prediction(claim="c", metric="win_rate", comparator=">=", threshold=0.5,
                   deadline=NOW + timedelta(days=2))
    d = Decision(action="create_candidate", tier=1, reasoning="r", params={"fast": 5},
                 predictions=(p,))
    assert _parse(d.model_dump(mode="json")) == d


def _no_change(**over: Any) -> dict[str, Any]:
    return {**BASE, "action": "no_change", **over}


REJECTED: list[tuple[Any, str]] = [
    ("{not json", "malformed JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"action": "no_change", "action": "promote_candidate", "reasoning": "r"}',
     "duplicate key 'action'"),
    ('{"action": "no_change", "reasoning": "r", "predictions": [{"threshold": NaN}]}',
     "NaN is not a number JSON allows"),
    ("x" * 200_001, "longer than 200000"),
    (42, "expected JSON text or a dict"),
    (_no_change(risk={"max_trade_pct": 1.0}), "'risk' is not allowed: the advisor cannot change"),
    (_no_change(limits={}), "'limits' is not allowed"),
    (_no_change(max_position=1), "'max_position' is not allowed"),
    (_no_change(drawdown_halt_pct=0.9), "'drawdown_halt_pct' is not allowed"),
    (_no_change(kill_switch=False), "'kill_switch' is not allowed"),
    (_no_change(place_order={"side": "buy"}), "'place_order' is not allowed"),
    (_no_change(mood="bold"), "unknown field 'mood'"),
    (_no_change(predictions=[_prediction(risk_limits={})]),
     "predictions.0: field 'risk_limits' is not allowed"),
    ({**BASE, "action": "create_candidate", "tier": 1, "params": {"max_trade_pct": 0.9}},
     "'max_trade_pct' is a risk limit"),
    ({**BASE, "action": "create_candidate", "tier": 1, "params": {"fast": "12"}},
     "params.fast: a parameter value must be a boolean or a finite number"),
    ({**BASE, "action": "create_candidate", "tier": 1, "params": {"fast": 1e10}},
     "params.fast: a parameter value"),
    ({**BASE, "action": "create_candidate", "tier": 1, "params": {"Fast-MA": 1}},
     "params.Fast-MA.[key]"),
    ({**BASE, "action": "create_candidate", "tier": 1, "params": {f"p{i}": i for i in range(33)}},
     "params: Dictionary should have at most 32 items"),
    ({**BASE, "action": "create_candidate", "tier": 1, "params": {}}, "params: Dictionary should"),
    ({**BASE, "action": "create_candidate", "params": {"fast": 1}}, "tier is required"),
    ({**BASE, "action": "create_candidate", "tier": 4, "params": {"fast": 1}}, "tier: Input"),
    ({**BASE, "action": "create_candidate", "tier": True, "params": {"fast": 1}},
     "tier: expected 1, 2 or 3, not a boolean"),
    ({**BASE, "action": "create_candidate", "tier": 1, "source": "x"},
     "params is required for create_candidate tier 1"),
    ({**BASE, "action": "create_candidate", "tier": 2, "params": {"fast": 1}},
     "params is not allowed for create_candidate tier 2"),
    ({**BASE, "action": "create_candidate", "tier": 3}, "source is required"),
    (_no_change(tier=2), "tier is not allowed for no_change"),
    (_no_change(target="ema_cross@1"), "target is not allowed for no_change"),
    ({**BASE, "action": "promote_candidate"}, "target is required for promote_candidate"),
    ({**BASE, "action": "promote_candidate", "target": "ema_cross@9"},
     "target: unknown version 'ema_cross@9'"),
    ({**BASE, "action": "cancel_candidate", "target": "ema_cross"},
     "target: 'ema_cross' is not a version reference"),
    ({**BASE, "action": "cancel_candidate", "target": "ema_cross@2", "source": "x"},
     "source is not allowed for cancel_candidate"),
    ({**BASE, "action": "update_trade_analysis"}, "source is required"),
    ({**BASE, "action": "update_trade_analysis", "source": "x" * 100_001}, "source: String"),
    ({**BASE, "action": "deploy_now"}, "action: Input should be"),
    ({"action": "no_change"}, "reasoning: Field required"),
    ({"action": "no_change", "reasoning": "  \n"}, "reasoning: text must not be blank"),
    ({"action": "no_change", "reasoning": "x" * 4001}, "reasoning: String should have at most"),
    (_no_change(observation="x" * 2001), "observation: String should have at most"),
    ({"action": "no_change", "reasoning": "a\x00b"}, "reasoning: text contains a NUL"),
    ('{"action": "no_change", "reasoning": "\\ud800"}', "not valid Unicode (lone surrogate)"),
    (_no_change(predictions=[_prediction()] * 6), "predictions: Tuple should have at most 5"),
    (_no_change(predictions=[_prediction(metric="vibes")]), "predictions.0.metric"),
    (_no_change(predictions=[_prediction(comparator="==")]), "predictions.0.comparator"),
    (_no_change(predictions=[_prediction(threshold=float("nan"))]), "not JSON data"),
    (_no_change(predictions=[_prediction(threshold="30")]), "predictions.0.threshold"),
    (_no_change(predictions=[_prediction(claim="")]), "predictions.0.claim"),
    (_no_change(predictions=[_prediction(deadline_days=0)]), "deadline_days must be an integer"),
    (_no_change(predictions=[_prediction(deadline_days=91)]), "deadline_days must be an integer"),
    (_no_change(predictions=[_prediction(deadline_days=2.5)]), "deadline_days must be"),
    (_no_change(predictions=[_prediction(deadline="2026-04-01")]), "deadline or deadline_days"),
    (_no_change(predictions=[_dated("2026-02-01")]),
     "predictions.0.deadline: 2026-02-01T00:00:00+00:00 is not after now"),
    (_no_change(predictions=[_dated("2026-09-01")]),
     "within 90 days"),
    (_no_change(predictions=[_dated("2026-03-05T00:00")]),
     "deadline needs a timezone"),
    (_no_change(predictions=[_dated("soon")]),
     "is not an ISO 8601"),
    (_no_change(predictions=[_dated(1_800_000_000)]),
     "predictions.0.deadline: Input should be"),
    (_no_change(predictions=[_prediction(subject="ema_cross@7")]),
     "predictions.0.subject: unknown version"),
    (_no_change(predictions=[_prediction(subject="candidate")]),
     "predictions.0.subject: 'candidate' is not a version reference"),
    (_no_change(when=NOW.date()), "unknown field 'when'"),
    (_no_change(blob=object()), "not JSON data"),
]


@pytest.mark.parametrize(("raw", "reason"), REJECTED, ids=lambda v: str(v)[:50])
def test_rejections_carry_one_clear_reason(raw: Any, reason: str) -> None:
    with pytest.raises(AdvisorOutputRejected) as caught:
        _parse(raw)
    message = str(caught.value)
    assert reason in message, message
    assert "\n" not in message and message.startswith("advisor output rejected: ")
    assert isinstance(caught.value, DataError) and caught.value.reason in message


def test_a_naive_now_is_a_caller_bug_not_an_advisor_fault() -> None:
    with pytest.raises(DataError, match="timezone-aware") as caught:
        parse_decision({**BASE, "action": "no_change"}, known_versions=KNOWN,
                       now=datetime(2026, 3, 1))
    assert not isinstance(caught.value, AdvisorOutputRejected)
