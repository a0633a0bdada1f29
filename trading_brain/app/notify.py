"""Alert delivery: each alert recorded once, then routed per event type to the channels.

Contract:
- ``deliver(alerts, notifiers, store, now, config=…)`` records each alert's row first
  (``notifications``, idempotent by ``Alert.notification_id``); an id stored before is not sent
  again. Immediate channels (those without ``send``: the log) get each new alert at once — a
  busy warehouse (``TemporaryError``) still logs it; only the row is skipped. Returns
  (new alerts, unrecorded).
- Remote channels (``send(level, text)``: Telegram, webhook) are fed from the table as an
  outbox (``flush``): every recorded notification whose event type ``config.routing`` sends to
  that channel, newer than ``config.max_age_h``, not yet sent on it. So alerts recorded by any
  process (executor sensor, ``kill``, backup) go out at the next delivery that has the remote
  channels — the alert sensor's, every minute. Per channel and delivery:
  - rate limit: at most ``rate_limit_per_min`` messages in the last minute (table
    ``notification_messages``); the rest stays pending;
  - digest: more pending than ``digest_threshold`` (or than the rate limit leaves) -> one
    message summarising them all;
  - retries: ``retries`` immediate retries with a short backoff for a temporary failure, all
    within ``budget_s`` for the whole delivery (each send runs in a daemon thread, so even a
    hanging channel cannot hold the caller longer); still failing -> the row stays pending and
    is retried by a later delivery after a backoff (``RateLimited``: after its retry_after),
    and given up (status ``failed``, logged) after ``max_attempts``;
  - a channel that failed is not tried again in the same delivery.
  Nothing here raises for a channel's or the outbox's problem (logged): a notification never
  breaks trading. A send that times out may still arrive later (then it may arrive twice).
- ``build_channels(settings, secrets, logger)``: the log, plus the remote channels ``[notify]``
  turns on (Telegram needs TELEGRAM_BOT_TOKEN and ``telegram.chat_id``, else a warning).
The system's own events (trades, rejections, halts, kill, rollback, candidates, the nightly
cycle) are recorded through ``app.alerts.emit`` (this ``deliver`` with the log channel, never
raising) by the code that caused them; this module's ``flush`` sends them on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from trading_brain.adapters.duckdb import notify_tables as nt
from trading_brain.adapters.notify.log import Logger, LogNotifier, log
from trading_brain.domain.alerts import (
    EVENT_TYPES,
    KIND_ALIASES,
    Alert,
    NotifySettings,
    event_of,
)
from trading_brain.errors import OperationalError, RateLimited, TemporaryError
from trading_brain.ports import Notifier
from trading_brain.settings import Secrets, Settings

__all__ = ["Alert", "LogNotifier", "build_channels", "deliver", "flush", "log",
           "record_notification"]

BACKOFF_S = 0.2  # first immediate retry; doubles
RETRY_AFTER = timedelta(seconds=60)  # first retry by a later delivery; doubles, capped
MAX_RETRY_AFTER = timedelta(hours=1)
DIGEST_LINES = 20


@runtime_checkable
class Channel(Protocol):
    """A remote channel: ``send`` raises TemporaryError / RateLimited / OperationalError."""

    name: str

    def send(self, level: str, text: str) -> None: ...


@dataclass
class FlushReport:
    messages: int = 0  # messages the channels accepted
    delivered: int = 0  # notifications those carried
    failed: int = 0  # sends that failed (rows stay pending)
    gave_up: int = 0


def record_notification(store: nt._Warehouse, alert: Alert, now: datetime, channels: str
                        ) -> bool:
    return nt.record_notification(store, alert, now, channels)


def deliver(alerts: Sequence[Alert], notifiers: Sequence[Notifier | Channel],
            store: nt._Warehouse, now: datetime, *, config: NotifySettings | None = None,
            ) -> tuple[int, int]:
    """Record and send the alerts not recorded before; returns (sent, unrecorded)."""
    config = config or NotifySettings()
    remote = [n for n in notifiers if isinstance(n, Channel)]
    immediate = [n for n in notifiers if not isinstance(n, Channel)]
    channels = ",".join([n.name for n in immediate] + [n.name for n in remote])
    sent = unrecorded = 0
    for a in alerts:
        try:
            if not nt.record_notification(store, a, now, channels):
                continue  # sent by an earlier tick whose cursor was lost
        except TemporaryError:
            unrecorded += 1
        for n in immediate:
            try:
                n.notify(a.level, a.text)
            except Exception:  # noqa: BLE001 - a channel never breaks the caller
                log.exception("notifier %s failed", getattr(n, "name", "?"))
        sent += 1
    if remote:
        flush(store, remote, config, now)
    return sent, unrecorded


def kinds_routed(config: NotifySettings, channel: str) -> list[str]:
    """Alert kinds (event types and their aliases) ``config.routing`` sends to ``channel``."""
    routes: dict[str, list[str]] = {str(e): [str(c) for c in cs]
                                    for e, cs in config.routing.items()}
    kinds = [*EVENT_TYPES, *KIND_ALIASES]
    return [k for k in kinds if channel in routes.get(event_of(k) or "", [])]


def flush(store: nt._Warehouse, channels: Sequence[Channel], config: NotifySettings,
          now: datetime, *, sleep: Callable[[float], None] = time.sleep) -> FlushReport:
    """Send what is pending on each remote channel (see the module contract); never raises."""
    report = FlushReport()
    deadline = time.monotonic() + config.budget_s
    for ch in channels:
        try:
            _flush_channel(store, ch, config, now, deadline, report, sleep)
        except TemporaryError as e:  # a busy warehouse: the outbox waits for the next delivery
            log.warning("notification channel %s: not flushed: %s", ch.name, e)
        except Exception:  # noqa: BLE001 - the outbox never breaks the caller
            log.exception("notification channel %s: delivery failed", ch.name)
    return report


def _flush_channel(store: nt._Warehouse, ch: Channel, config: NotifySettings, now: datetime,
                   deadline: float, report: FlushReport, sleep: Callable[[float], None]) -> None:
    since = now - timedelta(hours=config.max_age_h)
    rows = nt.pending(store, ch.name, kinds_routed(config, ch.name), since, now)
    if not rows:
        return
    room = config.rate_limit_per_min - nt.messages_since(store, ch.name, now - timedelta(
        minutes=1))
    if room <= 0:
        log.info("notification channel %s: rate limit reached, %d pending", ch.name, len(rows))
        return
    if len(rows) > config.digest_threshold or len(rows) > room:
        batches = [(rows, _worst(rows), digest_text(rows))]
    else:
        batches = [([r], r.level, r.text) for r in rows]
    for i, (batch, level, text) in enumerate(batches):
        error, retry_after = _send(ch, level, text, config, deadline, sleep)
        if error is None:
            nt.mark_sent(store, ch.name, [r.notification_id for r in batch], now,
                         digest=len(batch) > 1)
            report.messages += 1
            report.delivered += len(batch)
            continue
        report.failed += 1
        later = [r for b, _, _ in batches[i:] for r in b]
        wait = retry_after or min(RETRY_AFTER * 2 ** min(batch[0].attempts, 10),
                                  MAX_RETRY_AFTER)
        gave_up = nt.mark_retry(store, ch.name, later, now, error, wait, config.max_attempts)
        report.gave_up += gave_up
        log.warning("notification channel %s: %s; %d pending%s", ch.name, error, len(later),
                    f", {gave_up} given up" if gave_up else "")
        return


def _send(ch: Channel, level: str, text: str, config: NotifySettings, deadline: float,
          sleep: Callable[[float], None]) -> tuple[str | None, timedelta | None]:
    """(None, None) when sent; else (one-line error, how long to wait before a retry)."""
    error = "no time left in this delivery"
    for attempt in range(config.retries + 1):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            _call_within(lambda: ch.send(level, text), left)
            return None, None
        except RateLimited as e:
            return str(e), timedelta(seconds=e.retry_after) if e.retry_after else None
        except OperationalError as e:
            return str(e), None  # a human must act: no immediate retry
        except Exception as e:  # noqa: BLE001 - TemporaryError, or a channel's own bug
            error = str(e) or type(e).__name__
        pause = BACKOFF_S * 2 ** attempt
        if attempt < config.retries and time.monotonic() + pause < deadline:
            sleep(pause)
    return error, None


def _call_within(fn: Callable[[], None], timeout_s: float) -> None:
    """Run ``fn`` in a daemon thread; TemporaryError when it takes longer than ``timeout_s``
    (the thread is left behind: a hanging channel cannot block the caller)."""
    box: list[BaseException | None] = []

    def target() -> None:
        try:
            fn()
            box.append(None)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            box.append(e)

    t = threading.Thread(target=target, name="notify-send", daemon=True)
    t.start()
    t.join(timeout_s)
    if not box:
        raise TemporaryError(f"timed out after {timeout_s:.1f} s")
    if box[0] is not None:
        raise box[0]


def _worst(rows: Sequence[nt.Pending]) -> str:
    levels = {r.level for r in rows}
    return next((lv for lv in ("ERROR", "WARN") if lv in levels), "INFO")


def digest_text(rows: Sequence[nt.Pending]) -> str:
    """One message summarising ``rows``: counts per level, then the first lines."""
    counts = {lv: sum(r.level == lv for r in rows) for lv in ("ERROR", "WARN", "INFO")}
    head = ", ".join(f"{n} {lv}" for lv, n in counts.items() if n)
    lines = [f"{len(rows)} alerts ({head}):"]
    lines += [f"- {r.level} {r.text[:200]}" for r in rows[:DIGEST_LINES]]
    if len(rows) > DIGEST_LINES:
        lines.append(f"… and {len(rows) - DIGEST_LINES} more (table notifications)")
    return "\n".join(lines)


def build_channels(settings: Settings, secrets: Secrets, logger: Logger | None = None,
                   ) -> list[Notifier | Channel]:
    """The log channel plus the remote channels ``settings.notify.channels`` turns on."""
    out: list[Notifier | Channel] = [LogNotifier(logger)]
    cfg = settings.notify
    if "telegram" in cfg.channels:
        token = secrets.telegram_bot_token
        if token is None or settings.telegram.chat_id is None:
            log.warning("notify: channel telegram is on but %s is not set; skipped",
                        "TELEGRAM_BOT_TOKEN" if token is None else "telegram.chat_id")
        else:
            from trading_brain.adapters.notify.telegram import TelegramChannel
            from trading_brain.adapters.telegram.client import TelegramClient

            client = TelegramClient(token.get_secret_value(), settings.telegram.api_url,
                                    timeout_s=cfg.timeout_s)
            out.append(TelegramChannel(client, settings.telegram.chat_id))
    if "webhook" in cfg.channels and cfg.webhook_url:
        from trading_brain.adapters.notify.webhook import WebhookChannel

        out.append(WebhookChannel(cfg.webhook_url, timeout_s=cfg.timeout_s))
    return out
