"""What an executor tick did: one ``SlotReport`` per slot inside a ``TickReport``.

Contract: ``run_tick`` (engine/executor/tick.py) returns a ``TickReport``; the executor sensor
(defs/trading/executor.py) turns it into asset events, log lines and alerts. A ``SlotReport`` is
the tick's one documented accumulator: the phases append to its lists as they act (client
order ids, fill ids, position ids, risk events, errors, warnings, alerts) and set the closing
``snapshot``/``invariant``/``mismatches``; nothing reads it back to decide anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from trading_brain.domain.alerts import Alert
from trading_brain.domain.records import Snapshot
from trading_brain.domain.risk import RiskEvent
from trading_brain.engine.valuation import InvariantReport, Mismatch

log = logging.getLogger("trading_brain.executor")


@dataclass(slots=True)
class SlotReport:
    """What one slot's tick did (the sensor's asset events)."""

    slot: str
    orders_placed: list[str] = field(default_factory=list)
    orders_updated: list[str] = field(default_factory=list)
    fills: list[str] = field(default_factory=list)
    positions_opened: list[str] = field(default_factory=list)
    positions_closed: list[str] = field(default_factory=list)
    intents_rejected: dict[str, str] = field(default_factory=dict)
    events: list[RiskEvent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    orders_cancelled: list[str] = field(default_factory=list)  # cancels the venue confirmed
    warnings: list[str] = field(default_factory=list)  # ambiguous orders, service errors
    alerts: list[Alert] = field(default_factory=list)  # for the notifier (idempotent by key)
    unprotected: list[str] = field(default_factory=list)  # positions whose leg is blocked
    mismatches: list[Mismatch] = field(default_factory=list)
    invariant: InvariantReport | None = None
    snapshot: Snapshot | None = None

    @property
    def ok(self) -> bool:
        return self.invariant is not None and self.invariant.ok and not self.mismatches

    def warn(self, text: str) -> None:
        """A warning: in the log (WARNING) and in the report (the sensor's asset events)."""
        self.warnings.append(text)
        log.warning(text)

    def trouble(self, text: str) -> None:
        """A transient venue failure: an error of the tick and a warning."""
        self.errors.append(text)
        self.warn(text)


@dataclass(slots=True)
class TickReport:
    """The whole tick: one report per slot."""

    ts: datetime
    slots: dict[str, SlotReport]
    duration_s: float = 0.0

    @property
    def invariant_ok(self) -> bool:
        return all(r.ok for r in self.slots.values())

    def count(self, what: str) -> int:
        return sum(len(getattr(r, what)) for r in self.slots.values())
