"""Kraken WebSocket v2 market stream, usable from sync code, with REST fallback.

Contract:
- ``KrakenStream(ws_url, symbols, timeframes, fallback=…, silence_s=…)``; ``start()`` runs an
  asyncio loop in a daemon thread; ``stop()`` cancels it, closes the socket and joins the thread.
- It subscribes to ``ticker`` (all symbols) and ``ohlc`` (one subscription per timeframe:
  5m → interval 5, 1h → 60, 1d → 1440) and keeps a thread-safe cache: ``latest_ticker(symbol)``
  and ``latest_candle(symbol, tf)`` = the newest *closed* candle (a dict with the
  ``CANDLE_SCHEMA`` keys). Kraken re-sends the running candle on every trade and has no "closed"
  flag: a candle is closed when a row with a later ``interval_begin`` arrives, or when the clock
  has passed its end (quiet markets); ``source(symbol)`` says whether the ticker came from
  ``"ws"`` or ``"rest"``.
- Liveness: any message (Kraken sends ``heartbeat`` ≈1/s when idle) proves the stream alive.
  With no message for ``silence_s`` the stream is declared silent: the socket is closed and
  reconnected, and while silent ``fallback`` (a ``ports.MarketData``, e.g. ``KrakenMarket``) is
  polled every ``rest_poll_s`` for tickers (and closed candles when ``fallback_candles``). The
  first WS message after that switches back (``mode`` is ``"ws"``, ``"rest"`` or ``"stopped"``).
- Reconnect: exponential back-off with jitter (``backoff_base_s``…``backoff_max_s``), reset after
  a successful subscribe; every connection resubscribes everything and the fresh snapshot
  replaces cached state. Messages that fail to parse are logged and counted in ``parse_errors``;
  they never kill the stream.
- WS-closed candles are a convenience for low-latency reads; after a reconnect gap a candle may
  miss trades, so the warehouse takes candles from REST (``KrakenMarket.candles``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, WebSocketException

from trading_brain.adapters.clock import SystemClock
from trading_brain.domain.market import Ticker
from trading_brain.domain.timeframes import delta
from trading_brain.errors import ConfigError, DataError, TradingBrainError
from trading_brain.ports import Clock, MarketData

from . import parse
from .ratelimit import backoff_delay

log = logging.getLogger(__name__)

INTERVALS = {"1m": 1, "5m": 5, "1h": 60, "1d": 1440}
_TF_OF = {v: k for k, v in INTERVALS.items()}


class KrakenStream:
    """Background WS v2 client with a latest-state cache and REST fallback."""

    def __init__(
        self,
        ws_url: str,
        symbols: Sequence[str],
        timeframes: Sequence[str] = ("5m",),
        *,
        fallback: MarketData | None = None,
        fallback_candles: bool = True,
        silence_s: float = 30.0,
        rest_poll_s: float | None = None,
        clock: Clock | None = None,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 30.0,
        open_timeout_s: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self.ws_url = ws_url
        self.symbols = list(symbols)
        bad = [tf for tf in timeframes if tf not in INTERVALS]
        if bad:
            raise ConfigError(f"timeframes {bad} not streamed; allowed: {', '.join(INTERVALS)}")
        self.timeframes = list(timeframes)
        self.fallback = fallback
        self.fallback_candles = fallback_candles
        self.silence_s = silence_s
        self.rest_poll_s = rest_poll_s if rest_poll_s is not None else max(1.0, silence_s / 2)
        self.clock = clock or SystemClock()
        self.backoff_base_s, self.backoff_max_s = backoff_base_s, backoff_max_s
        self.open_timeout_s = open_timeout_s
        self._rng = rng or random.Random()
        self._cond = threading.Condition()
        self._tickers: dict[str, Ticker] = {}
        self._sources: dict[str, str] = {}
        self._forming: dict[tuple[str, str], dict[str, Any]] = {}
        self._closed: dict[tuple[str, str], dict[str, Any]] = {}
        self.mode, self.system_status = "stopped", ""
        self.connects = self.parse_errors = self.rest_polls = self._attempt = 0
        self.errors: list[str] = []  # refused subscriptions
        self._last_msg = time.monotonic()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._started, self._stopping = threading.Event(), False

    @classmethod
    def from_settings(
        cls, settings: Any, symbols: Sequence[str], timeframes: Sequence[str], **kw: Any
    ) -> KrakenStream:
        """Build from ``settings.KrakenSettings`` (``ws_url``, ``ws_silence_s``)."""
        return cls(settings.ws_url, symbols, timeframes, silence_s=settings.ws_silence_s, **kw)

    # ---- sync API ---------------------------------------------------------------------------

    def start(self) -> KrakenStream:
        if self._thread is not None:
            raise RuntimeError("KrakenStream already started")
        self._last_msg = time.monotonic()
        self.mode = "ws"
        self._thread = threading.Thread(target=self._thread_main, name="kraken-ws", daemon=True)
        self._thread.start()
        self._started.wait(5)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel the stream, close the socket and join the thread (idempotent)."""
        self._stopping = True  # also checked in the loops: a cancel can be swallowed by wait_for
        if self._loop is not None and self._task is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._task.cancel)
            except RuntimeError:
                pass  # loop already closed
        if self._thread is not None:
            self._thread.join(timeout)
        self._set_mode("stopped")

    def __enter__(self) -> KrakenStream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def last_message_age(self) -> float:
        """Seconds since the last WS message (heartbeats included)."""
        return time.monotonic() - self._last_msg

    def latest_ticker(self, symbol: str) -> Ticker | None:
        with self._cond:
            return self._tickers.get(symbol)

    def source(self, symbol: str) -> str | None:
        with self._cond:
            return self._sources.get(symbol)

    def latest_candle(self, symbol: str, timeframe: str) -> dict[str, Any] | None:
        """The newest closed candle of ``symbol``/``timeframe`` seen, or None."""
        key = (symbol, timeframe)
        with self._cond:
            closed, forming = self._closed.get(key), self._forming.get(key)
        if forming is not None and forming["ts"] + delta(timeframe) <= self.clock.now():
            if closed is None or forming["ts"] > closed["ts"]:
                return dict(forming)
        return dict(closed) if closed is not None else None

    def wait_for(self, predicate: Callable[[KrakenStream], bool], timeout: float) -> bool:
        """Block until ``predicate(self)`` holds (re-checked on every cache change) or timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    # ---- state updates (loop thread) ---------------------------------------------------------

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _set_mode(self, mode: str) -> None:
        with self._cond:
            if self.mode != mode:
                log.info("Kraken stream mode %s -> %s", self.mode, mode)
                self.mode = mode
            self._cond.notify_all()

    def _put_ticker(self, t: Ticker, source: str) -> None:
        with self._cond:
            self._tickers[t.symbol], self._sources[t.symbol] = t, source
            self._cond.notify_all()

    def _put_candle(self, c: dict[str, Any]) -> None:
        key = (c["symbol"], c["timeframe"])
        with self._cond:
            prev = self._forming.get(key)
            if prev is None or c["ts"] >= prev["ts"]:
                if prev is not None and c["ts"] > prev["ts"]:
                    self._closed[key] = prev
                self._forming[key] = c
            self._cond.notify_all()

    def _put_closed(self, c: dict[str, Any]) -> None:
        key = (c["symbol"], c["timeframe"])
        with self._cond:
            old = self._closed.get(key)
            if old is None or c["ts"] >= old["ts"]:
                self._closed[key] = c
            self._cond.notify_all()

    def _handle(self, raw: str | bytes) -> None:
        try:
            msg = json.loads(raw)
            channel = msg.get("channel")
            if channel in ("ticker", "ohlc"):
                for row in msg.get("data") or []:
                    self._handle_row(channel, row)
            elif channel == "status":
                self.system_status = str((msg.get("data") or [{}])[0].get("system", ""))
            elif msg.get("method") == "subscribe":
                self._handle_ack(msg)
        except (ValueError, AttributeError, TypeError, IndexError, DataError) as e:
            self.parse_errors += 1
            log.warning("Kraken stream: bad message skipped: %s", e)

    def _handle_row(self, channel: str, row: dict[str, Any]) -> None:
        if channel == "ticker":
            self._put_ticker(parse.ws_ticker(row, self.clock.now()), "ws")
            return
        tf = _TF_OF.get(row.get("interval"))
        if tf is None:
            raise DataError(f"Kraken WS ohlc: unexpected interval {row.get('interval')!r}")
        self._put_candle(parse.ws_ohlc(row, tf))

    def _handle_ack(self, msg: dict[str, Any]) -> None:
        if msg.get("success"):
            self._attempt = 0
            return
        err = f"subscribe {msg.get('symbol', '')}: {msg.get('error')}"
        self.errors.append(err)
        log.error("Kraken stream: %s", err)

    # ---- the loop ----------------------------------------------------------------------------

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._task = loop.create_task(self._main())
        self._started.set()
        try:
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _main(self) -> None:
        watchdog = asyncio.create_task(self._watchdog())
        try:
            while not self._stopping:
                try:
                    async with connect(self.ws_url, open_timeout=self.open_timeout_s,
                                       proxy=None, compression=None, close_timeout=2) as ws:
                        self.connects += 1
                        self._notify()
                        await self._subscribe(ws)
                        await self._read(ws)
                except (OSError, TimeoutError, InvalidHandshake, WebSocketException) as e:
                    log.warning("Kraken stream disconnected: %s", e or type(e).__name__)
                delay = backoff_delay(self._attempt, self.backoff_base_s, self.backoff_max_s,
                                      self._rng)
                self._attempt += 1
                await asyncio.sleep(delay)
        finally:
            watchdog.cancel()

    async def _subscribe(self, ws: ClientConnection) -> None:
        subs: list[dict[str, Any]] = [{"channel": "ticker", "symbol": self.symbols}]
        subs += [{"channel": "ohlc", "symbol": self.symbols, "interval": INTERVALS[tf]}
                 for tf in self.timeframes]
        for req_id, params in enumerate(subs if self.symbols else [], start=1):
            await ws.send(json.dumps({"method": "subscribe", "req_id": req_id, "params": params}))

    async def _read(self, ws: ClientConnection) -> None:
        """Consume messages until the connection fails or stays silent for ``silence_s``."""
        while not self._stopping:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=self.silence_s)
            except TimeoutError:
                log.warning("Kraken stream silent for %.1fs; reconnecting", self.silence_s)
                self._set_mode("rest")
                return
            self._last_msg = time.monotonic()
            if self.mode != "ws":
                self._set_mode("ws")
            self._handle(raw)
            self._notify()

    async def _watchdog(self) -> None:
        """Switch to REST polling while the stream is silent."""
        last_poll = float("-inf")
        tick = min(1.0, self.silence_s / 4)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if now - self._last_msg <= self.silence_s:
                continue
            if self.mode != "rest":
                self._set_mode("rest")
            if self.fallback is not None and now - last_poll >= self.rest_poll_s:
                last_poll = now
                await asyncio.get_running_loop().run_in_executor(None, self._poll_rest)

    def _poll_rest(self) -> None:
        assert self.fallback is not None
        try:
            for t in self.fallback.tickers(self.symbols).values():
                self._put_ticker(t, "rest")
            if self.fallback_candles:
                now = self.clock.now()
                for sym in self.symbols:
                    for tf in self.timeframes:
                        df = self.fallback.candles(sym, tf, now - 3 * delta(tf), now)  # type: ignore[arg-type]
                        if df.height:
                            self._put_closed(df.row(-1, named=True))
            self.rest_polls += 1
            with self._cond:
                self._cond.notify_all()
        except TradingBrainError as e:
            log.warning("Kraken REST fallback failed: %s", e)
        except Exception:  # a background poller must not die; the error is logged in full
            log.exception("Kraken REST fallback crashed")
