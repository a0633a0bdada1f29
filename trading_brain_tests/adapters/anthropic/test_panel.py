"""The panel: several analyst votes, a decision needs more than half of the seats on one
(action, target); a split or a tie is ``no_change`` with the counts; every vote is recorded."""

from __future__ import annotations

import json

import pytest

from trading_brain.adapters.anthropic.roles import Vote, tally
from trading_brain.adapters.anthropic.wire import AnalystReply
from trading_brain.errors import AdvisorOutputRejected
from trading_brain_tests.adapters.anthropic import helpers as h
from trading_brain_tests.fakes.anthropic_server import FakeAnthropic, ok, text

PROMOTE = h.decision("promote_candidate", target="ema_cross@2")
CANCEL = h.decision("cancel_candidate", target="ema_cross@2")
KEEP = h.decision()


@pytest.fixture
def fa():
    with FakeAnthropic(api_key=h.KEY) as server:
        yield server


def panel_record(store) -> dict:
    [row] = [r for r in h.thoughts(store) if r["step"] == "panel"]
    return json.loads(row["content"])


def test_a_majority_decides_and_every_vote_is_recorded(fa, store):
    fa.script(ok(PROMOTE), ok(KEEP), ok(PROMOTE))
    adv = h.advisor(fa, store, panel=3, max_reply_retries=0)
    d = adv.decide(h.ctx())
    assert (d.action, d.target) == ("promote_candidate", "ema_cross@2")
    rec = panel_record(store)
    assert rec["outcome"] == "2 of 3 votes for promote_candidate ema_cross@2"
    assert [(v["seat"], v["action"]) for v in rec["votes"]] == [
        (1, "promote_candidate"), (2, "no_change"), (3, "promote_candidate")]
    assert adv.last_votes == rec["votes"]
    assert {r["step"] for r in h.thoughts(store)} >= {"analyst.1", "analyst.2", "analyst.3"}
    assert len(h.usage_rows(store)) == 3


def test_a_split_panel_is_no_change_with_the_counts(fa, store):
    fa.script(ok(PROMOTE), ok(CANCEL), ok(KEEP))
    d = h.advisor(fa, store, panel=3, max_reply_retries=0).decide(h.ctx())
    assert d.action == "no_change"
    assert d.reasoning.startswith("No change: no majority among 3 votes (a tie): ")
    assert "promote_candidate ema_cross@2: 1" in d.reasoning


def test_an_odd_reply_cannot_move_the_fund(fa, store):
    fa.script(ok(PROMOTE), text("garbage"), ok(CANCEL))
    d = h.advisor(fa, store, panel=3, max_reply_retries=0).decide(h.ctx())
    assert d.action == "no_change"
    votes = panel_record(store)["votes"]
    assert [v["valid"] for v in votes] == [True, False, True]
    assert "not the JSON of the schema" in votes[1]["reason"]


def test_five_seats_need_three_votes(fa, store):
    fa.script(ok(PROMOTE), ok(PROMOTE), text("x"), ok(KEEP), text("y"))
    d = h.advisor(fa, store, panel=5, max_reply_retries=0).decide(h.ctx())
    assert d.action == "no_change" and "no majority among 5 votes" in d.reasoning
    fa.script(*[ok(PROMOTE)] * 3, ok(KEEP), text("z"))
    d = h.advisor(fa, store, panel=5, max_reply_retries=0).decide(h.ctx("cycle-2"))
    assert d.action == "promote_candidate"


def test_no_valid_vote_is_a_rejection(fa, store):
    fa.script(text("a"), text("b"), text("c"))
    with pytest.raises(AdvisorOutputRejected, match="no valid vote"):
        h.advisor(fa, store, panel=3, max_reply_retries=0).decide(h.ctx())
    assert [v["valid"] for v in panel_record(store)["votes"]] == [False] * 3


def reply(**over) -> AnalystReply:
    return AnalystReply.model_validate(h.decision(**over))


@pytest.mark.parametrize("keys, seats, winner", [
    ([("no_change", None)], 1, ("no_change", None)),
    ([("a", "x@1"), ("a", "x@1"), ("b", None)], 3, ("a", "x@1")),
    ([("a", "x@1"), ("a", "x@2"), ("a", "x@1")], 3, ("a", "x@1")),
    ([("a", "x@1"), ("a", "x@2"), None], 3, None),
    ([("a", None), ("a", None), None, None, ("b", None)], 5, None),
])
def test_tally(keys, seats, winner):
    votes = [Vote(i, reply() if k else None, k, "" if k else "bad") for i, k in enumerate(keys)]
    got, outcome = tally(votes, seats)
    assert (got.key if got else None) == winner, outcome


def test_the_panel_shares_one_cached_context(fa, store):
    fa.script(ok(KEEP), ok(KEEP), ok(KEEP))
    h.advisor(fa, store, panel=3).decide(h.ctx())
    firsts = [b["messages"][0]["content"] for b in fa.calls()]
    assert all(c == firsts[0] for c in firsts)
    assert firsts[0][0]["cache_control"] == {"type": "ephemeral"}
    rows = sorted(h.usage_rows(store), key=lambda r: r["call_id"])
    assert rows[0]["cache_write_tokens"] > 1_000 and rows[0]["cache_read_tokens"] == 0
    assert all(r["cache_read_tokens"] == rows[0]["cache_write_tokens"] for r in rows[1:])
