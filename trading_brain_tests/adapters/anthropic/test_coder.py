"""The coder: code that fails to compile or breaks the import allowlist is sent back with the
static gate's exact messages; hostile code the static gate cannot see (look-ahead, a CPU bomb)
is stopped by the REAL registration gates (sandbox, look-ahead) and repaired through
``write_code(request, Repair(...))`` as the cycle does; nothing bad is ever recorded."""

from __future__ import annotations

import json

import pytest

from trading_brain.adapters.anthropic.wire import Repair
from trading_brain.app.research.register import open_workers, sample_bars
from trading_brain.engine.registry import register
from trading_brain.errors import AdvisorOutputRejected, StrategyError
from trading_brain.settings import parse_settings
from trading_brain_tests.adapters.anthropic import helpers as h
from trading_brain_tests.adapters.sandbox.helpers import ESCAPES
from trading_brain_tests.fakes.anthropic_server import FakeAnthropic, ok

TIER2 = h.decision("create_candidate", tier=2, code_brief="Use the previous bar's EMAs.")
BROKEN = h.v3_source().replace("def generate(bars: pl.DataFrame, params: Params)",
                               "def generate(bars: pl.DataFrame, params: Params")
FORBIDDEN = "import os\n" + h.v3_source()
ESCAPE = (ESCAPES / "a03_read_etc_passwd.py").read_text().replace('"attack"', '"ema_cross"') \
    .replace("VERSION = 1", "VERSION = 3")
CPU_BOMB = (ESCAPES / "a14_cpu_bomb.py").read_text().replace('"attack"', '"ema_cross"') \
    .replace("VERSION = 1", "VERSION = 3")


@pytest.fixture
def fa():
    with FakeAnthropic(api_key=h.KEY) as server:
        yield server


def retry_notes(fa) -> list[str]:
    return [json.dumps(b["messages"][1:]) for b in fa.calls() if len(b["messages"]) > 1]


def test_a_tier2_decision_carries_the_coders_source(fa, store):
    fa.script(ok(TIER2), ok(h.code(h.v3_source())))
    adv = h.advisor(fa, store)
    d = adv.decide(h.ctx())
    assert (d.action, d.tier, d.source) == ("create_candidate", 2, h.v3_source())
    req = adv.pending_code
    assert req is not None and (req.kind, req.ref, req.parent) == ("strategy", "ema_cross@3",
                                                                  "ema_cross@1")
    assert req.parent_source == h.EMA_SOURCE and req.brief == TIER2["code_brief"]
    coder_prompt = fa.calls()[1]["messages"][0]["content"]
    assert "STRATEGY_ID = 'ema_cross', VERSION = 3" in coder_prompt
    assert "Use the previous bar's EMAs." in coder_prompt
    assert [r["role"] for r in h.thoughts(store) if r["step"] == "coder"] == [
        "user", "assistant"]
    assert [r["role"] for r in h.thoughts(store) if r["step"] == "system.coder"] == ["system"]


@pytest.mark.parametrize("bad, finding", [
    (BROKEN, "[syntax] syntax error"),
    (FORBIDDEN, "[import]"),
    (ESCAPE, "the static gate refused the source"),
    (h.v3_source().replace("VERSION = 3", "VERSION = 7"), "must be 'ema_cross'/3, got"),
])
def test_the_static_gate_sends_code_back_with_its_messages(fa, store, bad, finding):
    fa.script(ok(TIER2), ok(h.code(bad)), ok(h.code(h.v3_source())))
    d = h.advisor(fa, store).decide(h.ctx())
    assert d.source == h.v3_source()
    notes = retry_notes(fa)
    assert len(notes) == 1 and finding in notes[0], notes


def test_code_that_stays_hostile_is_rejected_and_no_decision_is_made(fa, store):
    fa.script(ok(TIER2), ok(h.code(ESCAPE)), ok(h.code(FORBIDDEN)), ok(h.code(ESCAPE)))
    with pytest.raises(AdvisorOutputRejected, match="coder: the static gate refused"):
        h.advisor(fa, store).decide(h.ctx())


@pytest.fixture(scope="module")
def workers():
    s = parse_settings({"sandbox": {"call_timeout_s": 2.0, "validation_budget_s": 60.0}})
    w = open_workers(s)
    yield w
    w.close()


@pytest.mark.slow
@pytest.mark.parametrize("hostile, message", [
    (h.v3_source(h.LOOKAHEAD_LINE), "lookahead check failed"),
    (CPU_BOMB, "timed out"),
], ids=["look-ahead", "cpu-bomb"])
def test_the_real_gates_stop_what_the_static_gate_cannot_see(fa, store, workers, hostile,
                                                              message):
    fa.script(ok(TIER2), ok(h.code(hostile)))
    adv = h.advisor(fa, store)
    source = adv.decide(h.ctx()).source or ""
    assert source == hostile  # the advisor's own checks pass it: the gates must stop it
    bars = sample_bars()
    with pytest.raises(StrategyError, match=message) as err:
        register(store, source, workers.validate, bars, reason="candidate", parent_version=1)
    assert store.strategy_version("ema_cross", 3) is None
    # the cycle's repair loop: the exact message goes back to the coder
    assert adv.pending_code is not None and adv.max_repairs == 2
    fa.script(ok(h.code(h.v3_source())))
    fixed = adv.write_code(adv.pending_code, Repair(source, (str(err.value),)))
    assert str(err.value)[:200] in fa.calls()[-1]["messages"][0]["content"]
    row, created = register(store, fixed, workers.validate, bars, reason="candidate",
                            parent_version=1)
    assert created and row["version"] == 3
