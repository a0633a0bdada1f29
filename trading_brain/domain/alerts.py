"""Alerts as values, and the event types notifications are routed by (pure: no I/O).

Contract:
- ``Alert.key`` is the dedup key (what is reported, once); ``notification_id`` is its hash, the
  primary key of the ``notifications`` table.
- ``Alert.kind`` names what happened: one of ``EVENT_TYPES`` or an older kind name that
  ``event_of`` maps onto one (``check_failure`` -> ``check_failed`` …). Routing to channels is
  per event type (``settings.NotifySettings.routing``); a kind ``event_of`` does not know is
  routed nowhere but the log.
- ``LEVELS``: ``ERROR``, ``WARN``, ``INFO``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, get_args

Level = Literal["ERROR", "WARN", "INFO"]
LEVELS: tuple[str, ...] = get_args(Level)
EventType = Literal[
    "trade_opened", "trade_closed", "order_rejected", "risk_halt", "risk_resume", "kill",
    "rollback", "candidate_created", "candidate_promoted", "candidate_cancelled",
    "evolution_cycle", "check_failed", "run_failed", "stale_data", "daily_report",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
KIND_ALIASES: dict[str, str] = {  # the kind names alerts carried before routing existed
    "check_failure": "check_failed",
    "run_failure": "run_failed",
    "stale_asset": "stale_data",
    "protective_refused": "order_rejected",
    "backup_failure": "run_failed",
}


@dataclass(frozen=True, slots=True)
class Alert:
    key: str  # dedup key: what is reported, once
    level: str  # ERROR | WARN | INFO
    kind: str  # an event type (or an alias in KIND_ALIASES)
    subject: str
    text: str

    @property
    def notification_id(self) -> str:
        return hashlib.sha256(self.key.encode()).hexdigest()[:32]

    @property
    def event(self) -> str | None:
        return event_of(self.kind)


def event_of(kind: str) -> str | None:
    """The event type of an alert kind; None for a kind no routing knows."""
    if kind in EVENT_TYPES:
        return kind
    return KIND_ALIASES.get(kind)
