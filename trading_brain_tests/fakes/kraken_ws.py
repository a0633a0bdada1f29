"""The WebSocket v2 half of the fake Kraken (``websockets`` asyncio server in its own thread).

Contract:
- Binds 127.0.0.1 on an ephemeral port (``url``). On connect it sends the ``status`` message;
  requests are routed by ``METHODS[method](server, conn, msg)`` and subscriptions by
  ``CHANNELS[channel](server, conn, params, symbol)`` which returns the snapshot rows.
- Private ``executions`` channel (no symbols): ``params.token`` must be one issued by REST
  ``GetWebSocketsToken`` (else ``ESession:Invalid session``); the ack carries ``maxratecount``;
  a snapshot (``snap_orders`` default true, ``snap_trades`` default false) follows; every order
  event of ``state.private`` is pushed as an ``update`` with a per-connection ``sequence``.
  ``exec_sent`` counts pushed execution messages. (WS ``add_order``/``cancel_order`` methods are
  not implemented.)
- ``subscribe`` answers one ack per symbol (the captured ack shape), then a snapshot; the v1 name
  ``XBT/USD`` is refused with ``Currency pair not supported XBT/USD``. ``ping`` → ``pong``.
  A heartbeat ``{"channel":"heartbeat"}`` goes out every ``heartbeat_s`` to subscribed clients.
- Test controls (thread-safe): ``push(channel, rows)`` sends an update to every subscriber of
  ``channel`` (per row symbol), ``drop()`` aborts every connection without a close frame (the
  client sees 1006), ``silent = True`` stops all output (no heartbeats, no answers) while the
  socket stays open, ``connections`` counts accepted connections, ``subscribes`` logs
  ``(channel, symbol, params)``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed


class _Conn:
    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.subs: set[tuple[str, str, int | None]] = set()  # (channel, symbol, interval)
        self.seq = 0  # executions sequence


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ch_ticker(srv: FakeKrakenWS, params: dict[str, Any], symbol: str) -> list[dict[str, Any]]:
    with srv.state.lock:
        base = srv.state.ws_ticker["data"][0]
        row = copy.deepcopy(srv.tickers.get(symbol) or {**base, "symbol": symbol})
    return [row]


def ch_ohlc(srv: FakeKrakenWS, params: dict[str, Any], symbol: str) -> list[dict[str, Any]]:
    interval = int(params.get("interval", 1))
    with srv.state.lock:
        row = copy.deepcopy(srv.state.ws_ohlc["data"][0])
    row.update(symbol=symbol, interval=interval)
    return [row]


CHANNELS: dict[str, Callable[[FakeKrakenWS, dict[str, Any], str], list[dict[str, Any]]]] = {
    "ticker": ch_ticker,
    "ohlc": ch_ohlc,
}


async def sub_executions(srv: FakeKrakenWS, conn: _Conn, params: dict[str, Any],
                         base: dict[str, Any]) -> None:
    from trading_brain_tests.fakes import kraken_private

    with srv.state.lock:
        ok = params.get("token") in srv.state.private.tokens
    if not ok:
        await srv.send(conn, {**base, "channel": "executions", "status": "error",
                              "success": False, "error": "ESession:Invalid session"})
        return
    conn.subs.add(("executions", "*", None))
    conn.seq = 1
    await srv.send(conn, {**base, "success": True, "result": {
        "channel": "executions", "maxratecount": 180, "snapshot": True}})
    rows = kraken_private.snapshot_rows(srv.state, bool(params.get("snap_orders", True)),
                                        bool(params.get("snap_trades", False)))
    await srv.send(conn, {"channel": "executions", "type": "snapshot", "data": rows,
                          "sequence": conn.seq})


async def m_subscribe(srv: FakeKrakenWS, conn: _Conn, msg: dict[str, Any]) -> None:
    params = msg.get("params") or {}
    channel = params.get("channel")
    base = {"method": "subscribe", "req_id": msg.get("req_id"), "time_in": _now(),
            "time_out": _now()}
    if channel == "executions":
        await sub_executions(srv, conn, params, base)
        return
    if channel not in CHANNELS:
        await srv.send(conn, {**base, "success": False, "error": "Subscription name invalid"})
        return
    for symbol in params.get("symbol") or []:
        if symbol.startswith(("XBT/", "XDG/")):
            await srv.send(conn, {**base, "success": False, "symbol": symbol,
                                  "error": f"Currency pair not supported {symbol}"})
            continue
        interval = int(params["interval"]) if channel == "ohlc" else None
        conn.subs.add((channel, symbol, interval))
        srv.subscribes.append((channel, symbol, dict(params)))
        result = {"channel": channel, "symbol": symbol, "snapshot": True}
        if interval is not None:
            result["interval"] = interval
        await srv.send(conn, {**base, "success": True, "result": result})
        if params.get("snapshot", True):
            rows = CHANNELS[channel](srv, params, symbol)
            await srv.send(conn, {"channel": channel, "type": "snapshot", "data": rows})


async def m_ping(srv: FakeKrakenWS, conn: _Conn, msg: dict[str, Any]) -> None:
    await srv.send(conn, {"method": "pong", "req_id": msg.get("req_id"), "time_in": _now(),
                          "time_out": _now()})


METHODS: dict[str, Callable[[FakeKrakenWS, _Conn, dict[str, Any]], Any]] = {
    "subscribe": m_subscribe,
    "ping": m_ping,
}


class FakeKrakenWS:
    def __init__(self, state: Any, *, heartbeat_s: float = 1.0) -> None:
        self.state = state
        self.heartbeat_s = heartbeat_s
        self.silent = False
        self.connections = 0
        self.subscribes: list[tuple[str, str, dict[str, Any]]] = []
        self.tickers: dict[str, dict[str, Any]] = {}  # latest pushed ticker row per symbol
        self._conns: set[_Conn] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="fake-kraken-ws", daemon=True)
        self._ready = threading.Event()
        self._server: Any = None
        self.port = 0
        self.exec_sent = 0
        self._exec_queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        private = getattr(state, "private", None)
        if private is not None:
            private.listeners.append(self._on_exec)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v2"

    def _run(self) -> None:
        async def _open() -> Any:
            return await serve(self._handler, "127.0.0.1", 0, ping_interval=None,
                               compression=None)

        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(_open())
        self.port = self._server.sockets[0].getsockname()[1]
        self._pusher = self._loop.create_task(self._exec_pusher())
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("fake Kraken WS server did not start")

    def stop(self) -> None:
        async def _close() -> None:
            self._pusher.cancel()
            self._server.close()
            for c in list(self._conns):
                c.ws.transport.abort()
            await self._server.wait_closed()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(_close(), self._loop).result(timeout=5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop.close()

    async def send(self, conn: _Conn, msg: dict[str, Any]) -> None:
        if self.silent:
            return
        try:
            await conn.ws.send(json.dumps(msg))
        except ConnectionClosed:
            pass

    async def _handler(self, ws: ServerConnection) -> None:
        conn = _Conn(ws)
        self._conns.add(conn)
        self.connections += 1
        beat = asyncio.ensure_future(self._heartbeat(conn))
        try:
            await self.send(conn, {"channel": "status", "type": "update", "data": [
                {"api_version": "v2", "connection_id": 1, "system": self.state.status,
                 "version": "2.0.0"}]})
            async for raw in ws:
                if self.silent:
                    continue
                msg = json.loads(raw)
                method = METHODS.get(msg.get("method"))
                if method is None:
                    await self.send(conn, {"method": msg.get("method"), "success": False,
                                           "error": "Method not found",
                                           "req_id": msg.get("req_id")})
                else:
                    await method(self, conn, msg)
        except ConnectionClosed:
            pass
        finally:
            beat.cancel()
            self._conns.discard(conn)

    async def _heartbeat(self, conn: _Conn) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            if conn.subs:
                await self.send(conn, {"channel": "heartbeat"})

    def _on_exec(self, rows: list[dict[str, Any]]) -> None:
        """Order events from the REST side (any thread): queued, pushed in order by one task."""
        if self._ready.is_set() and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._exec_queue.put_nowait, copy.deepcopy(rows))
            except RuntimeError:
                pass  # the server is stopping

    async def _exec_pusher(self) -> None:
        while True:
            rows = await self._exec_queue.get()
            for c in list(self._conns):
                if ("executions", "*", None) in c.subs:
                    c.seq += 1
                    await self.send(c, {"channel": "executions", "type": "update", "data": rows,
                                        "sequence": c.seq})
                    self.exec_sent += 1

    # ---- controls (called from the test thread) -------------------------------------------

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=5)

    def push(self, channel: str, rows: list[dict[str, Any]]) -> int:
        """Send an update with ``rows`` to every subscriber; return how many messages went out."""
        if channel == "ticker":
            for r in rows:
                self.tickers[r["symbol"]] = copy.deepcopy(r)

        async def _push() -> int:
            sent = 0
            for c in list(self._conns):
                mine = [r for r in rows if any(s[0] == channel and s[1] == r["symbol"]
                                               and s[2] in (None, r.get("interval"))
                                               for s in c.subs)]
                if mine:
                    await self.send(c, {"channel": channel, "type": "update", "data": mine})
                    sent += 1
            return sent

        return self._call(_push())

    def drop(self) -> int:
        """Abort every connection (no close frame); return how many were dropped."""

        async def _drop() -> int:
            conns = list(self._conns)
            for c in conns:
                c.ws.transport.abort()
            return len(conns)

        return self._call(_drop())

    def live_connections(self) -> int:
        return len(self._conns)
