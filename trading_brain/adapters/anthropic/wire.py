"""What each role answers (JSON schemas sent as structured output) and what it is asked.

Replies (pydantic; their JSON schema goes to the API as ``output_config.format`` and every reply
is validated against it again here, then the analyst's by ``parse_decision``):

- ``AnalystReply``: the decision in a shape a JSON schema can force (``params`` as a list of
  name/value pairs, deadlines as ``deadline_days``) plus ``code_brief`` (what the coder must
  write for tier 2/3 and analysis updates) and ``family`` (a new family for a tier-3 overhaul).
  ``raw_decision(reply, source)`` turns it into the raw input of ``parse_decision``.
- ``CoderReply``: ``source`` (the whole module) and ``notes``.
- ``Review``: ``verdict`` (``approve`` | ``reject``) and ``concerns``.

Requests (frozen dataclasses the cycle builds or receives):

- ``CodeRequest``: what to write (``kind`` strategy | market_analysis | trade_analysis, the
  exact ``module_id``/``version``, tier, parent ref and source, the analyst's brief);
- ``Repair``: the source that failed and the gate's exact messages;
- ``ReviewRequest``: the candidate and parent sources (the diff is made here) and the backtest
  report (the gate table, any JSON data).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from trading_brain.engine.evolution.decision_fields import Action, Comparator, Metric

CodeKind = Literal["strategy", "market_analysis", "trade_analysis"]
PENDING_SOURCE = "# the coder writes this module once the panel agrees\n"


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WireParam(_Reply):
    name: str
    value: bool | int | float


class WirePrediction(_Reply):
    claim: str
    metric: Metric
    comparator: Comparator
    threshold: float
    deadline_days: int = Field(ge=1, le=90)
    subject: str = Field(description="'active' or a version family@N")


class AnalystReply(_Reply):
    """The analyst's decision (see ``engine/evolution/decision.py`` for the rules per action)."""

    action: Action
    reasoning: str
    observation: str
    predictions: list[WirePrediction]
    tier: int | None = Field(description="1 tweak, 2 restructure, 3 overhaul; "
                                         "create_candidate only")
    target: str | None = Field(description="family@N: the parent, or the candidate to "
                                           "promote or cancel")
    params: list[WireParam] | None = Field(description="tier 1 only: new Params defaults")
    code_brief: str | None = Field(description="tier 2/3 or an analysis update: what the "
                                               "coder must write")
    family: str | None = Field(description="tier 3 only, optional: a new family name")

    @property
    def needs_code(self) -> bool:
        return (self.action in ("update_market_analysis", "update_trade_analysis")
                or (self.action == "create_candidate" and self.tier in (2, 3)))


class CoderReply(_Reply):
    source: str
    notes: str


class Review(_Reply):
    """The reviewer's verdict on a candidate."""

    verdict: Literal["approve", "reject"]
    concerns: list[str]


def raw_decision(reply: AnalystReply, source: str | None = None) -> dict[str, Any]:
    """The raw input of ``parse_decision``: ``source`` fills the code (a placeholder for votes)."""
    raw: dict[str, Any] = {"action": reply.action, "reasoning": reply.reasoning,
                           "observation": reply.observation,
                           "predictions": [p.model_dump() for p in reply.predictions]}
    for name in ("tier", "target"):
        value = getattr(reply, name)
        if value is not None:
            raw[name] = value
    if reply.params is not None:
        raw["params"] = {p.name: p.value for p in reply.params}
    if reply.needs_code:
        raw["source"] = source if source is not None else PENDING_SOURCE
    return raw


@dataclass(frozen=True)
class CodeRequest:
    """A module to write: exact identity, parent and the analyst's brief."""

    kind: CodeKind
    module_id: str
    version: int
    brief: str
    tier: int | None = None
    parent: str | None = None
    parent_source: str = ""

    @property
    def ref(self) -> str:
        return f"{self.module_id}@{self.version}"


@dataclass(frozen=True)
class Repair:
    """A source that failed a gate, and the gate's exact messages."""

    source: str
    failures: tuple[str, ...]


@dataclass(frozen=True)
class ReviewRequest:
    """A candidate to review against its parent, with its backtest report."""

    candidate: str
    source: str
    parent: str
    parent_source: str
    report: Mapping[str, Any] = field(default_factory=dict)
    brief: str = ""

    def diff(self) -> str:
        return "".join(difflib.unified_diff(
            self.parent_source.splitlines(keepends=True), self.source.splitlines(keepends=True),
            fromfile=self.parent, tofile=self.candidate))
