"""Strict parsing of Kraken REST and WS v2 payloads into domain types.

Contract (every function raises ``DataError`` with a message naming the field for anything
malformed; nothing is half-parsed):
- ``asset_pair(key, row)`` → ``AssetPair``: precision from ``pair_decimals``/``lot_decimals``,
  ``ordermin``/``costmin``/``tick_size`` as Decimals, fees from tier 0 of ``fees`` (taker) and
  ``fees_maker`` (maker) converted from percent (0.26 → 0.0026). Kraken has published empty fee
  lists; then the base schedule 0.26 %/0.16 % is used (``TradeVolume`` gives the account's rates).
- ``ohlc_rows(rows, symbol, timeframe)`` → a frame conforming to ``CANDLE_SCHEMA`` from rows
  ``[time, open, high, low, close, vwap, volume, count]`` (vwap/count dropped), sorted, duplicates
  removed (last wins). Sanity only: prices finite and > 0, volume finite and ≥ 0. Full candle
  validation is ``engine/candles.validate``.
- ``rest_ticker(symbol, row, now)`` and ``ws_ticker(row, now)`` → ``Ticker``.
- ``ws_ohlc(row, timeframe)`` → one candle as a dict with the ``CANDLE_SCHEMA`` keys.
- Private payloads: ``order_status(txid, row, symbol, now)`` (an OpenOrders/ClosedOrders/
  QueryOrders order object → ``OrderStatus``: ``open`` with ``vol_exec > 0`` is
  ``partially_filled``, ``closed`` is ``filled``, a canceled order keeps its ``filled_qty``) and
  ``trade_fill(trade_id, row, symbol, client_order_id, fee_currency)`` (a TradesHistory row →
  ``Fill``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import polars as pl
from pydantic import ValidationError

from trading_brain.domain.candles import CANDLE_SCHEMA, empty_candles
from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.market import Ticker
from trading_brain.domain.orders import Fill, OrderState, OrderStatus
from trading_brain.errors import DataError

from .symbols import names_of

DEFAULT_TAKER_PCT = 0.26
DEFAULT_MAKER_PCT = 0.16


def _field(row: Mapping[str, Any], name: str, where: str) -> Any:
    if not isinstance(row, Mapping):
        raise DataError(f"{where}: expected an object, got {type(row).__name__}")
    if name not in row:
        raise DataError(f"{where}: missing field {name!r}")
    return row[name]


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise DataError(f"{where}: {value!r} is not a number")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise DataError(f"{where}: {value!r} is not a number") from None
    if not d.is_finite() or d < 0:
        raise DataError(f"{where}: {value!r} is not a finite non-negative number")
    return d


def _float(value: Any, where: str, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise DataError(f"{where}: {value!r} is not a number")
    try:
        f = float(value)
    except ValueError:
        raise DataError(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(f) or (f <= 0 if positive else f < 0):
        raise DataError(f"{where}: {value!r} must be finite and {'> 0' if positive else '≥ 0'}")
    return f


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"{where}: {value!r} is not an integer")
    return value


def _tier0_pct(row: Mapping[str, Any], name: str, default: float, where: str) -> float:
    tiers = row.get(name)
    if tiers is None or tiers == []:
        return default
    if not isinstance(tiers, list) or not isinstance(tiers[0], list) or len(tiers[0]) != 2:
        raise DataError(f"{where}: {name} must be a list of [volume, percent] tiers")
    return _float(tiers[0][1], f"{where}.{name}[0]", positive=False)


def asset_pair(key: str, row: Mapping[str, Any]) -> AssetPair:
    """One AssetPairs row → ``AssetPair`` (symbol from its wsname, e.g. ``BTC/USD``)."""
    where = f"Kraken AssetPairs[{key}]"
    names = names_of(key, row)
    tick = row.get("tick_size")
    try:
        return AssetPair(
            symbol=names.symbol,
            base=names.base,
            quote=names.quote,
            venue_name=key,
            altname=names.altname,
            wsname=names.wsname,
            lot_decimals=_int(_field(row, "lot_decimals", where), f"{where}.lot_decimals"),
            pair_decimals=_int(_field(row, "pair_decimals", where), f"{where}.pair_decimals"),
            ordermin=_decimal(_field(row, "ordermin", where), f"{where}.ordermin"),
            costmin=_decimal(row.get("costmin", "0"), f"{where}.costmin"),
            tick_size=None if tick is None else _decimal(tick, f"{where}.tick_size"),
            fee_taker=_tier0_pct(row, "fees", DEFAULT_TAKER_PCT, where) / 100,
            fee_maker=_tier0_pct(row, "fees_maker", DEFAULT_MAKER_PCT, where) / 100,
            status=str(row.get("status", "online")),
        )
    except ValidationError as e:
        raise DataError(f"{where}: {e.errors()[0]['loc']}: {e.errors()[0]['msg']}") from None


def ohlc_rows(rows: Sequence[Any], symbol: str, timeframe: str) -> pl.DataFrame:
    """REST OHLC rows → candle frame (closed-ness is the caller's business)."""
    if not isinstance(rows, list):
        raise DataError(f"Kraken OHLC {symbol}: rows are not a list")
    cols: dict[str, list] = {c: [] for c in ("ts", "open", "high", "low", "close", "volume")}
    for i, r in enumerate(rows):
        where = f"Kraken OHLC {symbol} row {i}"
        if not isinstance(r, list) or len(r) != 8:
            raise DataError(f"{where}: expected 8 fields [time,o,h,l,c,vwap,volume,count]")
        cols["ts"].append(_int(r[0], f"{where}.time") * 1_000_000)
        for j, name in enumerate(("open", "high", "low", "close"), start=1):
            cols[name].append(_float(r[j], f"{where}.{name}", positive=True))
        cols["volume"].append(_float(r[6], f"{where}.volume", positive=False))
    if not rows:
        return empty_candles()
    df = pl.DataFrame(cols).with_columns(
        pl.lit(symbol).alias("symbol"),
        pl.lit(timeframe).alias("timeframe"),
        pl.from_epoch(pl.col("ts"), time_unit="us").dt.replace_time_zone("UTC").alias("ts"),
    )
    df = df.unique(subset=["ts"], keep="last", maintain_order=True)
    return df.select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()]).sort("ts")


def rest_ticker(symbol: str, row: Mapping[str, Any], now: datetime) -> Ticker:
    """REST Ticker row (``a``/``b``/``c`` arrays of decimal strings) → ``Ticker`` at ``now``."""
    where = f"Kraken Ticker {symbol}"
    vals = {}
    for short, name in (("b", "bid"), ("a", "ask"), ("c", "last")):
        arr = _field(row, short, where)
        if not isinstance(arr, list) or not arr:
            raise DataError(f"{where}: field {short!r} must be a non-empty array")
        vals[name] = _float(arr[0], f"{where}.{short}[0]", positive=True)
    return Ticker(symbol=symbol, ts=now, **vals)


def _ws_time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise DataError(f"{where}: timestamp {value!r} is not a string")
    text = value.rstrip("Z")
    head, _, frac = text.partition(".")
    try:
        t = datetime.fromisoformat(head).replace(tzinfo=UTC)
    except ValueError:
        raise DataError(f"{where}: bad timestamp {value!r}") from None
    return t.replace(microsecond=int((frac + "000000")[:6])) if frac.isdigit() else t


def ws_ticker(row: Mapping[str, Any], now: datetime) -> Ticker:
    """WS v2 ``ticker`` data row → ``Ticker`` (its ``timestamp`` when present, else ``now``)."""
    symbol = _field(row, "symbol", "Kraken WS ticker")
    where = f"Kraken WS ticker {symbol}"
    ts = _ws_time(row["timestamp"], where) if "timestamp" in row else now
    return Ticker(
        symbol=str(symbol),
        bid=_float(_field(row, "bid", where), f"{where}.bid", positive=True),
        ask=_float(_field(row, "ask", where), f"{where}.ask", positive=True),
        last=_float(_field(row, "last", where), f"{where}.last", positive=True),
        ts=ts,
    )


def ws_ohlc(row: Mapping[str, Any], timeframe: str) -> dict[str, Any]:
    """WS v2 ``ohlc`` data row → one candle dict keyed like ``CANDLE_SCHEMA``."""
    symbol = _field(row, "symbol", "Kraken WS ohlc")
    where = f"Kraken WS ohlc {symbol}"
    out: dict[str, Any] = {
        "symbol": str(symbol),
        "timeframe": timeframe,
        "ts": _ws_time(_field(row, "interval_begin", where), f"{where}.interval_begin"),
    }
    for name in ("open", "high", "low", "close"):
        out[name] = _float(_field(row, name, where), f"{where}.{name}", positive=True)
    out["volume"] = _float(_field(row, "volume", where), f"{where}.volume", positive=False)
    return out


_STATES: dict[str, OrderState] = {"pending": "pending", "open": "open", "closed": "filled",
                                  "canceled": "canceled", "expired": "expired"}


def _epoch(value: Any, where: str) -> datetime:
    return datetime.fromtimestamp(_float(value, where, positive=True), tz=UTC)


def order_status(txid: str, row: Mapping[str, Any], symbol: str, now: datetime) -> OrderStatus:
    """One Kraken order object → ``OrderStatus`` (``updated_at`` = ``closetm`` or ``now``)."""
    where = f"Kraken order {txid}"
    descr = _field(row, "descr", where)
    status = str(_field(row, "status", where))
    if status not in _STATES:
        raise DataError(f"{where}: unknown status {status!r}")
    filled = _decimal(row.get("vol_exec", "0"), f"{where}.vol_exec")
    state = _STATES[status]
    if state == "open" and filled > 0:
        state = "partially_filled"
    otype = str(_field(descr, "ordertype", where))
    price = _decimal(descr.get("price", "0") or "0", f"{where}.descr.price")
    try:
        return OrderStatus(
            client_order_id=row.get("cl_ord_id") or None,
            venue_order_id=txid,
            symbol=symbol,
            side=_field(descr, "type", where),
            order_type=otype,
            quantity=_decimal(_field(row, "vol", where), f"{where}.vol"),
            state=state,
            filled_qty=filled,
            avg_price=_decimal(row.get("price", "0"), f"{where}.price") if filled > 0 else None,
            fee=_decimal(row.get("fee", "0"), f"{where}.fee"),
            limit_price=price if otype == "limit" and price > 0 else None,
            stop_price=price if otype in ("stop-loss", "take-profit") and price > 0 else None,
            reason=row.get("reason") or None,
            updated_at=_epoch(row["closetm"], f"{where}.closetm") if row.get("closetm") else now,
        )
    except ValidationError as e:
        raise DataError(f"{where}: {e.errors()[0]['loc']}: {e.errors()[0]['msg']}") from None


def trade_fill(trade_id: str, row: Mapping[str, Any], symbol: str, client_order_id: str | None,
               fee_currency: str) -> Fill:
    """One TradesHistory row → ``Fill``."""
    where = f"Kraken trade {trade_id}"
    try:
        return Fill(
            fill_id=trade_id,
            client_order_id=client_order_id,
            venue_order_id=str(_field(row, "ordertxid", where)),
            symbol=symbol,
            side=_field(row, "type", where),
            qty=_decimal(_field(row, "vol", where), f"{where}.vol"),
            price=_decimal(_field(row, "price", where), f"{where}.price"),
            fee=_decimal(_field(row, "fee", where), f"{where}.fee"),
            fee_currency=fee_currency,
            ts=_epoch(_field(row, "time", where), f"{where}.time"),
        )
    except ValidationError as e:
        raise DataError(f"{where}: {e.errors()[0]['loc']}: {e.errors()[0]['msg']}") from None
