"""What `trading-brain status` shows: the home's mode, candle coverage and per-slot halts.

``home_status(rt)`` returns ``{"home", "mode": {market, execution, allow_live_orders},
"symbols", "schema_version", "candles": {symbol: {timeframe: {count, first, last}}}, "halts":
app.home.control.slot_halts, "positions": {slot: [{symbol, quantity, entry_price, lot_decimals,
entry_time}]}}`` read from the warehouse (datetimes stay datetimes; money and quantities are
exact decimal strings; the command formats them for eyes: ``domain.numbers``, or serialises
them as they are with ``--json``).
"""

from __future__ import annotations

from typing import Any

from trading_brain.app.home.control import slot_halts
from trading_brain.app.runtime import Runtime


def home_status(rt: Runtime) -> dict[str, Any]:
    """The status document of ``rt``'s home (see the module docstring)."""
    s = rt.settings
    candles: dict[str, dict[str, dict[str, Any]]] = {}
    for sym, tf, n, first, last in rt.store.candle_summary().iter_rows():
        candles.setdefault(sym, {})[tf] = {"count": n, "first": first, "last": last}
    return {"home": str(rt.home.root), "mode": {"market": s.market, "execution": s.execution,
                                               "allow_live_orders": s.allow_live_orders},
            "symbols": s.symbols, "schema_version": rt.store.schema_version(),
            "candles": candles, "halts": slot_halts(rt.store), "positions": _positions(rt)}


def _positions(rt: Runtime) -> dict[str, list[dict[str, Any]]]:
    """Open positions per slot, with the pair's lot precision (None: pair unknown)."""
    store = rt.store
    with store.session():
        pairs = store.read_asset_pairs()
        out = {}
        for slot in store.known_slots():
            out[slot] = [{"symbol": p.symbol, "quantity": str(p.quantity),
                          "entry_price": str(p.entry_price), "entry_time": p.entry_time,
                          "lot_decimals": pairs[p.symbol].lot_decimals if p.symbol in pairs
                          else None} for p in store.positions(slot)]
    return out
