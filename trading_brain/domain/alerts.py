"""Alerts as values, and the event types notifications are routed by (pure: no I/O).

Contract:
- ``Alert.key`` is the dedup key (what is reported, once); ``notification_id`` is its hash, the
  primary key of the ``notifications`` table.
- ``Alert.kind`` names what happened: one of ``EVENT_TYPES`` or an older kind name that
  ``event_of`` maps onto one (``check_failure`` -> ``check_failed`` …). Routing to channels is
  per event type (``settings.NotifySettings.routing``); a kind ``event_of`` does not know is
  routed nowhere but the log.
- ``LEVELS``: ``ERROR``, ``WARN``, ``INFO``.
- ``NotifySettings`` / ``TelegramSettings`` are the ``[notify]`` / ``[telegram]`` sections of
  ``trading_brain.toml`` (frozen, unknown keys refused; ``routing`` keeps the default of every
  event type it does not name).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


# -- settings sections ([notify], [telegram]); embedded by trading_brain.settings.Settings ------
Channel = Literal["log", "telegram", "webhook"]
RemoteChannel = Literal["telegram", "webhook"]
_QUIET = ("trade_opened", "trade_closed", "candidate_created")  # the owner's phone only


def default_routing() -> dict[EventType, list[Channel]]:
    """Telegram gets every event; the webhook (a team channel) all but the routine ones."""
    out: dict[EventType, list[Channel]] = {}
    for e in get_args(EventType):
        out[e] = ["telegram"] if e in _QUIET else ["telegram", "webhook"]
    return out


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class NotifySettings(_Section):
    """Where alerts go besides the log (always on), and how hard delivery tries."""

    channels: list[RemoteChannel] = Field(
        default_factory=list, description="remote channels on: telegram, webhook (log always)")
    webhook_url: str | None = Field(default=None, description="JSON POST target (Slack/Discord)")
    routing: dict[EventType, list[Channel]] = Field(
        default_factory=default_routing,
        description="event type -> channels; unnamed event types keep their default")
    rate_limit_per_min: int = Field(default=20, ge=1, le=600,
                                    description="messages per channel and minute")
    digest_threshold: int = Field(default=5, ge=1, le=1000,
                                  description="more pending alerts than this: one digest")
    timeout_s: float = Field(default=5.0, gt=0, le=60, description="per HTTP request")
    retries: int = Field(default=2, ge=0, le=5, description="immediate retries of one send")
    budget_s: float = Field(default=10.0, gt=0, le=45,
                            description="longest a delivery may take (sensor ticks stay short)")
    max_attempts: int = Field(default=8, ge=1, le=100,
                              description="deliveries that try one message before giving up")
    max_age_h: float = Field(default=24.0, gt=0, le=720,
                             description="older pending alerts are not sent remotely")

    @field_validator("routing")
    @classmethod
    def _merge_defaults(cls, v: dict[EventType, list[Channel]]
                        ) -> dict[EventType, list[Channel]]:
        return {**default_routing(), **v}

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v

    @model_validator(mode="after")
    def _webhook_needs_url(self) -> NotifySettings:
        if "webhook" in self.channels and not self.webhook_url:
            raise ValueError("channel 'webhook' needs notify.webhook_url")
        return self


class TelegramSettings(_Section):
    """The Telegram bot (token: TELEGRAM_BOT_TOKEN in the environment or .env)."""

    chat_id: int | None = Field(default=None, description="where alerts go (a user or group id)")
    allowed_user_ids: list[int] = Field(
        default_factory=list, description="who may send commands; empty = nobody")
    api_url: str = Field(default="https://api.telegram.org", description="Bot API base URL")
    poll_timeout_s: int = Field(default=25, ge=0, le=50, description="getUpdates long poll")
    timeout_s: float = Field(default=10.0, gt=0, le=60, description="per HTTP request")
