"""Kraken WebSocket v2 market stream, usable from sync code, with REST fallback.

Contract:
- ``KrakenStream(ws_url, symbols, timeframes, fallback=…, silence_s=…)`` is a ``WsSession``
  (``ws_session``): ``start()`` runs an asyncio loop in a daemon thread; ``stop()`` cancels it,
  closes the socket and joins the thread.
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
- Reconnect: the ``WsSession`` policy (exponential back-off with jitter, ``backoff_base_s``…
  ``backoff_max_s``, reset after a successful subscribe); every connection resubscribes
  everything and the fresh snapshot replaces cached state. Messages that fail to parse are
  logged and counted in ``parse_errors``; they never kill the stream.
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
from typing import Any, Self

from websockets.asyncio.client import ClientConnection

from trading_brain.adapters.clock import SystemClock
from trading_brain.domain.market import Ticker
from trading_brain.domain.timeframes import Timeframe, delta, parse_timeframe
from trading_brain.errors import ConfigError, DataError, TradingBrainError
from trading_brain.ports import Clock, MarketData
from trading_brain.settings import KrakenSettings

from . import parse
from .market import INTERVAL_MINUTES as INTERVALS
from .ws_session import WsSession

log = logging.getLogger(__name__)

_TF_OF = {v: k for k, v in INTERVALS.items()}


class KrakenStream(WsSession):
    """Background WS v2 client with a latest-state cache and REST fallback."""

    thread_name = "kraken-ws"

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
        super().__init__(ws_url, silence_s=silence_s, backoff_base_s=backoff_base_s,
                         backoff_max_s=backoff_max_s, open_timeout_s=open_timeout_s, rng=rng)
        self.symbols = list(symbols)
        bad = [tf for tf in timeframes if tf not in INTERVALS]
        if bad:
            raise ConfigError(f"timeframes {bad} not streamed; allowed: {', '.join(INTERVALS)}")
        self.timeframes: list[Timeframe] = [parse_timeframe(tf) for tf in timeframes]
        self.fallback = fallback
        self.fallback_candles = fallback_candles
        self.rest_poll_s = rest_poll_s if rest_poll_s is not None else max(1.0, silence_s / 2)
        self.clock = clock or SystemClock()
        self._cond = threading.Condition()
        self._tickers: dict[str, Ticker] = {}
        self._sources: dict[str, str] = {}
        self._forming: dict[tuple[str, str], dict[str, Any]] = {}
        self._closed: dict[tuple[str, str], dict[str, Any]] = {}
        self.mode, self.system_status = "stopped", ""
        self.parse_errors = self.rest_polls = 0
        self.errors: list[str] = []  # refused subscriptions
        self._last_msg = time.monotonic()

    @classmethod
    def from_settings(
        cls, settings: KrakenSettings, symbols: Sequence[str], timeframes: Sequence[str],
        **kw: Any,
    ) -> KrakenStream:
        """Build from ``settings.KrakenSettings`` (``ws_url``, ``ws_silence_s``)."""
        return cls(settings.ws_url, symbols, timeframes, silence_s=settings.ws_silence_s, **kw)

    # ---- sync API ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is None:
            self._last_msg = time.monotonic()
            self.mode = "ws"
        return super().start()

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel the stream, close the socket and join the thread (idempotent)."""
        super().stop(timeout)
        self._set_mode("stopped")

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
        interval = row.get("interval")
        tf = _TF_OF.get(interval) if isinstance(interval, int) else None
        if tf is None:
            raise DataError(f"Kraken WS ohlc: unexpected interval {row.get('interval')!r}")
        self._put_candle(parse.ws_ohlc(row, tf))

    def _handle_ack(self, msg: dict[str, Any]) -> None:
        if msg.get("success"):
            self.backoff.reset()
            return
        err = f"subscribe {msg.get('symbol', '')}: {msg.get('error')}"
        self.errors.append(err)
        log.error("Kraken stream: %s", err)

    # ---- the loop ----------------------------------------------------------------------------

    async def _main(self) -> None:
        watchdog = asyncio.create_task(self._watchdog())
        try:
            await self._run_sessions()
        finally:
            watchdog.cancel()

    def _connected(self) -> None:
        super()._connected()
        self._notify()

    async def _session(self, ws: ClientConnection) -> None:
        await self._subscribe(ws)
        await self._read(ws)

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
                        df = self.fallback.candles(sym, tf, now - 3 * delta(tf), now)
                        if df.height:
                            self._put_closed(df.row(-1, named=True))
            self.rest_polls += 1
            with self._cond:
                self._cond.notify_all()
        except TradingBrainError as e:
            log.warning("Kraken REST fallback failed: %s", e)
        except Exception:  # a background poller must not die; the error is logged in full
            log.exception("Kraken REST fallback crashed")
