"""Remote delivery of alerts (app.notify): routing, once per channel, digest, rate limit,
retries and pending rows, and faults (a channel that raises, hangs; webhook down/slow/garbage)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from trading_brain.adapters.duckdb import notify_tables as nt
from trading_brain.adapters.notify.telegram import TelegramChannel
from trading_brain.adapters.notify.webhook import WebhookChannel
from trading_brain.adapters.telegram.client import TelegramClient
from trading_brain.app.notify import LogNotifier, build_channels, deliver, flush
from trading_brain.domain.alerts import Alert, NotifySettings
from trading_brain.errors import TemporaryError
from trading_brain.settings import Secrets, parse_settings
from trading_brain_tests.fakes.telegram_server import FakeTelegram, WebhookReceiver

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
TOKEN = "123:SECRET"
CHAT = 42


def alert(i: int, kind: str = "check_failure", level: str = "ERROR") -> Alert:
    return Alert(f"k{i}", level, kind, f"subject {i}", f"alert number {i}")


def cfg(**kw) -> NotifySettings:
    return NotifySettings.model_validate({"budget_s": 5.0, **kw})


@pytest.fixture
def tg():
    with FakeTelegram(TOKEN) as fake:
        yield fake


def telegram(tg: FakeTelegram, timeout_s: float = 2.0) -> TelegramChannel:
    return TelegramChannel(TelegramClient(TOKEN, tg.api_url, timeout_s=timeout_s), CHAT)


def delivered(store) -> dict[tuple[str, str], str]:
    return {(nid, ch): status for nid, ch, status, *_ in nt.deliveries(store)}


def test_each_alert_goes_once_per_channel(store, tg):
    with WebhookReceiver("ok") as hook:
        chans = [LogNotifier(), telegram(tg), WebhookChannel(hook.url)]
        alerts = [alert(1), alert(2, "protective_refused", "WARN")]
        assert deliver(alerts, chans, store, NOW, config=cfg()) == (2, 0)
        assert deliver(alerts, chans, store, NOW + timedelta(minutes=5), config=cfg()) == (0, 0)
        assert [t for _, t in tg.sent] == ["\U0001f534 alert number 1",
                                           "\U0001f7e0 alert number 2"]
        assert [b["text"] for b in hook.received] == ["ERROR: alert number 1",
                                                      "WARN: alert number 2"]
        assert hook.received[0]["content"] == hook.received[0]["text"]
    assert set(delivered(store).values()) == {"sent"} and len(delivered(store)) == 4


def test_routing_per_event_type(store, tg):
    with WebhookReceiver("ok") as hook:
        chans = [telegram(tg), WebhookChannel(hook.url)]
        config = cfg(routing={"check_failed": ["webhook"], "trade_opened": ["log"]})
        deliver([alert(1), alert(2, "trade_opened"), alert(3, "trade_closed"),
                 alert(4, "some_unknown_kind")], chans, store, NOW, config=config)
        assert [b["text"] for b in hook.received] == ["ERROR: alert number 1"]
        assert [t for _, t in tg.sent] == ["\U0001f534 alert number 3"]  # trade_closed default


def test_outbox_sends_alerts_recorded_by_other_processes(store, tg):
    deliver([alert(1)], [LogNotifier()], store, NOW)  # e.g. the executor sensor: log only
    assert tg.sent == []
    flush(store, [telegram(tg)], cfg(), NOW + timedelta(seconds=30))
    assert [t for _, t in tg.sent] == ["\U0001f534 alert number 1"]
    deliver([alert(2)], [LogNotifier()], store, NOW - timedelta(days=2))  # too old
    flush(store, [telegram(tg)], cfg(), NOW + timedelta(minutes=1))
    assert len(tg.sent) == 1


def test_many_at_once_become_one_digest(store, tg):
    alerts = [alert(i, level="WARN" if i % 2 else "ERROR") for i in range(30)]
    deliver(alerts, [telegram(tg)], store, NOW, config=cfg(digest_threshold=5))
    assert len(tg.sent) == 1
    text = tg.sent[0][1]
    assert text.startswith("\U0001f534 30 alerts (15 ERROR, 15 WARN):")
    assert "… and 10 more" in text
    rows = nt.deliveries(store)
    assert len(rows) == 30 and all(r[2] == "sent" and r[4] for r in rows)


def test_rate_limit_per_channel(store, tg):
    config = cfg(rate_limit_per_min=2, digest_threshold=10)
    deliver([alert(1), alert(2)], [telegram(tg)], store, NOW, config=config)
    deliver([alert(3)], [telegram(tg)], store, NOW + timedelta(seconds=10), config=config)
    assert len(tg.sent) == 2  # the third waits: two messages in the last minute
    deliver([alert(4), alert(5)], [telegram(tg)], store, NOW + timedelta(seconds=20),
            config=config)
    assert len(tg.sent) == 2
    deliver([], [telegram(tg)], store, NOW + timedelta(seconds=70), config=config)
    assert len(tg.sent) == 3 and "3 alerts" in tg.sent[2][1]  # more than the room: a digest
    deliver([alert(6)], [telegram(tg)], store, NOW + timedelta(seconds=140), config=config)
    assert tg.sent[3][1].endswith("alert number 6")


def test_a_failed_send_stays_pending_and_is_retried_later(store, tg):
    tg.add_fault("sendMessage", status=500, times=3)  # the first try and both retries
    sent, _ = deliver([alert(1)], [telegram(tg)], store, NOW, config=cfg())
    assert sent == 1 and tg.sent == []
    (row,) = nt.deliveries(store)
    assert row[2:4] == ("pending", 1) and "HTTP 500" in row[5]
    deliver([], [telegram(tg)], store, NOW + timedelta(seconds=30), config=cfg())
    assert tg.sent == []  # backoff: not before 60 s
    deliver([], [telegram(tg)], store, NOW + timedelta(seconds=61), config=cfg())
    assert len(tg.sent) == 1 and nt.deliveries(store)[0][2] == "sent"


def test_retries_within_one_delivery(store, tg):
    tg.add_fault("sendMessage", status=500, times=2)
    deliver([alert(1)], [telegram(tg)], store, NOW, config=cfg(retries=2))
    assert len(tg.sent) == 1 and nt.deliveries(store)[0][2] == "sent"


def test_429_waits_for_retry_after_and_gives_up_after_max_attempts(store, tg):
    tg.add_fault("sendMessage", status=429, retry_after=120)
    deliver([alert(1)], [telegram(tg)], store, NOW, config=cfg())
    deliver([], [telegram(tg)], store, NOW + timedelta(seconds=90), config=cfg())
    assert tg.sent == []
    deliver([], [telegram(tg)], store, NOW + timedelta(seconds=121), config=cfg())
    assert len(tg.sent) == 1
    tg.add_fault("sendMessage", status=500, times=None)
    deliver([alert(2)], [telegram(tg)], store, NOW, config=cfg(max_attempts=2, retries=0))
    deliver([], [telegram(tg)], store, NOW + timedelta(hours=1), config=cfg(
        max_attempts=2, retries=0))
    assert delivered(store)[(alert(2).notification_id, "telegram")] == "failed"


class Raises:
    name = "webhook"

    def send(self, level: str, text: str) -> None:
        raise RuntimeError("bug in a channel")


class Hangs:
    name = "telegram"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def send(self, level: str, text: str) -> None:
        self.calls += 1
        self.release.wait(60)


def test_a_channel_that_raises_or_hangs_never_breaks_the_caller(store, caplog):
    hang = Hangs()
    t0 = time.monotonic()
    try:
        sent, _ = deliver([alert(1)], [LogNotifier(), hang, Raises()], store, NOW,
                          config=cfg(budget_s=1.0))
        took = time.monotonic() - t0
    finally:
        hang.release.set()
    assert sent == 1 and took < 10  # bounded by the budget, not the hang's 60 s
    assert "ALERT ERROR: alert number 1" in caplog.text  # the log still has it
    nid = alert(1).notification_id
    assert delivered(store) == {(nid, "webhook"): "pending", (nid, "telegram"): "pending"}
    assert hang.calls == 1  # no retry of a send that used the whole budget
    flush(store, [Raises()], cfg(), NOW + timedelta(seconds=61))  # raises: caught, pending
    row = next(r for r in nt.deliveries(store) if r[1] == "webhook")
    assert row[2:4] == ("pending", 2) and row[5] == "bug in a channel"


@pytest.mark.parametrize("mode", ["down", "error", "slow", "garbage"])
def test_webhook_faults_are_one_line_and_stay_pending(store, mode):
    if mode == "down":
        ch = WebhookChannel("http://127.0.0.1:9/hook", timeout_s=0.5)
        with pytest.raises(TemporaryError, match="down"):
            ch.send("ERROR", "x")
        deliver([alert(1)], [ch], store, NOW, config=cfg(retries=0))
    else:
        with WebhookReceiver(mode, delay_s=2.0) as hook:
            ch = WebhookChannel(hook.url, timeout_s=0.5)
            with pytest.raises(TemporaryError) as e:
                ch.send("ERROR", "x")
            assert "\n" not in str(e.value) and hook.url not in str(e.value)
            deliver([alert(1)], [ch], store, NOW, config=cfg(retries=0))
    (row,) = nt.deliveries(store)
    assert row[2] == "pending" and row[5]


def test_build_channels_from_settings(tmp_path, monkeypatch, caplog):
    s = parse_settings({"notify": {"channels": ["telegram", "webhook"],
                                   "webhook_url": "https://hooks.example/x"},
                        "telegram": {"chat_id": 42}})
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    names = [c.name for c in build_channels(s, Secrets.load(tmp_path))]
    assert names == ["log", "webhook"]  # telegram without a token: skipped with a warning
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:x")
    assert [c.name for c in build_channels(s, Secrets.load(tmp_path))] == [
        "log", "telegram", "webhook"]
    assert [c.name for c in build_channels(parse_settings({}), Secrets.load(tmp_path))] == [
        "log"]
