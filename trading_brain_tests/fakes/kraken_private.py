"""Private half of the fake Kraken: signed requests, balances, orders, fills, WS execution events.

Contract:
- ``PrivateState`` lives on ``KrakenState.private`` (guarded by ``KrakenState.lock``). It starts
  from the captured ``http_spot_balance`` (ZUSD 200000, XXBT 0.5, ETH 2.0) with one API key pair
  (``TEST_KEY``/``TEST_SECRET``); fees 0.26 % taker / 0.16 % maker, always charged in the quote
  currency (the adapter sends ``oflags=fciq``).
- ``authenticate(state, path, headers, raw_body)`` runs before every private handler: unknown
  ``API-Key`` → ``EAPI:Invalid key``; ``API-Sign`` recomputed over the raw body bytes →
  ``EAPI:Invalid signature``; ``nonce`` ≤ the last accepted one → ``EAPI:Invalid nonce``.
- Handlers (registered in ``ROUTES`` by ``install``): Balance, TradeVolume, AddOrder,
  CancelOrder, OpenOrders, ClosedOrders, QueryOrders, TradesHistory, GetWebSocketsToken, with the
  reference's validation order (pair, arguments, ``cl_ord_id`` + ``userref``, duplicate open
  ``cl_ord_id`` → ``EOrder:Duplicate order`` [U text], ``ordermin``, ``costmin``, funds counting
  holds of open orders). Market orders fill at once at the ticker ask/bid (``fill_market``);
  limit and trigger (stop-loss/take-profit) orders rest. Untriggered trigger orders hold their
  funds as the venue does (``hold_trigger_funds``, default on: a second trigger sell of the same
  coins is refused ``EOrder:Insufficient funds``; reference/kraken-api.md §10); off = they hold
  nothing (the other venue model the executor must also pass).
- Test controls (take ``KrakenState``): ``fill(state, ref, qty, price)`` executes part of an
  order (``ref`` = txid or cl_ord_id); ``script_fills(state, ref, [q1, q2…])`` + ``step(state)``
  advance scripted partial fills one step per call; ``set_price(state, pair, price)`` triggers
  stop-loss (price ≤ stop) / take-profit (price ≥ level) sells; ``order(state, ref)`` returns the
  raw order row. Every order event is sent as WS v2 ``executions`` rows to ``listeners``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

TEST_KEY = "fake-kraken-api-key"
TEST_SECRET = base64.b64encode(hashlib.sha512(b"fake kraken secret").digest()).decode()
TRIGGERS = ("stop-loss", "take-profit")
ORDER_TYPES = ("market", "limit", *TRIGGERS)


def _reject(*errors: str) -> Exception:
    from trading_brain_tests.fakes.kraken_server import KrakenReject

    return KrakenReject(*errors)


@dataclass
class FakeOrder:
    txid: str
    cl_ord_id: str | None
    key: str
    side: str
    ordertype: str
    vol: Decimal
    price: Decimal | None  # limit price or trigger price
    opentm: float
    status: str = "open"
    vol_exec: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    closetm: float | None = None
    reason: str | None = None
    trades: list[str] = field(default_factory=list)
    script: list[Decimal] = field(default_factory=list)


@dataclass
class PrivateState:
    api_key: str = TEST_KEY
    secret: str = TEST_SECRET
    last_nonce: int = 0
    balances: dict[str, Decimal] = field(default_factory=dict)
    orders: dict[str, FakeOrder] = field(default_factory=dict)
    trades: dict[str, dict[str, Any]] = field(default_factory=dict)
    taker_pct: Decimal = Decimal("0.26")
    maker_pct: Decimal = Decimal("0.16")
    volume_30d: Decimal = Decimal("294.0219")
    fill_market: bool = True
    hold_trigger_funds: bool = True  # untriggered sell triggers hold their coins
    prices: dict[str, Decimal] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    listeners: list[Callable[[list[dict[str, Any]]], None]] = field(default_factory=list)
    signatures_checked: int = 0
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def from_balances(cls, raw: dict[str, str]) -> PrivateState:
        return cls(balances={k: Decimal(v) for k, v in raw.items()})

    def new_id(self, prefix: str) -> str:
        n = next(self._ids)
        return f"{prefix}{n:05d}-FAKE{n % 10}-{secrets.token_hex(3).upper()}"

    def find(self, ref: str) -> FakeOrder:
        if ref in self.orders:
            return self.orders[ref]
        hits = [o for o in self.orders.values() if o.cl_ord_id == ref]
        if not hits:
            raise KeyError(ref)
        return sorted(hits, key=lambda o: o.opentm)[-1]

    def emit(self, rows: list[dict[str, Any]]) -> None:
        for listener in list(self.listeners):
            listener(rows)


# ---- auth -----------------------------------------------------------------------------------

def authenticate(state: Any, path: str, headers: Any, raw: bytes, params: dict[str, str]) -> None:
    p: PrivateState = state.private
    if headers.get("API-Key") != p.api_key:
        raise _reject("EAPI:Invalid key")
    nonce_s = params.get("nonce", "")
    digest = hashlib.sha256(nonce_s.encode() + raw).digest()
    mac = hmac.new(base64.b64decode(p.secret), path.encode() + digest, hashlib.sha512)
    signed = base64.b64encode(mac.digest()).decode()
    if not hmac.compare_digest(signed, headers.get("API-Sign", "")):
        raise _reject("EAPI:Invalid signature")
    with state.lock:
        p.signatures_checked += 1
        if not nonce_s.isdigit() or int(nonce_s) <= p.last_nonce:
            raise _reject("EAPI:Invalid nonce")
        p.last_nonce = int(nonce_s)


# ---- helpers --------------------------------------------------------------------------------

def _dec(params: dict[str, str], name: str) -> Decimal:
    try:
        d = Decimal(params[name])
    except (KeyError, InvalidOperation):
        raise _reject(f"EGeneral:Invalid arguments:{name}") from None
    if not d.is_finite() or d <= 0:
        raise _reject(f"EGeneral:Invalid arguments:{name}")
    return d


def _v2(state: Any, key: str) -> str:
    ws = str(state.pairs[key].get("wsname", ""))
    return "/".join({"XBT": "BTC", "XDG": "DOGE"}.get(a, a) for a in ws.split("/"))


def market_price(state: Any, key: str, side: str) -> Decimal:
    p: PrivateState = state.private
    if key in p.prices:
        return p.prices[key]
    t = state.tickers.get(key)
    if t is None:
        raise _reject("EService:Unavailable")
    return Decimal(t["a"][0] if side == "buy" else t["b"][0])


def _fee_pct(p: PrivateState, o: FakeOrder) -> Decimal:
    return p.maker_pct if o.ordertype == "limit" else p.taker_pct


def _holds(state: Any, asset: str) -> Decimal:
    p: PrivateState = state.private
    total = Decimal(0)
    for o in p.orders.values():
        if o.status not in ("open", "pending") or (
                o.ordertype in TRIGGERS and not p.hold_trigger_funds):
            continue
        row = state.pairs[o.key]
        left = o.vol - o.vol_exec
        if o.side == "buy" and row["quote"] == asset:
            px = o.price or market_price(state, o.key, "buy")
            total += left * px * (1 + _fee_pct(p, o) / 100)
        elif o.side == "sell" and row["base"] == asset:
            total += left
    return total


def available(state: Any, asset: str) -> Decimal:
    return state.private.balances.get(asset, Decimal(0)) - _holds(state, asset)


def _num(d: Decimal | None) -> float:
    return float(d or 0)


def _now_rfc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def exec_row(state: Any, o: FakeOrder, exec_type: str, **extra: Any) -> dict[str, Any]:
    status = {"open": "new", "closed": "filled"}.get(o.status, o.status)
    if exec_type == "pending_new" or o.status == "pending":
        status = "pending_new"
    elif o.status == "open" and o.vol_exec > 0:
        status = "partially_filled"
    row: dict[str, Any] = {
        "order_id": o.txid, "exec_type": exec_type, "order_status": status,
        "timestamp": _now_rfc(), "cum_qty": _num(o.vol_exec), "cum_cost": _num(o.cost),
        "avg_price": _num(o.cost / o.vol_exec) if o.vol_exec else 0.0,
        "fee_usd_equiv": _num(o.fee),
    }
    if exec_type in ("pending_new", "trade", "restated"):
        row.update(symbol=_v2(state, o.key), side=o.side, order_type=o.ordertype,
                   order_qty=_num(o.vol))
        if o.price is not None:
            row["limit_price" if o.ordertype == "limit" else "stop_price"] = _num(o.price)
    if o.cl_ord_id:
        row["cl_ord_id"] = o.cl_ord_id
    row.update(extra)
    return row


def order_row(state: Any, o: FakeOrder) -> dict[str, Any]:
    row = state.pairs[o.key]
    pd = int(row.get("pair_decimals", 1))
    px = f"{o.price:.{pd}f}" if o.price is not None else "0"
    avg = f"{(o.cost / o.vol_exec):.{pd}f}" if o.vol_exec else "0.00000"
    out: dict[str, Any] = {
        "refid": None, "userref": 0, "status": o.status, "opentm": o.opentm, "starttm": 0,
        "expiretm": 0,
        "descr": {"pair": row.get("altname", o.key), "type": o.side, "ordertype": o.ordertype,
                  "price": px if o.ordertype != "market" else "0", "price2": "0",
                  "leverage": "none", "order": f"{o.side} {o.vol:.8f} {row.get('altname')} @ "
                  f"{o.ordertype} {px}", "close": ""},
        "vol": f"{o.vol:.8f}", "vol_exec": f"{o.vol_exec:.8f}", "cost": f"{o.cost:.5f}",
        "fee": f"{o.fee:.5f}", "price": avg,
        "stopprice": px if o.ordertype in TRIGGERS else "0.00000", "limitprice": "0.00000",
        "misc": "", "oflags": "fciq", "trades": list(o.trades),
    }
    if o.cl_ord_id:
        out["cl_ord_id"] = o.cl_ord_id
    if o.closetm is not None:
        out.update(closetm=o.closetm, reason=o.reason)
    return out


# ---- state changes (also test controls) -----------------------------------------------------

def fill(state: Any, ref: str, qty: Decimal | str | None = None,
         price: Decimal | str | None = None) -> dict[str, Any]:
    """Execute ``qty`` (default: all that is left) of an open order at ``price``."""
    with state.lock:
        p: PrivateState = state.private
        o = p.find(ref)
        if o.status not in ("open", "pending"):
            raise ValueError(f"order {ref} is {o.status}")
        q = min(Decimal(qty) if qty is not None else o.vol, o.vol - o.vol_exec)
        px = Decimal(price) if price is not None else (
            o.price if o.ordertype == "limit" and o.price else market_price(state, o.key, o.side))
        cost = q * px
        fee = (cost * _fee_pct(p, o) / 100).quantize(Decimal("0.00001"))
        base, quote = state.pairs[o.key]["base"], state.pairs[o.key]["quote"]
        sign = 1 if o.side == "buy" else -1
        p.balances[base] = p.balances.get(base, Decimal(0)) + sign * q
        p.balances[quote] = p.balances.get(quote, Decimal(0)) - sign * cost - fee
        o.vol_exec += q
        o.cost += cost
        o.fee += fee
        tid = p.new_id("T")
        o.trades.append(tid)
        t = time.time()
        trade = {"ordertxid": o.txid, "postxid": p.new_id("P"), "pair": o.key, "time": t,
                 "type": o.side, "ordertype": o.ordertype, "price": f"{px:.5f}",
                 "cost": f"{cost:.5f}", "fee": f"{fee:.5f}", "vol": f"{q:.8f}",
                 "margin": "0.00000", "misc": "", "trade_id": len(p.trades) + 1,
                 "maker": o.ordertype == "limit"}
        p.trades[tid] = trade
        done = o.vol_exec >= o.vol
        if done:
            o.status, o.closetm = "closed", t
        rows = [exec_row(state, o, "trade", exec_id=tid, last_qty=_num(q), last_price=_num(px),
                         cost=_num(cost), liquidity_ind="m" if trade["maker"] else "t",
                         fees=[{"asset": _short(quote), "qty": _num(fee)}])]
        if done:
            rows.append(exec_row(state, o, "filled"))
        p.emit(rows)
        return trade


def _short(asset: str) -> str:
    return {"ZUSD": "USD", "XXBT": "BTC", "XETH": "ETH", "ZEUR": "EUR"}.get(asset, asset)


def script_fills(state: Any, ref: str, qtys: list[str | Decimal]) -> None:
    with state.lock:
        state.private.find(ref).script = [Decimal(q) for q in qtys]


def step(state: Any) -> int:
    """Advance every scripted order by one partial fill; return how many fills happened."""
    with state.lock:
        todo = [o for o in state.private.orders.values() if o.script and o.status == "open"]
        for o in todo:
            fill(state, o.txid, o.script.pop(0))
        return len(todo)


def set_price(state: Any, pair: str, price: Decimal | str) -> list[str]:
    """Set the fake's market price for ``pair``; fire triggered orders; return their txids."""
    with state.lock:
        key = state.resolve_pair(pair)
        px = Decimal(price)
        state.private.prices[key] = px
        fired = [o for o in state.private.orders.values()
                 if o.key == key and o.status == "open" and o.price is not None and (
                     (o.ordertype == "stop-loss" and o.side == "sell" and px <= o.price)
                     or (o.ordertype == "take-profit" and o.side == "sell" and px >= o.price))]
        for o in fired:
            fill(state, o.txid, None, px)
        return [o.txid for o in fired]


def order(state: Any, ref: str) -> dict[str, Any]:
    with state.lock:
        return order_row(state, state.private.find(ref))


def snapshot_rows(state: Any, orders: bool, trades: bool) -> list[dict[str, Any]]:
    """WS ``executions`` snapshot: open orders (full detail) and/or the last 50 fills [U shape]."""
    with state.lock:
        p: PrivateState = state.private
        rows = [exec_row(state, o, "restated") for o in p.orders.values()
                if orders and o.status in ("open", "pending")]
        if trades:
            for tid, t in sorted(p.trades.items(), key=lambda kt: kt[1]["time"])[-50:]:
                o = p.orders[t["ordertxid"]]
                quote = _short(state.pairs[o.key]["quote"])
                rows.append(exec_row(state, o, "trade", exec_id=tid, last_qty=float(t["vol"]),
                                     last_price=float(t["price"]), cost=float(t["cost"]),
                                     fees=[{"asset": quote, "qty": float(t["fee"])}],
                                     timestamp=datetime.fromtimestamp(t["time"], UTC).strftime(
                                         "%Y-%m-%dT%H:%M:%S.%fZ")))
        return rows


def cancel(state: Any, o: FakeOrder) -> None:
    o.status, o.closetm, o.reason = "canceled", time.time(), "User requested"
    state.private.emit([exec_row(state, o, "canceled", reason="User requested")])


# ---- handlers -------------------------------------------------------------------------------

def h_balance(state: Any, params: dict[str, str]) -> Any:
    with state.lock:
        return {k: f"{v:.8f}" for k, v in state.private.balances.items()}


def h_trade_volume(state: Any, params: dict[str, str]) -> Any:
    p: PrivateState = state.private
    keys = [state.resolve_pair(x) for x in params.get("pair", "").split(",") if x]

    def tier(pct: Decimal) -> dict[str, str]:
        return {"fee": f"{pct:.4f}", "minfee": "0.1000", "maxfee": f"{pct:.4f}",
                "nextfee": None, "tiervolume": "0.0000", "nextvolume": None}

    return {"currency": "ZUSD", "volume": f"{p.volume_30d:.4f}",
            "fees": {k: tier(p.taker_pct) for k in keys} if keys else None,
            "fees_maker": {k: tier(p.maker_pct) for k in keys} if keys else None}


def h_add_order(state: Any, params: dict[str, str]) -> Any:
    with state.lock:
        p: PrivateState = state.private
        if not params.get("pair"):
            raise _reject("EGeneral:Invalid arguments:pair")
        key = state.resolve_pair(params["pair"])
        row = state.pairs[key]
        side, otype = params.get("type"), params.get("ordertype")
        if side not in ("buy", "sell"):
            raise _reject("EGeneral:Invalid arguments:type")
        if otype not in ORDER_TYPES:
            raise _reject("EGeneral:Invalid arguments:ordertype")
        vol = _dec(params, "volume")
        price = _dec(params, "price") if otype != "market" else None
        cl = params.get("cl_ord_id")
        if cl and "userref" in params:
            raise _reject("EGeneral:Invalid arguments:cl_ord_id")
        if cl and any(o.cl_ord_id == cl and o.status in ("open", "pending")
                      for o in p.orders.values()):
            raise _reject("EOrder:Duplicate order")
        if vol < Decimal(row.get("ordermin", "0")):
            raise _reject("EOrder:Order minimum not met")
        ref = price or market_price(state, key, side)
        if vol * ref < Decimal(row.get("costmin", "0")):
            raise _reject("EOrder:Cost minimum not met")
        if otype not in TRIGGERS or p.hold_trigger_funds:
            need = vol * ref * (1 + p.taker_pct / 100) if side == "buy" else vol
            if need > available(state, row["quote"] if side == "buy" else row["base"]):
                raise _reject("EOrder:Insufficient funds")
        descr = {"order": f"{side} {vol:.8f} {row.get('altname')} @ {otype}"
                          + (f" {price}" if price else "")}
        if params.get("validate") in ("true", "True", "1"):
            return {"descr": descr}
        o = FakeOrder(p.new_id("O"), cl, key, side, otype, vol, price, time.time())
        p.orders[o.txid] = o
        p.emit([exec_row(state, o, "pending_new")])
        p.emit([exec_row(state, o, "new")])
        if otype == "market" and p.fill_market:
            fill(state, o.txid)
        return {"descr": descr, "txid": [o.txid]}


def h_cancel_order(state: Any, params: dict[str, str]) -> Any:
    with state.lock:
        ref = params.get("txid") or params.get("cl_ord_id")
        if not ref:
            raise _reject("EGeneral:Invalid arguments:txid")
        try:
            o = state.private.find(ref)
        except KeyError:
            raise _reject("EOrder:Unknown order") from None
        if o.status not in ("open", "pending"):
            raise _reject("EOrder:Unknown order")
        cancel(state, o)
        return {"count": 1}


def _select(state: Any, params: dict[str, str], open_: bool) -> list[FakeOrder]:
    cl = params.get("cl_ord_id")
    start = float(params["start"]) if params.get("start") else None
    out = [o for o in state.private.orders.values()
           if (o.status in ("open", "pending")) == open_ and (not cl or o.cl_ord_id == cl)
           and (start is None or (o.closetm or o.opentm) > start)]
    return sorted(out, key=lambda o: o.closetm or o.opentm, reverse=True)


def h_open_orders(state: Any, params: dict[str, str]) -> Any:
    with state.lock:
        return {"open": {o.txid: order_row(state, o) for o in _select(state, params, True)}}


def h_closed_orders(state: Any, params: dict[str, str]) -> Any:
    with state.lock:
        rows = _select(state, params, False)
        ofs = int(params.get("ofs") or 0)
        return {"closed": {o.txid: order_row(state, o) for o in rows[ofs:ofs + 50]},
                "count": len(rows)}


def h_query_orders(state: Any, params: dict[str, str]) -> Any:
    with state.lock:
        txids = [t for t in params.get("txid", "").split(",") if t]
        if not txids or any(t not in state.private.orders for t in txids):
            raise _reject("EGeneral:Invalid arguments:txid")
        return {t: order_row(state, state.private.orders[t]) for t in txids}


def h_trades_history(state: Any, params: dict[str, str]) -> Any:
    with state.lock:
        start = float(params["start"]) if params.get("start") else None
        rows = sorted(((k, t) for k, t in state.private.trades.items()
                       if start is None or t["time"] > start), key=lambda kt: -kt[1]["time"])
        ofs = int(params.get("ofs") or 0)
        return {"trades": dict(rows[ofs:ofs + 50]), "count": len(rows)}


def h_ws_token(state: Any, params: dict[str, str]) -> Any:
    token = secrets.token_urlsafe(32)
    with state.lock:
        state.private.tokens.add(token)
    return {"token": token, "expires": 900}


HANDLERS: dict[str, Callable[[Any, dict[str, str]], Any]] = {
    "Balance": h_balance,
    "TradeVolume": h_trade_volume,
    "AddOrder": h_add_order,
    "CancelOrder": h_cancel_order,
    "OpenOrders": h_open_orders,
    "ClosedOrders": h_closed_orders,
    "QueryOrders": h_query_orders,
    "TradesHistory": h_trades_history,
    "GetWebSocketsToken": h_ws_token,
}


def install(routes: dict[tuple[str, str], Any]) -> None:
    for name, handler in HANDLERS.items():
        routes[("POST", f"/0/private/{name}")] = handler
