"""The executor's alerts as values (pure): what a tick did that the owner should hear about.

The tick appends them to ``SlotReport.alerts``; the app layer records and sends them once per
``Alert.key`` (``app.alerts.emit``: the ``notifications`` table), so a key must name the event
itself, never the tick that saw it:
- ``trade_opened:<position_id>`` / ``trade_closed:<position_id>`` (INFO): symbol, quantity at
  the pair's lot precision, prices, P&L and exit reason;
- ``order_rejected:<intent_id>`` (WARN): an intent the executor or the venue refused;
  these two only for ``TRADED_SLOT`` (``active``): shadow slots are candidates' paper tests,
  judged by ``app.promotion``, not a stream of messages to the owner;
- ``risk_halt:<slot>:<kind>:<since>`` (ERROR): every halt the slot's risk state holds, whoever
  set it (this tick's equity, a scan, a failed check, a human): the state is the truth, the
  key its ``since``, so a standing halt is reported once however many ticks see it;
- ``kill:<slot>:<since>`` (ERROR): the kill switch is on (same rule);
- ``risk_resume:<slot>:<kind>:<ts>`` (INFO): a halt this tick cleared (the daily-loss halt at
  the UTC day rollover; a human ``resume`` is alerted by ``app.home.control``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from trading_brain.domain.alerts import Alert
from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.intents import OrderIntent
from trading_brain.domain.numbers import money, quantity
from trading_brain.domain.records import PositionRecord
from trading_brain.domain.risk import RiskEvent, RiskState

TRADED_SLOT = "active"


def _qty(pos: PositionRecord, pairs: Mapping[str, AssetPair], q: object) -> str:
    pair = pairs.get(pos.symbol)
    return quantity(str(q), pair.lot_decimals if pair else None)


def trade_opened(slot: str, pos: PositionRecord, pairs: Mapping[str, AssetPair]
                 ) -> list[Alert]:
    if slot != TRADED_SLOT:
        return []
    stops = "".join(f", {name} {money(v)}" for name, v in (
        ("stop", pos.stop_loss_price), ("take-profit", pos.take_profit_price)) if v)
    return [Alert(f"trade_opened:{pos.position_id}", "INFO", "trade_opened", pos.symbol,
                  f"[{slot}] opened {pos.symbol}: {_qty(pos, pairs, pos.quantity)} at "
                  f"{money(pos.entry_price)} ({pos.strategy_id}@{pos.version}{stops})")]


def trade_closed(slot: str, pos: PositionRecord, pairs: Mapping[str, AssetPair]
                 ) -> list[Alert]:
    if slot != TRADED_SLOT:
        return []
    pnl = pos.realized_pnl
    sign = "+" if pnl is not None and pnl >= 0 else ""
    ret = (f" ({float(pnl / pos.entry_cost):+.2%})" if pnl is not None and pos.entry_cost > 0
           else "")
    avg = pos.exit_value / pos.sold_qty if pos.sold_qty else None
    return [Alert(f"trade_closed:{pos.position_id}", "INFO", "trade_closed", pos.symbol,
                  f"[{slot}] closed {pos.symbol}: {_qty(pos, pairs, pos.sold_qty)} at "
                  f"{money(avg)}, P&L {sign}{money(pnl)}{ret}, "
                  f"reason {pos.exit_reason or 'signal'}")]


def order_rejected(slot: str, intent: OrderIntent, reason: str, status: str) -> list[Alert]:
    if slot != TRADED_SLOT:
        return []
    return [Alert(f"order_rejected:{intent.intent_id}", "WARN", "order_rejected",
                  intent.symbol, f"[{slot}] {intent.action} {intent.symbol} {status}: {reason}")]


def risk_alerts(slot: str, state: RiskState, events: Sequence[RiskEvent]) -> list[Alert]:
    """Standing halts and kill switch of ``state``, and the halts ``events`` cleared."""
    out = [Alert(f"risk_halt:{slot}:{kind}:{h.since.isoformat()}", "ERROR", "risk_halt", slot,
                 f"[{slot}] trading HALTED ({kind}): {h.reason}; exits and stops still pass")
           for kind, h in sorted(state.halts.items())]
    if state.kill_switch is not None:
        ks = state.kill_switch
        out.append(Alert(f"kill:{slot}:{ks.since.isoformat()}", "ERROR", "kill", slot,
                         f"[{slot}] KILL SWITCH on: {ks.reason}"))
    out += [Alert(f"risk_resume:{slot}:{e.reason}:{e.ts.isoformat()}", "INFO", "risk_resume",
                  slot, f"[{slot}] halt {e.reason} cleared: {e.details.get('why') or 'resumed'}")
            for e in events if e.kind == "halt_cleared"]
    return out
