"""Token budget and cost of the AI advisor: counted before sending, recorded after every reply.

Contract:
- ``cost_usd(usage, price)``: ``(input·p_in + output·p_out + cache_write·p_cw +
  cache_read·p_cr) / 1e6`` with ``price = [p_in, p_out, p_cw, p_cr]`` USD per million tokens
  (``[advisor] prices``); ``input`` is the uncached input only, as the API reports it.
- ``Budget.admit(role, input_tokens, max_tokens)`` is called with ``count_tokens``' figure
  BEFORE a call is sent. It raises ``OverBudget`` (an ``AdvisorOutputRejected``: the cycle
  records the reason and changes nothing) when the cycle's input so far (a re-run of a killed
  cycle counts what the first run sent) plus this call would pass
  ``max_input_tokens_per_cycle``, or when today's tokens (UTC day of ``now``, every call of
  every cycle in ``token_usage``: input + cache write + cache read + output) plus this call's
  input and ``max_tokens`` would pass ``daily_token_budget``.
- ``Budget.record(call_id, role, model, usage)`` puts one ``token_usage`` row (insert once by
  ``call_id``) with the cost in the ``Spool``, for EVERY reply received, accepted or not (the
  caller flushes it with the reply's thoughts); ``left()`` is what the analyst is told. Today's
  spending is read once per cycle; the cycle's own calls are added as they come.
- ``Spool``: rows for the evolution tables, written together in one warehouse session by
  ``flush()`` (one connection per reply instead of one per row; none held during a call).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from trading_brain.domain.advisor import AdvisorSettings
from trading_brain.errors import AdvisorOutputRejected


class OverBudget(AdvisorOutputRejected):
    """A call would pass the token budget; it was not sent."""


class UsageStore(Protocol):
    """The ``token_usage`` side of the warehouse (``Store`` implements it)."""

    def save_evolution_row(self, table: str, row: Mapping[str, Any]) -> bool: ...

    def token_totals(self, since: datetime | None = None) -> dict[str, float]: ...

    def evolution_rows(self, table: str, where: Mapping[str, Any] | None = None,
                       order: str = "") -> list[dict[str, Any]]: ...

    def session(self) -> AbstractContextManager[object]: ...


class Spool:
    """Rows waiting to be written together (module docstring)."""

    def __init__(self, store: UsageStore) -> None:
        self.store = store
        self.rows: list[tuple[str, Mapping[str, Any]]] = []

    def put(self, table: str, row: Mapping[str, Any]) -> None:
        self.rows.append((table, row))

    def flush(self) -> None:
        if not self.rows:
            return
        rows, self.rows = self.rows, []
        with self.store.session():
            for table, row in rows:
                self.store.save_evolution_row(table, row)


@dataclass(frozen=True)
class CallUsage:
    """Tokens of one reply as the API reports them (``usage``)."""

    input_tokens: int
    output_tokens: int
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0

    @property
    def total(self) -> int:
        return (self.input_tokens + self.output_tokens + self.cache_write_tokens
                + self.cache_read_tokens)

    @property
    def sent(self) -> int:
        """Every input token of the call, cached or not."""
        return self.input_tokens + self.cache_write_tokens + self.cache_read_tokens


def cost_usd(usage: CallUsage, price: list[float]) -> float:
    """USD of one call (module docstring)."""
    p_in, p_out, p_cw, p_cr = price
    return (usage.input_tokens * p_in + usage.output_tokens * p_out
            + usage.cache_write_tokens * p_cw + usage.cache_read_tokens * p_cr) / 1e6


class Budget:
    """The budget of one cycle (``cycle_id``) on the day of ``now``."""

    def __init__(self, store: UsageStore, settings: AdvisorSettings, cycle_id: str,
                 now: datetime, spool: Spool) -> None:
        self.settings, self.cycle_id, self.now, self.spool = settings, cycle_id, now, spool
        self.cycle_input = 0
        self.cycle_tokens = 0
        self.cycle_cost = 0.0
        self.calls = 0
        day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        t = store.token_totals(since=day)
        self._day_base = (t["input_tokens"] + t["output_tokens"] + t["cache_write_tokens"]
                          + t["cache_read_tokens"])
        for r in store.evolution_rows("token_usage", {"cycle_id": cycle_id}):  # a re-run
            self.cycle_input += int(r["input_tokens"] + r["cache_write_tokens"]
                                    + r["cache_read_tokens"])

    def _today(self) -> float:
        return self._day_base + self.cycle_tokens

    def left(self) -> dict[str, int]:
        """Tokens left today and input tokens left in this cycle."""
        s = self.settings
        return {"daily_tokens_left": max(0, int(s.daily_token_budget - self._today())),
                "cycle_input_tokens_left": max(0, s.max_input_tokens_per_cycle
                                               - self.cycle_input)}

    def admit(self, role: str, input_tokens: int, max_tokens: int) -> None:
        """Raise ``OverBudget`` when this call may not be sent (module docstring)."""
        s = self.settings
        if self.cycle_input + input_tokens > s.max_input_tokens_per_cycle:
            raise OverBudget(
                f"token budget: the {role} call needs {input_tokens} input tokens and this "
                f"cycle has sent {self.cycle_input} of max_input_tokens_per_cycle "
                f"{s.max_input_tokens_per_cycle}")
        today = self._today()
        if today + input_tokens + max_tokens > s.daily_token_budget:
            raise OverBudget(
                f"token budget: the {role} call needs up to {input_tokens + max_tokens} tokens "
                f"and {int(today)} of daily_token_budget {s.daily_token_budget} are spent today")

    def record(self, call_id: str, role: str, model: str, usage: CallUsage) -> float:
        """Store the call's usage and cost; return the cost."""
        cost = cost_usd(usage, self.settings.prices[model])
        self.cycle_input += usage.sent
        self.cycle_tokens += usage.total
        self.cycle_cost += cost
        self.calls += 1
        self.spool.put("token_usage", {
            "call_id": call_id, "cycle_id": self.cycle_id, "role": role, "model": model,
            "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "cache_read_tokens": usage.cache_read_tokens, "cost_usd": cost,
            "created_at": self.now})
        return cost
