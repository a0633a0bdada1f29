"""``AnthropicAdvisor``: the ``ports.Advisor`` that asks Claude (analyst panel, coder, reviewer).

Contract (the cycle in ``app/evolve`` drives it; nothing it returns is trusted):

- ``AnthropicAdvisor.open(settings, secrets, store)`` builds the SDK client once
  (``client.make_client``) and checks every configured model with ``models.list()`` (one-line
  ``ConfigError`` for an unknown one). ``store`` is the warehouse (``ai_thoughts``,
  ``token_usage``, graded predictions, promotion reviews).
- ``decide(context) -> Decision``: ``[advisor] panel`` analyst votes (steps ``analyst.1`` …),
  the tally (``roles.tally``, recorded as step ``panel``; also in ``last_votes``), then, when the
  winning vote needs code (tier 2/3, an analysis update), ONE coder call (step ``coder``) whose
  source passed the static gate; the result goes through ``parse_decision`` again. A split panel
  → ``no_change`` with the counts; a call the token budget cannot afford → ``no_change`` with the
  budget's reason (step ``budget``); no valid vote, or a coder that could not deliver →
  ``AdvisorOutputRejected`` with the reason (the cycle records it; nothing changes).
  ``pending_code`` is the ``CodeRequest`` behind the decision's source (None when no code).
- ``write_code(request, repair=None) -> str``: the cycle's repair loop: after a gate failure it
  calls ``write_code(advisor.pending_code, Repair(source, (message, …)))`` at most
  ``advisor.max_repairs`` times and runs every gate again on the new source.
- ``review(request) -> Review``: the reviewer's verdict (step ``reviewer``); ``reject`` ends
  the candidate with its concerns as the reason. Both raise ``AdvisorOutputRejected`` when the
  reply stays unusable or the budget cannot afford the call (``budget.OverBudget``).
- ``usage()``: the tokens and cost of the current cycle so far (also in ``token_usage``).

Secrets: the API key lives only in the SDK client; prompts are built from the context, the
settings (no secret fields) and the warehouse; nothing here logs a request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import anthropic

from trading_brain.adapters.anthropic.budget import Budget, OverBudget, Spool
from trading_brain.adapters.anthropic.call import Caller, Thoughts, ThoughtStore
from trading_brain.adapters.anthropic.client import check_models, make_client
from trading_brain.adapters.anthropic.roles import (
    Vote,
    analyst_message,
    code_check,
    code_request,
    coder_message,
    reviewer_message,
    tally,
    vote_check,
    vote_key,
    votes_record,
)
from trading_brain.adapters.anthropic.wire import (
    AnalystReply,
    CodeRequest,
    CoderReply,
    Repair,
    Review,
    ReviewRequest,
    raw_decision,
)
from trading_brain.engine.evolution.context import EvolutionContext
from trading_brain.engine.evolution.decision import Decision, parse_decision
from trading_brain.errors import AdvisorOutputRejected, ConfigError
from trading_brain.settings import Secrets, Settings

MEMORY_ROWS = 20


class AnthropicAdvisor:
    """The anthropic advisor (module docstring)."""

    name = "anthropic"

    def __init__(self, client: anthropic.Anthropic, settings: Settings, store: ThoughtStore, *,
                 document: Callable[[], str] | None = None) -> None:
        self.client, self.settings, self.store = client, settings, store
        self.document = document
        self.max_repairs = settings.advisor.max_repairs
        self.pending_code: CodeRequest | None = None
        self.last_votes: list[dict[str, Any]] = []
        self._caller: Caller | None = None

    @classmethod
    def open(cls, settings: Settings, secrets: Secrets, store: ThoughtStore, *,
             document: Callable[[], str] | None = None) -> AnthropicAdvisor:
        """Client from settings and secrets; every configured model checked against the API."""
        a = settings.advisor
        client = make_client(a, secrets)
        check_models(client, {a.analyst_model, a.coder_model, a.reviewer_model})
        return cls(client, settings, store, document=document)

    def begin(self, cycle_id: str, now: datetime) -> Caller:
        """The calls of cycle ``cycle_id`` (thoughts and budget); ``decide`` calls it."""
        c = self._caller
        if c is None or c.thoughts.cycle_id != cycle_id:
            spool = Spool(self.store)
            with self.store.session():
                budget = Budget(self.store, self.settings.advisor, cycle_id, now, spool)
                thoughts = Thoughts(self.store, cycle_id, now, spool)
            c = self._caller = Caller(self.client, self.settings, budget, thoughts)
            self.pending_code, self.last_votes = None, []
        return c

    def _current(self) -> Caller:
        if self._caller is None:
            raise ConfigError("the anthropic advisor has no cycle yet: call decide() or begin()")
        return self._caller

    def usage(self) -> dict[str, float]:
        b = self._current().budget
        return {"calls": b.calls, "tokens": b.cycle_tokens, "input_tokens": b.cycle_input,
                "cost_usd": b.cycle_cost}

    def _memory(self) -> dict[str, Any]:
        graded = [r for r in self.store.evolution_rows("predictions", order="created_at DESC")
                  if r.get("status") != "open"][:MEMORY_ROWS]
        scorecard = self.store.evolution_rows("promotion_reviews",
                                              order="promoted_at DESC")[:MEMORY_ROWS]
        keep = ("subject", "claim", "metric", "comparator", "threshold", "deadline", "status",
                "graded_value", "grade_reason")
        return {"document": self.document() if self.document else "",
                "graded": [{k: r.get(k) for k in keep} for r in graded],
                "scorecard": [{k: v for k, v in r.items() if k != "details"}
                              for r in scorecard]}

    def _no_change(self, ctx: EvolutionContext, reason: str) -> Decision:
        return parse_decision({"action": "no_change", "reasoning": f"No change: {reason}"},
                              known_versions=ctx.known_versions, now=ctx.now)

    def decide(self, context: EvolutionContext) -> Decision:
        """Tonight's decision (module docstring)."""
        ctx = context
        with self.store.session():
            caller = self.begin(ctx.cycle_id, ctx.now)
            memory = self._memory()
        try:
            seats = self.settings.advisor.panel
            user = analyst_message(ctx, memory, caller.budget.left(), scale=2 / (seats + 1))
            votes = [self._vote(caller, ctx, seat, user)
                     for seat in range(1, self.settings.advisor.panel + 1)]
            winner, outcome = tally(votes, self.settings.advisor.panel)
            record = votes_record(votes, outcome)
            self.last_votes = record["votes"]
            caller.thoughts.add("panel", "host", json.dumps(record))
            caller.flush()
            if winner is None or winner.reply is None:
                if all(v.key is None for v in votes):
                    raise AdvisorOutputRejected(f"analyst: {outcome}")
                return self._no_change(ctx, outcome)
            reply, source = winner.reply, None
            if reply.needs_code:
                self.pending_code = code_request(ctx, reply)
                source = self.write_code(self.pending_code)
            return parse_decision(raw_decision(reply, source), known_versions=ctx.known_versions,
                                  now=ctx.now)
        except OverBudget as e:
            caller.thoughts.add("budget", "host", e.reason)
            caller.flush()
            return self._no_change(ctx, e.reason)

    def _vote(self, caller: Caller, ctx: EvolutionContext, seat: int, user: str) -> Vote:
        try:
            reply = caller.ask("analyst", f"analyst.{seat}", user, AnalystReply, vote_check(ctx),
                               cache_user=self.settings.advisor.panel > 1)
        except OverBudget:
            raise
        except AdvisorOutputRejected as e:
            return Vote(seat, None, reason=e.reason)
        return Vote(seat, reply, vote_key(reply, ctx))

    def write_code(self, request: CodeRequest, repair: Repair | None = None) -> str:
        """The module ``request`` asks for (after ``repair``'s gate failures, when given)."""
        reply = self._current().ask("coder", "coder", coder_message(request, repair),
                                    CoderReply, code_check(request))
        return reply.source

    def review(self, request: ReviewRequest) -> Review:
        """The reviewer's verdict on a candidate that passed the gates."""
        return self._current().ask("reviewer", "reviewer", reviewer_message(request), Review)

