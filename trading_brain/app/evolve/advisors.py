"""Advisors behind ``ports.Advisor``: the offline one (default), the anthropic one, the choice.

- ``OfflineAdvisor(lab)`` wraps ``engine.evolution.offline.advise`` with the night's ``Lab``
  (the fast-engine search over recent history); its raw decision goes through
  ``parse_decision`` like any advisor's reply. Without enough history it decides ``no_change``
  and says why.
- ``chosen_kind(settings, secrets, flag)``: ``--advisor`` when given, else ``[advisor] kind``,
  else ``anthropic`` when ``ANTHROPIC_API_KEY`` is set (environment or ``<home>/.env``), else
  ``offline`` (``domain.advisor.resolve_kind``).
- ``advisor_for(name, lab, rt=None, document=None)``: ``offline`` → ``OfflineAdvisor``;
  ``anthropic`` → ``AnthropicAdvisor.open(rt.settings, Secrets.load(home), rt.store,
  document=…)`` (the client checks its models at start-up: a ``ConfigError`` for an unknown one
  or a missing key). Anything else is a ``ConfigError``.
- ``CodeAdvisor``: what the cycle needs from an advisor that writes code (the anthropic one):
  ``begin`` (a cycle's calls), ``pending_code``, ``max_repairs``, ``write_code`` and
  ``review``. ``code_advisor(advisor)`` is the advisor as a ``CodeAdvisor`` when it is one,
  else None (offline: no repair, no review).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from trading_brain.app.evolve.lab import Lab
from trading_brain.domain.advisor import AdvisorKind, resolve_kind
from trading_brain.engine.evolution.context import EvolutionContext
from trading_brain.engine.evolution.decision import Decision, parse_decision
from trading_brain.engine.evolution.offline import advise
from trading_brain.errors import ConfigError, DataError
from trading_brain.ports import Advisor
from trading_brain.settings import Secrets, Settings

if TYPE_CHECKING:
    from trading_brain.adapters.anthropic.wire import CodeRequest, Repair, Review, ReviewRequest
    from trading_brain.app.runtime import Runtime

ADVISORS = ("offline", "anthropic")


class OfflineAdvisor:
    """The deterministic offline advisor (``engine/evolution/offline.py``)."""

    name = "offline"

    def __init__(self, lab: Callable[[], Lab]) -> None:
        self._lab = lab
        self.evidence: dict[str, Any] = {}

    def decide(self, context: EvolutionContext) -> Decision:
        try:
            lab = self._lab()
        except DataError as e:
            raw: dict[str, Any] = {"action": "no_change",
                                   "reasoning": f"No search tonight: {e}."}
        else:
            advice = advise(context, lab.evaluate)
            self.evidence = advice.evidence
            raw = advice.decision
        return parse_decision(raw, known_versions=context.known_versions, now=context.now)


M = TypeVar("M", bound=BaseModel)


class Asker(Protocol):
    """One structured role call of the cycle (``adapters/anthropic/call.Caller``)."""

    def ask(self, role: str, step: str, user: str, schema: type[M]) -> M: ...


@runtime_checkable
class CodeAdvisor(Protocol):
    """An advisor that writes code: repairs after gate failures and reviews candidates."""

    name: str
    max_repairs: int

    @property
    def pending_code(self) -> CodeRequest | None: ...

    def begin(self, cycle_id: str, now: datetime) -> Asker: ...

    def write_code(self, request: CodeRequest, repair: Repair | None = None) -> str: ...

    def review(self, request: ReviewRequest) -> Review: ...


def code_advisor(advisor: Advisor) -> CodeAdvisor | None:
    """``advisor`` as a ``CodeAdvisor`` (module docstring), or None."""
    return advisor if isinstance(advisor, CodeAdvisor) else None


def chosen_kind(settings: Settings, secrets: Secrets, flag: str | None = None) -> AdvisorKind:
    """Who decides tonight (module docstring)."""
    if flag is not None:
        if flag not in ADVISORS:
            raise ConfigError(f"unknown advisor {flag!r}; use one of {', '.join(ADVISORS)}")
        return "anthropic" if flag == "anthropic" else "offline"
    return resolve_kind(settings.advisor, secrets.anthropic_api_key is not None)


def advisor_for(name: str, lab: Callable[[], Lab], rt: Runtime | None = None, *,
                document: Callable[[], str] | None = None) -> Advisor:
    """The advisor called ``name`` (module docstring)."""
    if name == "offline":
        return OfflineAdvisor(lab)
    if name == "anthropic":
        if rt is None:
            raise ConfigError("the anthropic advisor needs the runtime (settings, home, store)")
        from trading_brain.adapters.anthropic.advisor import AnthropicAdvisor

        secrets = Secrets.load(rt.home.root)
        return AnthropicAdvisor.open(rt.settings, secrets, rt.store, document=document)
    raise ConfigError(f"unknown advisor {name!r}; use one of {', '.join(ADVISORS)}")
