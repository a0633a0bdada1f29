"""Cost to the cent from the reply's usage and the price table; the budget stops a call before
it is sent and the cycle gets ``no_change`` with the reason recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest

from trading_brain.adapters.anthropic.budget import CallUsage, cost_usd
from trading_brain_tests.adapters.anthropic import helpers as h
from trading_brain_tests.fakes.anthropic_server import FakeAnthropic, Usage, ok

PRICES = {"claude-sonnet-4-6": [3.0, 15.0, 3.75, 0.3], "claude-haiku-4-5": [1.0, 5.0, 1.25, 0.1]}


@pytest.fixture
def fa():
    with FakeAnthropic(api_key=h.KEY) as server:
        yield server


def test_cost_formula_per_million_tokens():
    u = CallUsage(input_tokens=1_000_000, output_tokens=1_000_000, cache_write_tokens=1_000_000,
                  cache_read_tokens=1_000_000)
    assert cost_usd(u, [3.0, 15.0, 3.75, 0.3]) == pytest.approx(22.05)


def test_cost_of_a_cycle_is_recorded_to_the_cent(fa, store):
    # analyst: 12,345 in + 2,000 cache write + 0 read + 1,234 out on sonnet:
    #   12,345·3 + 1,234·15 + 2,000·3.75 = 37,035 + 18,510 + 7,500 = 63,045 µ$ → $0.063045
    # coder on haiku: 4,000 in + 6,000 out + 0 write + 2,000 read:
    #   4,000·1 + 6,000·5 + 2,000·0.1 = 4,000 + 30,000 + 200 = 34,200 µ$ → $0.034200
    fa.script(ok(h.decision("create_candidate", tier=2, code_brief="add a trend filter"),
                 usage=Usage(12_345, 1_234, 2_000, 0)),
              ok(h.code(h.v3_source()), usage=Usage(4_000, 6_000, 0, 2_000)))
    adv = h.advisor(fa, store, coder_model="claude-haiku-4-5", prices=PRICES)
    d = adv.decide(h.ctx())
    assert d.action == "create_candidate" and d.source == h.v3_source()
    rows = {r["role"]: r for r in h.usage_rows(store)}
    assert round(rows["analyst"]["cost_usd"], 6) == 0.063045
    assert round(rows["coder"]["cost_usd"], 6) == 0.0342
    assert (rows["coder"]["model"], rows["coder"]["cache_read_tokens"]) == ("claude-haiku-4-5",
                                                                            2_000)
    assert round(adv.usage()["cost_usd"], 2) == 0.10  # 0.097245 → 10 cents
    assert store.token_totals()["cost_usd"] == pytest.approx(0.097245)


def test_a_call_over_the_cycle_budget_is_not_sent(fa, store):
    d = h.advisor(fa, store, max_input_tokens_per_cycle=1_000).decide(h.ctx())
    assert d.action == "no_change"
    assert "max_input_tokens_per_cycle 1000" in d.reasoning
    assert fa.calls() == [] and len(fa.calls("/v1/messages/count_tokens")) == 1
    budget = [r for r in h.thoughts(store) if r["step"] == "budget"]
    assert budget and "token budget" in budget[0]["content"]
    assert h.usage_rows(store) == []


def test_the_daily_budget_counts_every_call_of_the_day(fa, store):
    fa.script(ok(h.decision(), usage=Usage(5_000, 500, 0, 0)))
    first = h.advisor(fa, store, daily_token_budget=20_000, max_output_tokens=4_000)
    assert first.decide(h.ctx()).reasoning.startswith("Net P&L")
    # 5,500 spent; the next call needs ~3,900 counted + 4,000 max output more: 13,400 <= 20,000
    fa.script(ok(h.decision(), usage=Usage(9_000, 1_000, 0, 0)))
    second = h.advisor(fa, store, daily_token_budget=20_000, max_output_tokens=4_000)
    assert second.decide(h.ctx("cycle-b")).reasoning.startswith("Net P&L")
    # 15,500 spent: the third cycle of the day stops cleanly before sending
    third = h.advisor(fa, store, daily_token_budget=20_000, max_output_tokens=4_000)
    d = third.decide(h.ctx("cycle-c"))
    assert d.action == "no_change" and "15500 of daily_token_budget 20000" in d.reasoning
    assert len(fa.calls()) == 2
    # the next UTC day starts afresh
    fa.script(ok(h.decision()))
    fourth = h.advisor(fa, store, daily_token_budget=20_000, max_output_tokens=4_000)
    later = h.ctx("cycle-d", now=h.NOW + timedelta(days=1))
    assert fourth.decide(later).reasoning.startswith("Net P&L")


def test_the_budget_left_is_in_the_analyst_prompt(fa, store):
    fa.script(ok(h.decision()))
    h.advisor(fa, store, daily_token_budget=50_000).decide(h.ctx())
    user = fa.calls()[0]["messages"][0]["content"]
    assert '## token budget left\n{"daily_tokens_left":50000,"cycle_input_tokens_left":60000}' \
        in user


def test_coder_over_budget_stops_the_decision_cleanly(fa, store):
    fa.script(ok(h.decision("create_candidate", tier=2, code_brief="add a trend filter"),
                 usage=Usage(4_000, 500, 0, 0)))
    adv = h.advisor(fa, store, max_input_tokens_per_cycle=6_000)
    d = adv.decide(h.ctx())
    assert d.action == "no_change" and "the coder call needs" in d.reasoning
    assert len(fa.calls()) == 1
