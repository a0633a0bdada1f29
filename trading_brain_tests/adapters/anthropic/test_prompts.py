"""The prompts: separate constants in the system blocks, the cache breakpoint on the static
prefix, rules filled in from the config, the worked example equal to the shipped file, and the
sizes per role within the default per-cycle budget (counted like ``count_tokens``: chars / 4)."""

from __future__ import annotations

from trading_brain.adapters.anthropic import prompts
from trading_brain.adapters.anthropic.roles import (
    analyst_message,
    coder_message,
    reviewer_message,
)
from trading_brain.adapters.anthropic.wire import CodeRequest, ReviewRequest
from trading_brain.settings import Settings, parse_settings
from trading_brain_tests.adapters.anthropic import helpers as h
from trading_brain_tests.fakes.anthropic_server import count


def test_the_worked_example_is_the_shipped_reference_strategy():
    assert prompts.WORKED_EXAMPLE == h.EMA_SOURCE


def test_system_blocks_are_the_separate_constants_with_one_cache_breakpoint():
    for role, instruction in prompts.ROLES.items():
        blocks = prompts.system_blocks(role, Settings())
        texts = [b["text"] for b in blocks]
        assert texts[0] == prompts.IDENTITY and texts[1] == prompts.MANDATE
        assert texts[3:6] == [prompts.STRATEGY_CONTRACT, prompts.WORKED_EXAMPLE,
                              prompts.ANALYSIS_CONTRACT]
        assert texts[-1] == instruction
        assert [b.get("cache_control") for b in blocks] == [None] * 6 + [{"type": "ephemeral"}]
    assert ("portfolio growth with capital preservation; avoid major drawdowns; a long-term "
            "fund") in prompts.MANDATE


def test_the_rules_are_filled_in_from_the_config():
    s = parse_settings({"risk": {"max_trade_pct": 0.03, "drawdown_halt_pct": 0.25},
                        "evolution": {"margin": 0.02, "max_candidates": 2},
                        "advisor": {"daily_token_budget": 123_456}})
    text = prompts.rules(s)
    for part in ("max_trade_pct = 0.03: max order cost / equity", "drawdown_halt_pct = 0.25",
                 "out-of-sample edge > 0.02", "At most 2 candidates", "123456 tokens a day"):
        assert part in text


def sizes() -> dict[str, int]:
    """Input tokens per role call (system + user message, the schema aside)."""
    s = Settings()
    ctx = h.ctx()
    req = CodeRequest("strategy", "ema_cross", 3, "Add a 1h trend filter.", 2, "ema_cross@1",
                      h.EMA_SOURCE)
    users = {"analyst": analyst_message(ctx, {"document": "x" * 2000}, {"left": 1}),
             "coder": coder_message(req),
             "reviewer": reviewer_message(ReviewRequest(
                 "ema_cross@3", h.v3_source(h.LOOKAHEAD_LINE), "ema_cross@1", h.EMA_SOURCE,
                 {"gates": [{"gate": "dsr", "value": 0.97}]}, "Use the previous bar."))}
    return {role: count({"system": prompts.system_blocks(role, s),
                         "messages": [{"role": "user", "content": users[role]}]})
            for role in users}


def test_prompt_sizes_fit_the_default_cycle_budget():
    got = sizes()
    print("prompt sizes (tokens, chars/4):", got)
    assert all(1_500 < n < 12_000 for n in got.values()), got
    assert 5 * got["analyst"] + got["coder"] + got["reviewer"] <= 60_000  # panel of 5


def test_analyst_sections_are_capped():
    ctx = h.ctx()
    big = ctx.__class__(**{**ctx.__dict__, "benchmarks": {"x": "y" * 100_000}})
    text = analyst_message(big, {}, {})
    assert "[cut: " in text and len(text) < 60_000


def test_a_full_context_fits_the_default_cycle_budget_for_every_panel():
    ctx = h.ctx()
    huge = ctx.__class__(**{**ctx.__dict__, "benchmarks": {"x": "y" * 100_000},
                            "reports": {"r": "z" * 100_000},
                            "observations": ("o" * 10_000,),
                            "open_predictions": ({"claim": "p" * 10_000},)})
    memory = {"document": "d" * 10_000, "graded": [{"claim": "g" * 10_000}],
              "scorecard": [{"x": "s" * 10_000}]}
    system = prompts.system_blocks("analyst", Settings())
    worst = {}
    for seats in (1, 3, 5):
        user = analyst_message(huge, memory, {"left": 1}, scale=2 / (seats + 1))
        worst[seats] = seats * count({"system": system,
                                      "messages": [{"role": "user", "content": user}]})
    print("worst-case analyst input tokens per cycle by panel:", worst)
    assert all(n <= 40_000 for n in worst.values()), worst
