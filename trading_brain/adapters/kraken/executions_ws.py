"""Kraken WS v2 ``executions`` channel: live order-status and fill updates, usable from sync code.

Contract:
- ``KrakenExecutionStream(ws_url, token_provider, …)`` is a ``WsSession`` (``ws_session``):
  ``start()`` runs an asyncio loop in a daemon thread, ``stop()`` cancels it and joins. Every
  (re)connection asks ``token_provider()`` (e.g. ``KrakenPrivate.websockets_token``; called in
  a worker thread, it does REST) for a fresh token once the socket is open, and subscribes
  ``{"channel": "executions", "token": …, "snap_orders": true, "snap_trades": snap_trades}``.
  The token is never logged.
- Rows are parsed with ``json.loads(parse_float=Decimal)``. Kraken sends full detail on
  ``pending_new`` / snapshot rows and sparse rows later (``new``, ``filled``, ``canceled``), so
  fields are merged per ``order_id`` before building an ``OrderStatus`` (states:
  pending_new→pending, new→open, partially_filled, filled, canceled, expired). A ``trade`` row
  yields a ``Fill`` (``exec_id`` = fill id, ``last_qty``/``last_price``, fee = sum of ``fees``).
  Completion is taken from the separate ``filled`` event, never inferred from a trade row.
- Read API (thread-safe): ``status(order_id)``, ``status_by_client_id(cid)``, ``fills()``
  (deduplicated by fill id, arrival order), ``wait_for(predicate, timeout)``. Optional
  callbacks ``on_status``/``on_fill`` run on the stream thread; their exceptions are logged,
  never kill the stream.
- Reliability (the ``WsSession`` policy): no message for ``silence_s`` (Kraken heartbeats ≈1/s)
  → reconnect; exponential back-off with jitter between attempts, reset by a successful
  subscribe; a refused subscribe (``ESession:Invalid session``) or a failed token fetch →
  reconnect (with a new token). A ``sequence`` gap is counted in ``sequence_gaps``; the stream
  is a latency aid — the executor still reconciles over REST (the venue is the truth), and
  never replays orders from it. Bad rows are counted in ``parse_errors`` and skipped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection

from trading_brain.domain.orders import Fill, OrderState, OrderStatus
from trading_brain.errors import DataError, TradingBrainError

from .parse import _ws_time
from .symbols import common_asset
from .ws_session import SessionRefused, WsSession

log = logging.getLogger(__name__)
_T = TypeVar("_T")

_STATES: dict[str, OrderState] = {
    "pending_new": "pending", "new": "open", "partially_filled": "partially_filled",
    "filled": "filled", "canceled": "canceled", "expired": "expired"}


def _call_back(cb: Callable[[_T], None], arg: _T) -> None:
    try:
        cb(arg)
    except Exception:  # a consumer bug must not kill the stream
        log.exception("Kraken executions callback failed")


def _dec(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str | float):
        raise DataError(f"{where}: {value!r} is not a number")
    return Decimal(str(value))


class KrakenExecutionStream(WsSession):
    """Background WS v2 ``executions`` client with an order/fill cache."""

    thread_name = "kraken-exec-ws"

    def __init__(
        self,
        ws_url: str,
        token_provider: Callable[[], str],
        *,
        snap_trades: bool = True,
        on_status: Callable[[OrderStatus], None] | None = None,
        on_fill: Callable[[Fill], None] | None = None,
        silence_s: float = 15.0,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 30.0,
        open_timeout_s: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(ws_url, silence_s=silence_s, backoff_base_s=backoff_base_s,
                         backoff_max_s=backoff_max_s, open_timeout_s=open_timeout_s, rng=rng)
        self._token_provider = token_provider
        self.snap_trades = snap_trades
        self.on_status, self.on_fill = on_status, on_fill
        self._cond = threading.Condition()
        self._rows: dict[str, dict[str, Any]] = {}  # merged fields per order_id
        self._statuses: dict[str, OrderStatus] = {}
        self._fills: dict[str, Fill] = {}
        self.parse_errors = self.sequence_gaps = self.snapshots = 0
        self.errors: list[str] = []
        self._seq: int | None = None
        self.last_message = time.monotonic()

    # ---- sync API ------------------------------------------------------------------------------

    def status(self, order_id: str) -> OrderStatus | None:
        with self._cond:
            return self._statuses.get(order_id)

    def status_by_client_id(self, client_order_id: str) -> OrderStatus | None:
        with self._cond:
            hits = [s for s in self._statuses.values() if s.client_order_id == client_order_id]
        return max(hits, key=lambda s: s.updated_at) if hits else None

    def fills(self) -> list[Fill]:
        with self._cond:
            return list(self._fills.values())

    def wait_for(self, predicate: Callable[[KrakenExecutionStream], bool], timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    # ---- parsing (loop thread) -----------------------------------------------------------------

    def _handle(self, raw: str | bytes) -> None:
        try:
            msg = json.loads(raw, parse_float=Decimal)
        except ValueError as e:
            self.parse_errors += 1
            log.warning("Kraken executions: undecodable message skipped: %s", e)
            return
        if not isinstance(msg, dict):
            self.parse_errors += 1
            return
        if msg.get("channel") == "executions" and isinstance(msg.get("data"), list):
            self._check_sequence(msg)
            for row in msg["data"]:
                try:
                    self._handle_row(row)
                except (DataError, ValidationError, KeyError, TypeError, ValueError) as e:
                    self.parse_errors += 1
                    log.warning("Kraken executions: bad row skipped: %s", e)
            with self._cond:
                self._cond.notify_all()
        elif msg.get("method") == "subscribe":
            self._handle_ack(msg)

    def _check_sequence(self, msg: dict[str, Any]) -> None:
        seq = msg.get("sequence")
        if msg.get("type") == "snapshot":
            self.snapshots += 1
        elif isinstance(seq, int) and self._seq is not None and seq != self._seq + 1:
            self.sequence_gaps += 1
            log.warning("Kraken executions: sequence gap %s -> %s", self._seq, seq)
        if isinstance(seq, int):
            self._seq = seq

    def _handle_ack(self, msg: dict[str, Any]) -> None:
        if msg.get("success"):
            self.backoff.reset()
            return
        self.errors.append(str(msg.get("error")))
        log.error("Kraken executions subscribe refused: %s", msg.get("error"))
        raise SessionRefused(str(msg.get("error")))

    def _handle_row(self, row: dict[str, Any]) -> None:
        oid = str(row["order_id"])
        with self._cond:
            merged = {**self._rows.get(oid, {}), **row}
            self._rows[oid] = merged
        fill = self._fill(oid, merged, row) if row.get("exec_type") == "trade" else None
        status = self._status(oid, merged)
        with self._cond:
            if status is not None:
                self._statuses[oid] = status
            if fill is not None:
                self._fills.setdefault(fill.fill_id, fill)
        if self.on_status is not None and status is not None:
            _call_back(self.on_status, status)
        if self.on_fill is not None and fill is not None:
            _call_back(self.on_fill, fill)

    def _status(self, oid: str, m: dict[str, Any]) -> OrderStatus | None:
        if not all(k in m for k in ("symbol", "side", "order_qty", "order_status")):
            return None  # a sparse row for an order we have not seen in full yet
        where = f"Kraken executions {oid}"
        state = _STATES.get(str(m["order_status"]))
        if state is None:
            raise DataError(f"{where}: unknown order_status {m['order_status']!r}")
        filled = _dec(m.get("cum_qty", 0), f"{where}.cum_qty")
        avg = _dec(m.get("avg_price", 0), f"{where}.avg_price")
        return OrderStatus(
            client_order_id=m.get("cl_ord_id"), venue_order_id=oid, symbol=str(m["symbol"]),
            side=m["side"], order_type=str(m.get("order_type", "")),
            quantity=_dec(m["order_qty"], f"{where}.order_qty"), state=state,
            filled_qty=filled, avg_price=avg if filled > 0 and avg > 0 else None,
            fee=_dec(m.get("fee_usd_equiv", 0), f"{where}.fee_usd_equiv"),
            limit_price=_dec(m["limit_price"], where) if m.get("limit_price") else None,
            stop_price=_dec(m["stop_price"], where) if m.get("stop_price") else None,
            reason=m.get("reason"),
            updated_at=_ws_time(m["timestamp"], where) if "timestamp" in m else datetime.now(UTC),
        )

    def _fill(self, oid: str, m: dict[str, Any], row: dict[str, Any]) -> Fill:
        where = f"Kraken executions trade {row.get('exec_id')}"
        fees = row.get("fees") or []
        return Fill(
            fill_id=str(row["exec_id"]), client_order_id=m.get("cl_ord_id"), venue_order_id=oid,
            symbol=str(m["symbol"]), side=m["side"],
            qty=_dec(row["last_qty"], f"{where}.last_qty"),
            price=_dec(row["last_price"], f"{where}.last_price"),
            fee=sum((_dec(f["qty"], f"{where}.fees") for f in fees), Decimal(0)),
            fee_currency=common_asset(str(fees[0]["asset"])) if fees else "",
            ts=_ws_time(row["timestamp"], where),
        )

    # ---- the loop ------------------------------------------------------------------------------

    def _connected(self) -> None:
        with self._cond:
            super()._connected()
            self._seq = None
            self._cond.notify_all()

    async def _session(self, ws: ClientConnection) -> None:
        token = await asyncio.get_running_loop().run_in_executor(None, self._token_provider)
        await self._subscribe(ws, token)
        await self._read(ws)

    def _ended(self, exc: Exception) -> None:
        if isinstance(exc, SessionRefused):
            return  # logged (and recorded in ``errors``) where it was refused
        if isinstance(exc, TradingBrainError):
            log.warning("Kraken executions: no WS token: %s", exc)
            return
        super()._ended(exc)

    async def _subscribe(self, ws: ClientConnection, token: str) -> None:
        await ws.send(json.dumps({"method": "subscribe", "req_id": 1, "params": {
            "channel": "executions", "token": token, "snap_orders": True,
            "snap_trades": self.snap_trades}}))

    async def _read(self, ws: ClientConnection) -> None:
        while not self._stopping:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=self.silence_s)
            except TimeoutError:
                log.warning("Kraken executions silent for %.1fs; reconnecting", self.silence_s)
                return
            self.last_message = time.monotonic()
            self._handle(raw)

