"""Advisors behind ``ports.Advisor``: the offline one (default) and the name switch.

``OfflineAdvisor(lab)`` wraps ``engine.evolution.offline.advise`` with the night's ``Lab`` (the
fast-engine search over recent history); its raw decision goes through ``parse_decision`` like
any advisor's reply. Without enough history it decides ``no_change`` and says why.
``advisor_for("anthropic", …)`` is a ``ConfigError`` until the anthropic advisor lands (issue 12).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trading_brain.app.evolve.lab import Lab
from trading_brain.engine.evolution.context import EvolutionContext
from trading_brain.engine.evolution.decision import Decision, parse_decision
from trading_brain.engine.evolution.offline import advise
from trading_brain.errors import ConfigError, DataError
from trading_brain.ports import Advisor

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


def advisor_for(name: str, lab: Callable[[], Lab]) -> Advisor:
    """The advisor called ``name``."""
    if name == "offline":
        return OfflineAdvisor(lab)
    if name == "anthropic":
        raise ConfigError("the anthropic advisor is not available yet (issue 12); "
                          "use --advisor offline")
    raise ConfigError(f"unknown advisor {name!r}; use one of {', '.join(ADVISORS)}")
