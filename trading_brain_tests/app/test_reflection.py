"""The weekly reflection (app/evolve/reflection.py) on a real warehouse: once per ISO week,
observations condensed (newest kept, older ones folded into one summary), the strategy document
versioned with the old one kept, predictions graded, and the anthropic document asked of the
analyst through the loopback fake (falling back to the offline document when it fails)."""

from __future__ import annotations

from datetime import timedelta

from trading_brain.adapters.duckdb.reflection_tables import document, documents
from trading_brain.app.evolve.advisors import OfflineAdvisor
from trading_brain.app.evolve.reflection import KEEP_OBSERVATIONS, reflect, strategy_document
from trading_brain.errors import DataError
from trading_brain_tests.adapters.anthropic import helpers as h
from trading_brain_tests.fakes.anthropic_server import FakeAnthropic, ok, text


def no_lab():
    raise DataError("no lab in this test")


def observe(store, n: int) -> None:
    for i in range(n):
        store.save_evolution_row("observations", {
            "observation_id": f"c{i}:0", "cycle_id": f"c{i}", "subject": "active",
            "content": f"note {i}", "created_at": h.NOW - timedelta(days=n - i)})


def test_once_a_week_condensed_and_versioned(store):
    observe(store, KEEP_OBSERVATIONS + 5)
    store.save_evolution_row("predictions", {
        "prediction_id": "c0:0", "cycle_id": "c0", "subject": "active", "claim": "more trades",
        "metric": "trades", "comparator": ">", "threshold": 10.0,
        "deadline": h.NOW - timedelta(days=9), "created_at": h.NOW - timedelta(days=20)})
    adv = OfflineAdvisor(no_lab)
    first = reflect(store, h.ctx(), adv)
    assert first is not None and (first.version, first.author) == (1, "offline")
    assert first.condensed == 5 and first.graded == 1  # no reading past the grace: inconclusive
    graded = store.evolution_rows("predictions")[0]
    assert graded["status"] == "inconclusive" and graded["grade_reason"]
    obs = store.evolution_rows("observations", order="created_at DESC")
    assert len(obs) == KEEP_OBSERVATIONS + 1
    summary = [o for o in obs if o["subject"] == "summary"]
    assert len(summary) == 1 and all(f"note {i}" in summary[0]["content"] for i in range(5))
    assert "ema_cross@1" in strategy_document(store)
    assert reflect(store, h.ctx(), adv) is None  # the same week: nothing again
    later = h.ctx(now=h.NOW + timedelta(days=7))
    second = reflect(store, later, adv)
    assert second is not None and second.version == 2
    assert [d["version"] for d in documents(store)] == [1, 2]  # the old version is kept
    assert document(store, 1)["content"] != document(store, 2)["content"]


def test_the_anthropic_document_and_its_fallback(store):
    with FakeAnthropic(api_key=h.KEY) as fa:
        adv = h.advisor(fa, store, max_reply_retries=0)
        fa.script(ok({"document": "Fees first."}))
        got = reflect(store, h.ctx(), adv)
        assert got is not None and got.author == "anthropic"
        assert strategy_document(store) == "Fees first."
        body = fa.calls()[-1]["messages"][0]["content"]
        assert "Weekly reflection" in body and "fees_paid" in body
        fa.script(text("not json"))
        nxt = reflect(store, h.ctx(now=h.NOW + timedelta(days=7)), adv)
        assert nxt is not None and nxt.author == "offline" and "not usable" in nxt.note
    assert "not usable" in strategy_document(store)
    steps = {(t["step"], t["role"]) for t in store.evolution_rows("ai_thoughts")}
    assert ("reflection", "assistant") in steps and ("reflection", "host") in steps
