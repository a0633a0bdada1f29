"""What an advisor is given each night: the cycle's context, as plain frozen data (pure).

The cycle (``app/evolve``) builds one ``EvolutionContext`` from the warehouse and hands it to
the advisor (``ports.Advisor.decide``). Everything in it is data the advisor may read; nothing
in it can act (no store, no venue). Fields:

- ``cycle_id``, ``now`` (aware, UTC), ``active`` (the deployed version) and ``versions`` (every
  registered version; ``shipped`` = a file under the repository's ``strategies/``);
- ``candidates``: versions in status ``candidate`` with their tier and paper-test status
  (``None`` before a slot took them; ``running``/``passed``/``failed``/``inconclusive``);
- ``benchmarks`` (``benchmarks.nested`` of the night's truth benchmarks), ``reports`` (analysis
  id → its report or ``{"error": …}``), ``open_predictions`` and ``observations`` (recent
  institutional memory, newest first);
- ``tried``: per family, the hashes of every parameter variant ever evaluated
  (``variant_trials``), so an advisor can count N for the deflated Sharpe ratio exactly;
- ``knobs``: the ``[evolution]`` thresholds an advisor needs to pre-check its own proposal (the
  cycle still runs every gate itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from trading_brain.engine.evolution.guard import GuardSettings
from trading_brain.engine.evolution.search import Value


@dataclass(frozen=True)
class VersionInfo:
    """One registered strategy version as the advisor sees it."""

    family: str
    version: int
    status: str
    source: str
    space: Mapping[str, Any]  # the JSON schema of its Params (registry ``param_space``)
    defaults: Mapping[str, Value]
    shipped: bool = False

    @property
    def ref(self) -> str:
        return f"{self.family}@{self.version}"


@dataclass(frozen=True)
class CandidateInfo:
    """A version in status ``candidate`` and where its paper test stands."""

    ref: str
    tier: int
    paper: str | None = None
    since: datetime | None = None
    reason: str = ""


@dataclass(frozen=True)
class Knobs:
    """Thresholds from ``[evolution]`` (see ``settings.EvolutionSettings``)."""

    guard: GuardSettings = GuardSettings()
    sweep_size: int = 24
    family_sweep_size: int = 8
    train_fraction: float = 0.7
    min_trades: int = 5
    max_candidates: int = 3
    stale_days: float = 7.0
    paper_days: Mapping[int, float] = field(default_factory=lambda: {1: 1, 2: 2, 3: 7})


@dataclass(frozen=True)
class EvolutionContext:
    """The night's inputs (module docstring)."""

    cycle_id: str
    now: datetime
    active: VersionInfo
    versions: tuple[VersionInfo, ...]
    candidates: tuple[CandidateInfo, ...] = ()
    benchmarks: Mapping[str, Any] = field(default_factory=dict)
    reports: Mapping[str, Any] = field(default_factory=dict)
    open_predictions: tuple[Mapping[str, Any], ...] = ()
    observations: tuple[str, ...] = ()
    tried: Mapping[str, frozenset[str]] = field(default_factory=dict)
    knobs: Knobs = Knobs()

    @property
    def known_versions(self) -> frozenset[str]:
        return frozenset(v.ref for v in self.versions)

    def version(self, ref: str) -> VersionInfo | None:
        return next((v for v in self.versions if v.ref == ref), None)

    def next_version(self, family: str) -> int:
        return max((v.version for v in self.versions if v.family == family), default=0) + 1

    def summary(self) -> dict[str, Any]:
        """A JSON-ready digest for the thought spool (sources left out)."""
        return {"cycle_id": self.cycle_id, "now": self.now.isoformat(),
                "active": self.active.ref,
                "versions": {v.ref: v.status for v in self.versions},
                "candidates": [{"ref": c.ref, "tier": c.tier, "paper": c.paper}
                               for c in self.candidates],
                "benchmarks": self.benchmarks, "reports": self.reports,
                "open_predictions": len(self.open_predictions),
                "observations": list(self.observations[:5]),
                "variants_tried": {k: len(v) for k, v in sorted(self.tried.items())}}
