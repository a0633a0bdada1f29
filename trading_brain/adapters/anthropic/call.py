"""One structured call to the Messages API: counted, budgeted, recorded, validated, re-asked.

``Caller.ask(role, step, user, schema, check=None)`` returns a validated ``schema`` instance:

1. the request: the role's system blocks (``prompts.system_blocks``, cached prefix), one user
   message, ``output_config.format`` = the schema's JSON schema (``anthropic.transform_schema``);
   ``messages.create`` rather than ``messages.parse`` because ``parse`` validates inside the
   SDK before ``stop_reason`` and ``usage`` can be read (a truncated reply would lose its cost);
2. ``messages.count_tokens`` on exactly that request, then ``Budget.admit`` (``OverBudget``
   propagates: the call is not sent);
3. the SDK sends it with its own retries and timeout (``client.make_client``); a failure left
   after them is ``AdvisorOutputRejected`` with a secret-free reason;
4. every reply's usage and cost go to ``token_usage`` (``call_id`` = ``cycle:step:seq``);
5. the reply is rejected when ``stop_reason`` is ``refusal``, ``max_tokens`` or anything but
   ``end_turn``/``stop_sequence``, when its text is not JSON of the schema, or when ``check``
   raises ``AdvisorOutputRejected``; then it is asked again with the reason (at most
   ``[advisor] max_reply_retries`` times), and finally ``AdvisorOutputRejected`` names the last
   reason.

``Thoughts`` writes ``ai_thoughts`` rows ``(cycle_id, step, seq)``: each role's system prompt
once per cycle (step ``system.<role>``: it is the same for every call of the role), every user
message, every reply (role ``assistant``) and every rejection (role ``host``); per step, ``seq``
continues after the rows already stored, so a re-run after a crash loses nothing. Rows go
through the ``Spool``: ``ask`` flushes them with the reply's usage after every reply, failure or
budget stop, so each reply is durable before the next call and no warehouse connection is held
while the API thinks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import anthropic
from anthropic.types import MessageParam, TextBlockParam
from anthropic.types.output_config_param import OutputConfigParam
from pydantic import BaseModel, ValidationError

from trading_brain.adapters.anthropic.budget import Budget, CallUsage, Spool, UsageStore
from trading_brain.adapters.anthropic.client import api_failure
from trading_brain.adapters.anthropic.prompts import system_blocks
from trading_brain.errors import AdvisorOutputRejected
from trading_brain.settings import Settings

T = TypeVar("T", bound=BaseModel)
ACCEPTED_STOPS = ("end_turn", "stop_sequence")


ThoughtStore = UsageStore  # the warehouse side the advisor writes and reads (``Store``)


class Thoughts:
    """The ``ai_thoughts`` of one cycle (module docstring)."""

    def __init__(self, store: ThoughtStore, cycle_id: str, now: datetime, spool: Spool) -> None:
        self.cycle_id, self.now, self.spool = cycle_id, now, spool
        self._next: dict[str, int] = {}
        for r in store.evolution_rows("ai_thoughts", {"cycle_id": cycle_id}):
            self._next[r["step"]] = max(self._next.get(r["step"], 0), int(r["seq"]) + 1)

    def has(self, step: str) -> bool:
        return step in self._next

    def add(self, step: str, role: str, content: str) -> int:
        seq = self._next.get(step, 0)
        self._next[step] = seq + 1
        self.spool.put("ai_thoughts", {
            "cycle_id": self.cycle_id, "step": step, "seq": seq, "role": role,
            "content": content, "created_at": self.now})
        return seq


def _problem(e: ValidationError) -> str:
    first = e.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"])
    more = e.error_count() - 1
    return (f"{loc + ': ' if loc else ''}{first['msg']}"
            + (f" (and {more} more)" if more else ""))


class Caller:
    """Structured calls of one cycle (module docstring)."""

    def __init__(self, client: anthropic.Anthropic, settings: Settings, budget: Budget,
                 thoughts: Thoughts) -> None:
        self.client, self.settings, self.budget, self.thoughts = client, settings, budget, thoughts
        self._system: dict[str, list[TextBlockParam]] = {}

    def system(self, role: str) -> list[TextBlockParam]:
        if role not in self._system:
            self._system[role] = system_blocks(role, self.settings)
        return self._system[role]

    def ask(self, role: str, step: str, user: str, schema: type[T],
            check: Callable[[T], None] | None = None, *, cache_user: bool = False) -> T:
        """A validated reply of ``role`` to ``user`` (module docstring); ``cache_user`` puts a
        cache breakpoint on the user message too (a panel asks the same one several times)."""
        system = self.system(role)
        if not self.thoughts.has(f"system.{role}"):
            self.thoughts.add(f"system.{role}", "system", "\n\n".join(b["text"] for b in system))
        try:
            return self._ask(role, step, user, schema, check, cache_user)
        finally:
            self.flush()

    def flush(self) -> None:
        """Write the buffered thoughts and usage (one warehouse session)."""
        self.thoughts.spool.flush()

    def _ask(self, role: str, step: str, user: str, schema: type[T],
             check: Callable[[T], None] | None, cache_user: bool) -> T:
        a = self.settings.advisor
        model, system = a.model_for(role), self.system(role)
        output: OutputConfigParam = {"format": {"type": "json_schema",
                                                "schema": anthropic.transform_schema(schema)}}
        first: MessageParam = {"role": "user", "content": [
            {"type": "text", "text": user, "cache_control": {"type": "ephemeral"}}]} \
            if cache_user else {"role": "user", "content": user}
        messages: list[MessageParam] = [first]
        problem, shown = "", user
        for attempt in range(a.max_reply_retries + 1):
            counted = self.client.messages.count_tokens(
                model=model, system=system, messages=messages, output_config=output).input_tokens
            self.budget.admit(role, counted, a.max_output_tokens)
            self.thoughts.add(step, "user", shown)
            try:
                msg = self.client.messages.create(model=model, max_tokens=a.max_output_tokens,
                                                  system=system, messages=messages,
                                                  output_config=output)
            except anthropic.APIError as e:
                reason = f"{role}: {api_failure(e)}"
                self.thoughts.add(step, "host", f"failed: {reason}")
                raise AdvisorOutputRejected(reason) from e
            text = "".join(b.text for b in msg.content if b.type == "text")
            seq = self.thoughts.add(step, "assistant", text or f"[no text; {msg.stop_reason}]")
            u = msg.usage
            self.budget.record(f"{self.thoughts.cycle_id}:{step}:{seq}", role, model, CallUsage(
                u.input_tokens, u.output_tokens, u.cache_creation_input_tokens or 0,
                u.cache_read_input_tokens or 0))
            self.flush()
            keep = False
            if msg.stop_reason == "refusal":
                problem = "the model refused to answer"
            elif msg.stop_reason == "max_tokens":
                problem = f"the reply was cut off at max_tokens ({a.max_output_tokens})"
            elif msg.stop_reason not in ACCEPTED_STOPS:
                problem = f"unexpected stop_reason {msg.stop_reason!r}"
            else:
                keep = bool(text.strip())
                try:
                    value = schema.model_validate_json(text)
                    if check is not None:
                        check(value)
                    return value
                except ValidationError as e:
                    problem = f"not the JSON of the schema: {_problem(e)}"
                except AdvisorOutputRejected as e:
                    problem = e.reason
            self.thoughts.add(step, "host", f"rejected (attempt {attempt + 1}): {problem}")
            shown = (f"Your previous reply was rejected: {problem}. Reply again with only the "
                     "JSON object of the schema.")
            messages = _again(user, text if keep else "", shown)
        raise AdvisorOutputRejected(
            f"{role}: {problem} (after {a.max_reply_retries + 1} attempts)")


def _again(user: str, reply: str, note: str) -> list[MessageParam]:
    """The conversation that asks again: the bad reply (when it can be shown) and why."""
    if reply:
        return [{"role": "user", "content": user}, {"role": "assistant", "content": reply},
                {"role": "user", "content": note}]
    return [{"role": "user", "content": [{"type": "text", "text": user},
                                         {"type": "text", "text": note}]}]
