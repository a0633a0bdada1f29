"""One WebSocket session base for the Kraken streams: a background loop, reconnect and back-off.

Contract:
- ``WsSession(ws_url, silence_s=…, backoff_base_s=…, backoff_max_s=…, open_timeout_s=…, rng=…)``
  is subclassed by ``KrakenStream`` (market data) and ``KrakenExecutionStream`` (executions).
  ``start()`` runs an asyncio loop in a daemon thread (``thread_name``); ``stop()`` cancels it,
  closes the socket and joins the thread (idempotent); both streams are context managers.
- Reconnect: websockets' own reconnecting iterator (``async for ws in connect(...)``) opens
  every connection. Its ``reconnect_delays`` and ``process_exception`` hooks are bound to this
  class, so there is ONE policy: after every attempt that ends — a connection that could not be
  opened (refused, timed out, handshake failed: all retried, none fatal) or a session that
  ended (the socket dropped, ``silence_s`` without a message, a refused subscription, a failed
  token fetch) — the loop waits ``Backoff.next_delay()`` (``adapters.backoff``: exponential
  with jitter, ``backoff_base_s``…``backoff_max_s``) and connects again. A subclass calls
  ``self.backoff.reset()`` when its subscription is acknowledged, so a healthy stream that
  drops reconnects after the shortest delay.
- A subclass implements ``_session(ws)``: subscribe, then read until the session ends (return
  or raise one of ``SESSION_ENDS``); ``_connected()`` runs first on every new connection
  (counters). ``_main()`` may wrap ``_run_sessions()`` with helpers (the market stream's REST
  watchdog). Any other exception is a bug: it ends the loop and is logged in full.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from typing import Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, WebSocketException

from trading_brain.adapters.backoff import Backoff
from trading_brain.errors import TradingBrainError

log = logging.getLogger(__name__)


class SessionRefused(Exception):
    """The venue refused the session (e.g. an invalid token): reconnect after the back-off."""


# connection failures retried by the iterator (anything else raised while connecting is a bug)
CONNECT_FAILURES: tuple[type[Exception], ...] = (
    OSError, TimeoutError, InvalidHandshake, WebSocketException)
# what ends a session without ending the stream
SESSION_ENDS: tuple[type[Exception], ...] = (*CONNECT_FAILURES, SessionRefused, TradingBrainError)


class WsSession:
    """A reconnecting WebSocket client on its own thread (subclass and implement ``_session``)."""

    thread_name = "kraken-ws"

    def __init__(
        self,
        ws_url: str,
        *,
        silence_s: float,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 30.0,
        open_timeout_s: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self.ws_url = ws_url
        self.silence_s = silence_s
        self.backoff_base_s, self.backoff_max_s = backoff_base_s, backoff_max_s
        self.open_timeout_s = open_timeout_s
        self.backoff = Backoff(backoff_base_s, backoff_max_s, rng or random.Random())
        self.connects = 0
        self._stopping = False  # also checked in the loops: a cancel can be swallowed
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = threading.Event()

    # ---- sync API ------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._thread = threading.Thread(target=self._thread_main, name=self.thread_name,
                                        daemon=True)
        self._thread.start()
        self._started.wait(5)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel the loop, close the socket and join the thread (idempotent)."""
        self._stopping = True
        if self._loop is not None and self._task is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._task.cancel)
            except RuntimeError:
                pass  # loop already closed
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- the loop ------------------------------------------------------------------------------

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._task = loop.create_task(self._main())
        self._started.set()
        try:
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except Exception:  # a bug in a subclass: the stream ends, the reason is not lost
            log.exception("%s crashed", type(self).__name__)
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _main(self) -> None:
        await self._run_sessions()

    async def _run_sessions(self) -> None:
        """Connect, run one session, back off, connect again — until stopped."""
        sockets = connect(self.ws_url, open_timeout=self.open_timeout_s, proxy=None,
                          compression=None, close_timeout=2,
                          reconnect_delays=self.backoff.delays,
                          process_exception=self._connect_failure)
        async for ws in sockets:
            if self._stopping:
                return
            self._connected()
            try:
                await self._session(ws)
            except SESSION_ENDS as e:
                self._ended(e)
            await ws.close()
            if self._stopping:
                return
            await asyncio.sleep(self.backoff.next_delay())

    def _connect_failure(self, exc: Exception) -> Exception | None:
        """websockets' ``process_exception``: None retries (after the back-off), else raised."""
        if isinstance(exc, CONNECT_FAILURES):
            log.warning("%s: cannot connect: %s", type(self).__name__, exc or type(exc).__name__)
            return None
        return exc

    def _ended(self, exc: Exception) -> None:
        """Log why a session ended (subclasses may say more)."""
        log.warning("%s disconnected: %s", type(self).__name__, exc or type(exc).__name__)

    # ---- subclass hooks --------------------------------------------------------------------

    def _connected(self) -> None:
        """A new connection is open (before ``_session``)."""
        self.connects += 1

    async def _session(self, ws: ClientConnection) -> None:
        """Subscribe and read until the session ends."""
        raise NotImplementedError
