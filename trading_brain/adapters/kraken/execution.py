"""``KrakenExecution``: the live Exchange adapter (orders, fills, balances) over Kraken private
REST.

Contract:
- Construction refuses (``OperationalError`` naming every missing item) unless
  ``settings.execution == "kraken"``, ``settings.allow_live_orders`` is true and both
  ``KRAKEN_API_KEY`` and ``KRAKEN_API_SECRET`` are set (``check_live_allowed``).
- ``place_order(OrderRequest) -> OrderAck``: one ``AddOrder`` with ``cl_ord_id`` (Kraken accepts
  a 36-char UUID, 32 hex chars or ≤ 18 printable ASCII chars, else ``OrderRejected(reason=
  "invalid_client_order_id")`` before sending), volume rounded *down* to lot precision, prices
  to the pair's precision on the trader's side (buy: down; sell limit, stop-loss and
  take-profit: up, so a stop never loses more than asked), ``oflags=fciq`` (fees always in
  the quote currency, so fills match the project's cash fee model). Never retried: a
  timeout/5xx/``EService:*`` or an unreadable answer raises ``AmbiguousOrderError`` — settle
  it with ``order_by_client_id``.
  Venue refusals raise ``OrderRejected`` with a reason code (``insufficient_funds``,
  ``order_minimum``, ``cost_minimum``…).
- ``order_by_client_id(cid) -> OrderStatus | None``: OpenOrders{cl_ord_id}, then (only when
  not open) ClosedOrders{cl_ord_id} (most recent wins); None = Kraken never accepted it.
- ``open_orders()``, ``cancel_order(client_order_id=… | venue_order_id=…) -> bool`` (False when
  the order is unknown or already closed), ``fills_since(t) -> list[Fill]`` (TradesHistory after
  ``t``, all pages, oldest first, client ids filled in via QueryOrders, each txid asked once),
  ``balances() -> Balance`` (common asset codes; staked/suffixed assets skipped),
  ``fee_tier(symbol) -> FeeTier`` and ``fee_tiers(symbols)`` (one TradeVolume call for all).
- Exchange-native protection: ONE ``stop-loss`` trigger sell per position (engine/protective.py:
  an untriggered trigger holds the coins, so a second trigger for them would be refused
  ``EOrder:Insufficient funds``; the take-profit is an executor exit: cancel the stop, confirm,
  sell at market). ``reconcile_protective(entry, stop_cid)`` is idempotent: it looks the entry
  and the stop up by client id (``stop_cid``, default ``derive_client_order_id(entry, "sl")``)
  and, once the entry is terminal with a fill and no such stop exists, places it for the filled
  quantity at ``entry.stop_loss``. It never raises: a ``Protection`` carries the entry's and the
  stop's status, the venue id of a placement, a refusal's reason code (``refused``) or any
  other failure (``error``, ``ambiguous``), so the caller records whatever already happened.
- ``execution_stream(**kw)`` builds the WS ``executions`` client (``executions_ws``) for
  low-latency updates; REST stays the truth for reconciliation.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.orders import (
    Balance,
    FeeTier,
    Fill,
    OrderAck,
    OrderRequest,
    OrderStatus,
    derive_client_order_id,
)
from trading_brain.engine.executor.protective import Protection
from trading_brain.errors import (
    AmbiguousOrderError,
    DataError,
    OperationalError,
    OrderRejected,
    TradingBrainError,
)
from trading_brain.ports import Clock
from trading_brain.settings import Secrets, Settings

from . import parse
from .client import KrakenClient
from .executions_ws import KrakenExecutionStream
from .private import KrakenPrivate, enable_private
from .signing import Credentials, NonceSource
from .symbols import PairMap, common_asset

_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")
_TEXT = re.compile(r"^[\x21-\x7e]{1,18}$")


def valid_cl_ord_id(value: str) -> bool:
    """Kraken's ``cl_ord_id`` rules: long UUID, short UUID (32 hex) or ≤ 18 ASCII chars."""
    return bool(_UUID.match(value) or _HEX32.match(value) or _TEXT.match(value))


def check_live_allowed(settings: Settings, secrets: Secrets) -> Credentials:
    """Credentials for live trading, or ``OperationalError`` naming everything missing."""
    missing = []
    if settings.execution != "kraken":
        missing.append('execution = "kraken"')
    if settings.allow_live_orders is not True:
        missing.append("allow_live_orders = true")
    key, secret = secrets.kraken_api_key, secrets.kraken_api_secret
    key_text = key.get_secret_value() if key is not None else ""
    secret_text = secret.get_secret_value() if secret is not None else ""
    if not key_text:
        missing.append("KRAKEN_API_KEY")
    if not secret_text:
        missing.append("KRAKEN_API_SECRET")
    if missing:
        raise OperationalError("live Kraken trading refused; missing: " + ", ".join(missing))
    return Credentials(key_text, secret_text)


class KrakenExecution:
    """The live Exchange adapter."""

    name = "kraken"

    def __init__(
        self,
        settings: Settings,
        secrets: Secrets,
        clock: Clock,
        *,
        client: KrakenClient | None = None,
        tier: str = "starter",
        nonces: NonceSource | None = None,
    ) -> None:
        credentials = check_live_allowed(settings, secrets)
        self.settings = settings
        self.clock = clock
        self.client = client or KrakenClient.from_settings(settings.kraken)
        self.private: KrakenPrivate = enable_private(self.client, credentials, tier=tier,
                                                     nonces=nonces)
        self._pairs: dict[str, AssetPair] = {}
        self._map: PairMap | None = None
        self._lock = threading.Lock()
        self._cids: dict[str, str | None] = {}  # venue txid -> cl_ord_id (immutable)

    def execution_stream(self, **kw: Any) -> KrakenExecutionStream:
        """A (not yet started) WS ``executions`` stream on ``kraken.ws_auth_url`` with tokens
        from this adapter's private API."""
        return KrakenExecutionStream(self.settings.kraken.ws_auth_url,
                                     self.private.websockets_token, **kw)

    # ---- pairs ---------------------------------------------------------------------------------

    def _pair_map(self) -> PairMap:
        with self._lock:
            if self._map is None:
                raw = self.client.asset_pairs()
                self._map = PairMap.from_asset_pairs(raw)
                for key, row in raw.items():
                    if not key.endswith(".d"):
                        ap = parse.asset_pair(key, row)
                        self._pairs.setdefault(ap.symbol, ap)
            return self._map

    def pair(self, symbol: str) -> AssetPair:
        sym = self._pair_map().symbol(symbol)
        return self._pairs[sym]

    def _symbol(self, kraken_name: str) -> str:
        return self._pair_map().symbol(kraken_name)

    # ---- orders --------------------------------------------------------------------------------

    def place_order(self, req: OrderRequest) -> OrderAck:
        """Send one order; ``AmbiguousOrderError`` when its fate is unknown (never resent)."""
        if not valid_cl_ord_id(req.client_order_id):
            raise OrderRejected(f"client order id {req.client_order_id!r} breaks Kraken's "
                                "cl_ord_id rules", reason="invalid_client_order_id")
        p = self.pair(req.symbol)
        params = self._order_params(p, req.client_order_id, req.side, req.type, req.quantity,
                                    req.limit_price)
        return self._add(req.client_order_id, params)

    def _order_params(self, p: AssetPair, cid: str, side: str, otype: str, qty: Decimal,
                      price: Decimal | None) -> dict[str, Any]:
        vol = p.round_qty(qty)
        if vol <= 0:
            raise OrderRejected(f"{p.symbol}: quantity {qty} rounds to 0", reason="order_minimum")
        params: dict[str, Any] = {"pair": p.altname or p.venue_name, "type": side,
                                  "ordertype": otype, "volume": f"{vol:.{p.lot_decimals}f}",
                                  "oflags": "fciq", "cl_ord_id": cid}
        if price is not None:
            px = p.round_price(price)  # down: a buy never pays more than asked
            if side == "sell" and px < price:  # up: a sell (limit, stop or target) never
                px += Decimal(1).scaleb(-p.pair_decimals)  # sells lower / loses more than asked
            params["price"] = f"{px:.{p.pair_decimals}f}"
        return params

    def _add(self, cid: str, params: dict[str, Any]) -> OrderAck:
        try:
            res = self.private.add_order(params)
        except DataError as e:  # the order went out; the answer is unreadable
            raise AmbiguousOrderError(f"Kraken AddOrder {cid}: unreadable answer ({e}); "
                                      "reconcile by client order id") from e
        txids = res.get("txid")
        if not isinstance(txids, list) or not txids or not isinstance(txids[0], str):
            raise AmbiguousOrderError(f"Kraken AddOrder {cid}: answer has no txid; reconcile")
        return OrderAck(client_order_id=cid, venue_order_id=txids[0], state="pending",
                        accepted_at=self.clock.now())

    def _status(self, txid: str, row: Any) -> OrderStatus:
        descr = row.get("descr") if isinstance(row, dict) else None
        if not isinstance(descr, dict) or not isinstance(descr.get("pair"), str):
            raise DataError(f"Kraken order {txid}: missing descr.pair")
        return parse.order_status(txid, row, self._symbol(descr["pair"]), self.clock.now())

    def order_by_client_id(self, client_order_id: str) -> OrderStatus | None:
        """The venue's order with this client id (open first, then closed), or None."""
        for rows in self._open_then_closed(client_order_id):
            mine = [(t, r) for t, r in rows.items()
                    if isinstance(r, dict) and r.get("cl_ord_id") in (None, client_order_id)]
            if mine:
                txid, row = max(mine, key=lambda tr: float(tr[1].get("opentm") or 0))
                st = self._status(txid, row)
                return st.model_copy(update={"client_order_id": client_order_id})
        return None

    def _open_then_closed(self, cid: str) -> Iterator[dict[str, Any]]:
        yield self.private.open_orders(cl_ord_id=cid)
        yield self._closed(cid)  # asked only when the order is not open (one call less)

    def orders_by_client_ids(self, cids: list[str]) -> dict[str, OrderStatus | None]:
        """Several look-ups at a lower REST cost: all open orders, the latest closed page, then
        one ClosedOrders{cl_ord_id} per id still missing (the newest order per id wins)."""
        best: dict[str, tuple[float, str, dict[str, Any]]] = {}

        def take(rows: dict[str, Any]) -> None:
            for txid, row in rows.items():
                cid = row.get("cl_ord_id") if isinstance(row, dict) else None
                if cid in cids and (cid not in best or
                                    float(row.get("opentm") or 0) >= best[cid][0]):
                    best[cid] = (float(row.get("opentm") or 0), txid, row)

        take(self.private.open_orders())
        if any(c not in best for c in cids):
            take(self._closed(None))
        for cid in [c for c in cids if c not in best]:
            take(self._closed(cid))
        return {c: self._status(best[c][1], best[c][2]) if c in best else None for c in cids}

    def _closed(self, cid: str | None) -> dict[str, Any]:
        closed = self.private.closed_orders(cl_ord_id=cid).get("closed")
        if not isinstance(closed, dict):
            raise DataError("Kraken ClosedOrders: 'closed' is not an object")
        return closed

    def open_orders(self) -> list[OrderStatus]:
        return [self._status(t, r) for t, r in self.private.open_orders().items()]

    def cancel_order(self, client_order_id: str | None = None,
                     venue_order_id: str | None = None) -> bool:
        """Cancel one order; False when Kraken says it is unknown or no longer open."""
        try:
            res = self.private.cancel_order(txid=venue_order_id, cl_ord_id=client_order_id)
        except OrderRejected as e:
            if e.reason in ("unknown_order", "invalid_order"):
                return False
            raise
        return int(res.get("count") or 0) > 0

    # ---- fills, balances, fees -----------------------------------------------------------------

    def fills_since(self, t: datetime) -> list[Fill]:
        """Every fill after ``t`` (oldest first), with client order ids resolved."""
        rows: dict[str, dict[str, Any]] = {}
        ofs = 0
        while True:
            res = self.private.trades_history(start=t.timestamp(), ofs=ofs)
            page = res.get("trades")
            if not isinstance(page, dict):
                raise DataError("Kraken TradesHistory: 'trades' is not an object")
            rows.update(page)
            ofs += len(page)
            if not page or ofs >= int(res.get("count") or 0):
                break
        cids = self._client_ids(sorted({str(r.get("ordertxid")) for r in rows.values()}))
        fills = []
        for tid, r in rows.items():
            sym = self._symbol(str(r.get("pair")))
            fills.append(parse.trade_fill(tid, r, sym, cids.get(str(r.get("ordertxid"))),
                                          self.pair(sym).quote))
        return sorted(fills, key=lambda f: (f.ts, f.fill_id))

    def _client_ids(self, txids: list[str]) -> dict[str, str | None]:
        """Client ids of venue orders; an order's ``cl_ord_id`` never changes, so each txid is
        asked once per adapter (QueryOrders, 50 per call)."""
        todo = [t for t in txids if t not in self._cids]
        for i in range(0, len(todo), 50):
            for txid, row in self.private.query_orders(todo[i:i + 50]).items():
                self._cids[txid] = row.get("cl_ord_id") if isinstance(row, dict) else None
        return {t: self._cids.get(t) for t in txids}

    def balances(self) -> Balance:
        assets: dict[str, Decimal] = {}
        for code, amount in self.private.balance().items():
            if "." in code:
                continue  # staked/earn variants (.S/.M/.F/.B/.T) are not tradable cash
            value = parse._decimal(amount, f"Kraken Balance.{code}")
            name = common_asset(code)
            assets[name] = assets.get(name, Decimal(0)) + value
        return Balance(assets=assets)

    def fee_tier(self, symbol: str) -> FeeTier:
        return self.fee_tiers([symbol])[self.pair(symbol).symbol]

    def fee_tiers(self, symbols: list[str]) -> dict[str, FeeTier]:
        """The account's current fee rates for ``symbols`` (one TradeVolume call)."""
        pairs = [self.pair(s) for s in symbols]
        if not pairs:
            return {}
        res = self.private.trade_volume([p.venue_name for p in pairs])
        vol = parse._decimal(res.get("volume", "0"), "Kraken TradeVolume.volume")
        out = {}
        for p in pairs:
            taker = self._fee(res, "fees", p.venue_name)
            maker = self._fee(res, "fees_maker", p.venue_name) if res.get("fees_maker") else taker
            out[p.symbol] = FeeTier(symbol=p.symbol, taker=taker, maker=maker, volume_30d=vol,
                                    volume_currency=common_asset(str(res.get("currency",
                                                                             "ZUSD"))))
        return out

    @staticmethod
    def _fee(res: dict[str, Any], name: str, key: str) -> Decimal:
        table = res.get(name)
        if not isinstance(table, dict) or not isinstance(table.get(key), dict):
            raise DataError(f"Kraken TradeVolume: no {name} for {key}")
        return parse._decimal(table[key].get("fee"), f"Kraken TradeVolume.{name}.{key}") / 100

    # ---- protective orders ---------------------------------------------------------------------

    def reconcile_protective(self, entry: OrderRequest, stop_cid: str | None = None
                             ) -> Protection:
        """Place the filled entry's one stop-loss when the venue does not have it (see the
        module contract); never raises: what it learnt is in the ``Protection``."""
        cid = stop_cid or derive_client_order_id(entry.client_order_id, "sl")
        try:
            seen = self.orders_by_client_ids([entry.client_order_id, cid])
        except TradingBrainError as e:
            return Protection(None, error=f"lookup: {e}", ambiguous=True)
        st, stop = seen[entry.client_order_id], seen[cid]
        if (st is None or not st.is_terminal or st.filled_qty <= 0 or entry.stop_loss is None
                or stop is not None):
            return Protection(st, stop)  # nothing (yet) to protect, or already placed
        try:
            ack = self._place_leg(entry.symbol, cid, "stop-loss", st.filled_qty,
                                  entry.stop_loss)
        except OrderRejected as e:
            return Protection(st, refused=e.reason, error=str(e))
        except TradingBrainError as e:  # ambiguous, or a transient failure: look it up later
            return Protection(st, error=str(e), ambiguous=True)
        try:
            stop = self.order_by_client_id(cid)
        except TradingBrainError as e:
            return Protection(st, actions=("placed sl",), venue_order_id=ack,
                              error=f"lookup after placing: {e}", ambiguous=True)
        return Protection(st, stop, ("placed sl",), venue_order_id=ack)

    def _place_leg(self, symbol: str, cid: str, otype: str, qty: Decimal, level: Decimal
                   ) -> str | None:
        """Send one trigger sell; its venue id (None: already open under this id)."""
        params = self._order_params(self.pair(symbol), cid, "sell", otype, qty, level)
        try:
            return self._add(cid, params).venue_order_id
        except OrderRejected as e:
            if e.reason != "duplicate_order":  # already open under this id: nothing to do
                raise
            return None
