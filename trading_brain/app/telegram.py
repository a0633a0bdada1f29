"""The Telegram bot: a long-polling consumer of commands (``trading-brain telegram``).

Why a process and not a Dagster sensor: a sensor ticks every 30 s at best and under a timeout;
long polling in its own process answers within a second and holds no Dagster tick. Start it
beside ``up`` (README: Telegram); it needs TELEGRAM_BOT_TOKEN.

Contract:
- ``Bot.poll_once()`` asks ``getUpdates`` (long poll, ``telegram.poll_timeout_s``), handles
  every message and acknowledges it through the next offset (kept in ``system_meta`` under
  ``telegram_offset``, so a restart neither loses nor repeats a command). A message older than
  ``STALE_S`` is ignored (a queued ``/kill CONFIRM`` must not fire hours later).
- Only ``telegram.allowed_user_ids`` may command; an empty list means nobody. A stranger gets
  one fixed refusal that carries no data (``REFUSAL``, once per user and process; silence
  after) and every attempt is logged with the user id.
- Commands are the table ``app.telegram_commands.COMMANDS`` plus ``/help`` and ``/kill``:
  ``/kill`` asks for ``/kill CONFIRM`` within ``KILL_CONFIRM_S``; the kill then runs in a
  background thread (ticks until flat) and its result is sent when done.
- A handler's long work (``ctx.background``: the kill, drawing charts) starts only after the
  handler's own replies were sent, so they always come first; its replies follow when done.
- Replies longer than Telegram's 4096 characters are split at line ends; a chart goes as a
  photo (``sendPhoto``). A photo that fails is logged, the remaining photos of that answer are
  dropped and one line says so; its texts are still sent (a failed text stops the answer). A
  handler's failure answers one line (``error: …``) and is logged; a Telegram failure while
  polling is logged and retried with backoff (``run``), a refused token (``OperationalError``)
  stops ``run``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from trading_brain.adapters.telegram.client import split_message
from trading_brain.app.runtime import Runtime
from trading_brain.app.telegram_commands import COMMANDS, BotContext, Reply, kill_now
from trading_brain.errors import OperationalError, TemporaryError, TradingBrainError

log = logging.getLogger("trading_brain.telegram")
REFUSAL = "This bot does not take commands from you."
KILL_CONFIRM_S = 60.0
STALE_S = 300.0
OFFSET_KEY = "telegram_offset"
MAX_BACKOFF_S = 30.0


class TelegramApi(Protocol):
    def get_updates(self, offset: int | None, timeout_s: int) -> list[dict[str, Any]]: ...
    def send_message(self, chat_id: int, text: str) -> dict[str, Any]: ...
    def send_photo(self, chat_id: int, png: bytes, caption: str = "") -> dict[str, Any]: ...


class Bot:
    def __init__(self, api: TelegramApi, ctx: BotContext, *,
                 monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.api = api
        self.ctx = ctx
        self.allowed = set(ctx.settings.telegram.allowed_user_ids)
        self._monotonic = monotonic
        self._wall = wall
        self._kill_asked: dict[int, float] = {}
        self._refused: set[int] = set()
        self._jobs: list[threading.Thread] = []
        self._pending: list[threading.Thread] = []  # started once the answer was sent
        self._send_lock = threading.Lock()
        self._chat: int | None = None  # the chat of the message being answered
        ctx.background = self._background
        raw = ctx.store.get_meta(OFFSET_KEY)
        self.offset: int | None = int(raw) if raw else None

    # -- the loop ---------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; back off on Telegram failures; a refused token raises."""
        backoff = 1.0
        while not stop.is_set():
            try:
                self.poll_once()
                backoff = 1.0
            except OperationalError:
                raise
            except TemporaryError as e:
                log.warning("telegram: %s; retrying in %.0f s", e, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    def poll_once(self, timeout_s: int | None = None) -> int:
        """One getUpdates; handle each message; return how many updates came."""
        wait = self.ctx.settings.telegram.poll_timeout_s if timeout_s is None else timeout_s
        updates = self.api.get_updates(self.offset, wait)
        for u in updates:
            uid = u.get("update_id")
            if not isinstance(uid, int):
                continue
            try:
                self.handle(u)
            finally:
                self.offset = uid + 1
                self.ctx.store.set_meta(OFFSET_KEY, str(self.offset))
        return len(updates)

    def wait_jobs(self, timeout_s: float = 60.0) -> None:
        for t in list(self._jobs):
            t.join(timeout_s)

    # -- one message ------------------------------------------------------------------------
    def handle(self, update: dict[str, Any]) -> None:
        msg = update.get("message")
        if not isinstance(msg, dict) or not isinstance(msg.get("text"), str):
            return
        user = (msg.get("from") or {}).get("id")
        chat = (msg.get("chat") or {}).get("id")
        if not isinstance(user, int) or not isinstance(chat, int):
            return
        text: str = msg["text"].strip()
        if user not in self.allowed:
            log.warning("telegram: refused %r from user id %d (not in allowed_user_ids)",
                        text[:40], user)
            if user not in self._refused:
                self._refused.add(user)
                self._send(chat, [Reply(REFUSAL)])
            return
        age = self._wall() - float(msg.get("date") or 0)
        if age > STALE_S:
            log.warning("telegram: ignored %r from %d: %.0f s old", text[:40], user, age)
            return
        self._chat = chat
        try:
            self._send(chat, self.answer(user, text))
        finally:
            self._start_pending()

    def answer(self, user: int, text: str) -> list[Reply]:
        """The replies to one authorised command."""
        if not text.startswith("/"):
            return [Reply("Commands start with /; send /help.")]
        word, *args = text.split()
        name = word[1:].split("@", 1)[0].lower()
        log.info("telegram: /%s from user id %d", name, user)
        try:
            if name in ("help", "start"):
                return [Reply(help_text())]
            if name == "kill":
                return self._kill(user, args)
            entry = COMMANDS.get(name)
            if entry is None:
                return [Reply(f"Unknown command /{name}; send /help.")]
            with self.ctx.store.session():  # one connection per command (no network inside)
                return entry[1](self.ctx, args)
        except TradingBrainError as e:
            return [Reply(f"error: {' '.join(str(e).split())}")]
        except Exception:  # noqa: BLE001 - a command never stops the bot
            log.exception("telegram: /%s failed", name)
            return [Reply(f"error: /{name} failed (see the log)")]

    def _kill(self, user: int, args: list[str]) -> list[Reply]:
        now = self._monotonic()
        if args[:1] == ["CONFIRM"]:
            asked = self._kill_asked.pop(user, None)
            if asked is None or now - asked > KILL_CONFIRM_S:
                return [Reply("No kill pending (or it expired): send /kill first.")]
            return kill_now(self.ctx, "kill switch by a human (telegram /kill)")
        self._kill_asked[user] = now
        return [Reply(f"This closes every position and stops trading. Reply /kill CONFIRM "
                      f"within {KILL_CONFIRM_S:.0f} s.")]

    # -- sending ----------------------------------------------------------------------------
    def _background(self, job: Callable[[], list[Reply]]) -> None:
        """Run ``job`` in a thread; its replies go to the chat that asked for it."""
        chat = self._chat

        def run() -> None:
            try:
                replies = job()
            except Exception as e:  # noqa: BLE001 - reported, never raised
                log.exception("telegram: background job failed")
                replies = [Reply(f"error: {' '.join(str(e).split())[:300]}")]
            if chat is not None:
                self._send(chat, replies)

        self._pending.append(threading.Thread(target=run, name="telegram-job", daemon=True))

    def _start_pending(self) -> None:
        self._jobs = [t for t in self._jobs if t.is_alive()]
        while self._pending:
            t = self._pending.pop(0)
            self._jobs.append(t)
            t.start()

    def _send(self, chat: int, replies: list[Reply]) -> None:
        """Send ``replies`` in order (see the module contract for failures)."""
        photo_error = ""
        with self._send_lock:
            for r in replies:
                if r.photo is not None and photo_error:
                    continue
                try:
                    if r.photo is not None:
                        self.api.send_photo(chat, r.photo, r.text)
                        continue
                    for part in split_message(r.text):
                        self.api.send_message(chat, part)
                except TradingBrainError as e:
                    log.warning("telegram: reply not sent: %s", e)
                    if r.photo is None:
                        return
                    photo_error = " ".join(str(e).split())[:200]
            if photo_error:
                try:
                    self.api.send_message(chat, f"(charts not sent: {photo_error})")
                except TradingBrainError as e:
                    log.warning("telegram: reply not sent: %s", e)


def help_text() -> str:
    lines = ["Trading Brain commands:", "/help - this list"]
    lines += [f"/{n} - {h}" for n, (h, _) in COMMANDS.items()]
    lines.append(f"/kill - close every position and stop (asks /kill CONFIRM within "
                 f"{KILL_CONFIRM_S:.0f} s)")
    return "\n".join(lines)


class HomeControl:
    """``Control`` over one home: the functions ``trading-brain halt | resume | kill`` run."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def halt(self, reason: str) -> dict[str, Any]:
        from trading_brain.app.home import control

        return control.halt(self.rt, control.slots_of(self.rt.store, None), reason)

    def resume(self, reason: str) -> dict[str, Any]:
        from trading_brain.app.home import control

        return control.resume(self.rt, control.slots_of(self.rt.store, None), reason)

    def kill(self, reason: str) -> dict[str, Any]:
        from trading_brain.app.home import control

        return control.kill_all(self.rt, control.slots_of(self.rt.store, None), reason)


def build_bot(rt: Runtime, api: TelegramApi) -> Bot:
    """The bot over ``rt``'s home (settings, store, clock) with the home's controls."""
    from trading_brain.app.reports.service import reports_dir

    ctx = BotContext(settings=rt.settings, store=rt.store, clock=rt.clock,
                     control=HomeControl(rt), reports_dir=reports_dir(rt.home))
    threading.Thread(target=_warm_charts, name="telegram-warm", daemon=True).start()
    return Bot(api, ctx)


def _warm_charts() -> None:
    """Import matplotlib once in the background (~1-2 s): the first /pnl stays fast."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
