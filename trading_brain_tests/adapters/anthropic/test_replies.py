"""Every scripted mode of the fake, through the real SDK (``base_url``): good, malformed, out of
schema, refused, truncated, 429, 529, timeouts, hostile fields; each reply stored and costed."""

from __future__ import annotations

import json

import pytest
from anthropic.types import Message

from trading_brain.adapters.anthropic import prompts
from trading_brain.errors import AdvisorOutputRejected
from trading_brain_tests.adapters.anthropic import helpers as h
from trading_brain_tests.fakes.anthropic_server import (
    FakeAnthropic,
    ok,
    overloaded,
    rate_limited,
    refusal,
    slow,
    text,
    truncated,
)


@pytest.fixture
def fa():
    with FakeAnthropic(api_key=h.KEY) as server:
        yield server


def steps(store, role: str = "analyst.1") -> list[tuple[str, str]]:
    return [(r["role"], r["content"]) for r in h.thoughts(store) if r["step"] == role]


def test_a_good_decision_is_parsed_stored_and_costed(fa, store):
    fa.script(ok(h.decision("promote_candidate", target="ema_cross@2")))
    d = h.advisor(fa, store).decide(h.ctx())
    assert (d.action, d.target) == ("promote_candidate", "ema_cross@2")
    assert d.predictions[0].deadline == h.NOW.replace(day=12)
    roles = [r for r, _ in steps(store)]
    assert roles == ["user", "assistant"]
    assert json.loads(steps(store)[1][1])["action"] == "promote_candidate"
    [system] = steps(store, "system.analyst")
    assert system[0] == "system" and system[1].startswith(prompts.IDENTITY)
    [usage] = h.usage_rows(store)
    assert usage["role"] == "analyst" and usage["cost_usd"] > 0
    body = fa.calls()[0]
    assert body["output_config"]["format"]["type"] == "json_schema"
    assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert len(fa.calls("/v1/messages/count_tokens")) == 1


@pytest.mark.parametrize("bad, reason", [
    (text("{'action': 'no_change'"), "not the JSON of the schema: Invalid JSON"),
    (ok({"action": "no_change"}), "not the JSON of the schema: reasoning: Field required"),
    (ok(h.decision("sell_everything")), "not the JSON of the schema: action: Input should be"),
    (refusal(), "the model refused to answer"),
    (truncated(), "the reply was cut off at max_tokens (8000)"),
    (ok(h.decision("promote_candidate", target="ema_cross@9")),
     "target: unknown version 'ema_cross@9'"),
    (ok(h.decision("create_candidate", tier=1,
                   params=[{"name": "max_position_pct", "value": 1.0}])),
     "is a risk limit: the advisor cannot change risk limits"),
    (ok(h.decision("update_market_analysis")), "code_brief is required"),
])
def test_a_bad_reply_is_asked_again_with_the_reason(fa, store, bad, reason):
    fa.script(bad, ok(h.decision()))
    d = h.advisor(fa, store).decide(h.ctx())
    assert d.action == "no_change"
    hosts = [c for r, c in steps(store) if r == "host"]
    assert len(hosts) == 1 and reason in hosts[0], hosts
    retry = fa.calls()[1]["messages"]
    assert reason in json.dumps(retry)
    assert len(h.usage_rows(store)) == 2  # the rejected reply is costed too


def test_a_reply_that_stays_bad_is_rejected_with_the_last_reason(fa, store):
    fa.script(refusal(), truncated(), text("nope"))
    with pytest.raises(AdvisorOutputRejected, match=r"no valid vote: analyst: not the JSON .* "
                                                    r"\(after 3 attempts\)"):
        h.advisor(fa, store).decide(h.ctx())
    assert [c.split(":")[0] for r, c in steps(store) if r == "host"] == [
        "rejected (attempt 1)", "rejected (attempt 2)", "rejected (attempt 3)"]
    assert len(h.usage_rows(store)) == 3


@pytest.mark.parametrize("fault", [rate_limited(0.01), overloaded(0.01)], ids=["429", "529"])
def test_the_sdk_retries_429_and_529_itself_once_configured(fa, store, fault):
    fa.script(fault, ok(h.decision()))
    assert h.advisor(fa, store).decide(h.ctx()).action == "no_change"
    assert len(fa.calls()) == 2  # one HTTP retry by the SDK, no reply retry on top
    assert [r for r, _ in steps(store)] == ["user", "assistant"]


def test_overload_past_the_sdk_retries_is_rejected_with_a_clean_reason(fa, store):
    fa.script(overloaded(0.01), overloaded(0.01), overloaded(0.01))
    with pytest.raises(AdvisorOutputRejected, match="HTTP 529 overloaded_error"):
        h.advisor(fa, store, max_retries=2).decide(h.ctx())
    assert len(fa.calls()) == 3
    assert steps(store)[-1] == ("host", "failed: analyst: HTTP 529 overloaded_error: "
                                        "overloaded error")


def test_a_timeout_is_retried_by_the_sdk(fa, store):
    fa.script(slow(1.5, ok(h.decision())), ok(h.decision("cancel_candidate",
                                                         target="ema_cross@2")))
    d = h.advisor(fa, store, timeout_s=0.4, max_retries=1).decide(h.ctx())
    assert d.action == "cancel_candidate"


def test_timeouts_past_the_sdk_retries_are_rejected(fa, store):
    fa.script(slow(1.5, ok(h.decision())), slow(1.5, ok(h.decision())))
    with pytest.raises(AdvisorOutputRejected, match="timed out"):
        h.advisor(fa, store, timeout_s=0.3, max_retries=1).decide(h.ctx())
    assert h.usage_rows(store) == []


def test_fake_replies_follow_the_sdk_schema(fa):
    import urllib.request

    fa.script(ok(h.decision()))
    req = urllib.request.Request(
        fa.url + "/v1/messages", method="POST", headers={"x-api-key": h.KEY},
        data=json.dumps({"model": "m", "max_tokens": 5,
                         "messages": [{"role": "user", "content": "x"}]}).encode())
    with urllib.request.urlopen(req) as resp:  # noqa: S310 - loopback
        raw = json.loads(resp.read())
    msg = Message.model_validate(raw)
    assert set(raw) >= set(Message.model_fields) - {"diagnostics", "stop_details"}
    assert msg.usage.cache_creation is not None
