"""The Telegram commands as a table: name -> (help, handler). Each handler reads the home through
``BotContext`` and returns ``Reply`` values (text, or a PNG photo with a caption).

Handlers only read, except ``/halt``, ``/resume`` and ``/kill``, which call the same functions
as ``trading-brain halt | resume | kill`` (through ``BotContext.control``), and ``/report``,
which writes the report's files (``app.telegram_report``). A chart is drawn in a background job
(``BotContext.background``), so the text answers at once and the photo follows. Commands whose
feature does not exist yet answer ``NOT_YET`` (fill in the table when it lands).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from trading_brain.adapters.duckdb import Store, notify_tables
from trading_brain.domain.risk import RiskState
from trading_brain.ports import Clock
from trading_brain.settings import Settings

_DAY = timedelta(days=1)
NOT_YET = "{name}: not available yet (the evolution features are being built)."
TRADES_SHOWN = 10


@dataclass(frozen=True)
class Reply:
    text: str = ""
    photo: bytes | None = None  # a PNG, sent with ``text`` as its caption


class Control(Protocol):
    """What ``trading-brain halt | resume | kill`` run (``app.home.control``)."""

    def halt(self, reason: str) -> dict[str, Any]: ...
    def resume(self, reason: str) -> dict[str, Any]: ...
    def kill(self, reason: str) -> dict[str, Any]: ...


@dataclass
class BotContext:
    settings: Settings
    store: Store
    clock: Clock
    control: Control
    reports_dir: Path | None = None  # where /report writes (None: no files, no charts)
    background: Callable[[Callable[[], list[Reply]]], None] = field(
        default=lambda job: None)  # runs a long job, its replies sent when done


Handler = Callable[[BotContext, list[str]], list[Reply]]


def money(v: Decimal | float | None) -> str:
    return "-" if v is None else f"{float(v):,.2f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.2f}%"


def _slots(ctx: BotContext) -> list[str]:
    return ctx.store.known_slots() or ["active"]


def status(ctx: BotContext, _args: list[str]) -> list[Reply]:
    s, store = ctx.settings, ctx.store
    lines = [f"market={s.market} execution={s.execution} "
             f"live orders={'on' if s.allow_live_orders else 'off'}"]
    equity, counts = store.latest_equity(), store.open_position_counts()
    for slot in _slots(ctx):
        st = store.load_risk_state(slot) or RiskState()
        state = "KILL SWITCH" if st.kill_switch else "HALTED" if st.halted else "trading"
        lines.append(f"{slot}: {state}, equity {money(equity.get(slot))}, "
                     f"{counts.get(slot, 0)} open position(s)")
    return [Reply("\n".join(lines))]


def health(ctx: BotContext, _args: list[str]) -> list[Reply]:
    now, lines = ctx.clock.now(), []
    for tf in ("5m", "1h", "1d"):
        last = ctx.store.latest_candle_ts(tf)
        if last:
            age = (now - max(last.values())).total_seconds() / 60
            lines.append(f"{tf} candles: newest {max(last.values()):%Y-%m-%d %H:%M} UTC "
                         f"({age:.0f} min ago), {len(last)} symbol(s)")
        else:
            lines.append(f"{tf} candles: none")
    rows = notify_tables.alert_counts_since(ctx.store, now - _DAY)
    alerts = ", ".join(f"{n} {lv}" for lv, n in rows) or "none"
    lines.append(f"alerts in the last 24 h: {alerts}")
    lines.append(f"warehouse schema version {ctx.store.schema_version()}")
    return [Reply("\n".join(lines))]


def positions(ctx: BotContext, _args: list[str]) -> list[Reply]:
    lines = []
    for slot in _slots(ctx):
        for p in ctx.store.positions(slot):
            avg = p.cost_basis / p.quantity if p.quantity else Decimal(0)
            lines.append(f"{slot} {p.symbol}: {p.quantity.normalize():f} @ {money(avg)}"
                         f" since {p.entry_time:%m-%d %H:%M}"
                         f" stop {money(p.stop_loss_price)} tp {money(p.take_profit_price)}")
    return [Reply("\n".join(lines) or "No open positions.")]


def trades(ctx: BotContext, _args: list[str]) -> list[Reply]:
    closed = sorted(ctx.store.positions("active", status="closed"),
                    key=lambda p: p.exit_time or p.updated_at)[-TRADES_SHOWN:]
    lines = [f"{p.symbol} {p.entry_time:%m-%d %H:%M} -> "
             f"{(p.exit_time or p.updated_at):%m-%d %H:%M} pnl {money(p.realized_pnl)}"
             f" ({p.exit_reason or '?'})" for p in closed]
    return [Reply("Last closed trades (active slot):\n" + "\n".join(lines) if lines
                  else "No closed trades yet.")]


def pnl(ctx: BotContext, _args: list[str]) -> list[Reply]:
    snaps = ctx.store.snapshots("active")
    if not snaps:
        return [Reply("No portfolio snapshot yet (the executor has not run).")]
    last, start = snaps[-1], ctx.store.starting_capital("active")
    total = float(last.equity / start - 1) if start else None
    text = (f"equity {money(last.equity)} (start {money(start)}, {_pct(total)})\n"
            f"today {money(last.daily_pnl)}; realised {money(last.realized_pnl)}; "
            f"unrealised {money(last.unrealized_pnl)}; fees {money(last.fees_paid)}")
    from trading_brain.app.telegram_report import equity_photo

    equity_photo(ctx, snaps)
    return [Reply(text)]


def risk(ctx: BotContext, _args: list[str]) -> list[Reply]:
    lim, lines = ctx.settings.risk, []
    for slot in _slots(ctx):
        st = ctx.store.load_risk_state(slot) or RiskState()
        why = [f"kill switch: {st.kill_switch.reason}"] if st.kill_switch else []
        why += [f"{k}: {h.reason}" for k, h in sorted(st.halts.items())]
        lines.append(f"{slot}: {'; '.join(why) if why else 'no halt'}; peak "
                     f"{money(st.peak_equity)}")
    lines.append(f"limits: {lim.model_dump_json()}"[:600])
    return [Reply("\n".join(lines))]


def performance(ctx: BotContext, _args: list[str]) -> list[Reply]:
    closed = [p for p in ctx.store.positions("active", status="closed")
              if p.realized_pnl is not None]
    if not closed:
        return [Reply("No closed trades yet.")]
    wins = [p for p in closed if (p.realized_pnl or 0) > 0]
    total = sum((p.realized_pnl or Decimal(0) for p in closed), Decimal(0))
    fees = sum((p.entry_fee + p.exit_fee for p in closed), Decimal(0))
    from trading_brain.app.telegram_report import pnl_photo

    pnl_photo(ctx, closed)
    return [Reply(f"{len(closed)} closed trade(s), {len(wins)} won "
                  f"({len(wins) / len(closed) * 100:.0f}%); realised {money(total)} "
                  f"after {money(fees)} fees")]


def strategy(ctx: BotContext, _args: list[str]) -> list[Reply]:
    active = ctx.store.active_version()
    head = f"active: {active[0]}@{active[1]}" if active else "no active strategy version"
    hist = [f"{a} {s}@{v}: {r}"[:200] for s, v, a, r in ctx.store.deployment_history()[-5:]]
    return [Reply("\n".join([head, *hist]))]


def not_yet(name: str) -> Handler:
    return lambda _ctx, _args: [Reply(NOT_YET.format(name=name))]


def report(ctx: BotContext, args: list[str]) -> list[Reply]:
    from trading_brain.app.telegram_report import report as answer

    return answer(ctx, args)


def halt(ctx: BotContext, args: list[str]) -> list[Reply]:
    why = " ".join(args) or "halted by a human (telegram /halt)"
    done = ctx.control.halt(why)
    return [Reply("Halted (no new entries; exits and stops still pass): " + ", ".join(done))]


def resume(ctx: BotContext, args: list[str]) -> list[Reply]:
    why = " ".join(args) or "resumed by a human (telegram /resume)"
    done = ctx.control.resume(why)
    return [Reply("Resumed (halts and kill switch cleared): " + ", ".join(done))]


def kill_now(ctx: BotContext, reason: str) -> list[Reply]:
    def job() -> list[Reply]:
        data = ctx.control.kill(reason)
        per = [f"{s}: closed {len(r['closed'])}, still open {r['open_positions']}"
               for s, r in data["slots"].items()]
        head = "Kill done: flat." if data["flat"] else "Kill: NOT FLAT, send /kill again."
        return [Reply("\n".join([head, *per]))]

    ctx.background(job)
    return [Reply("Kill switch on; cancelling entries and closing every position…")]


COMMANDS: dict[str, tuple[str, Handler]] = {
    "status": ("mode, and per slot: trading or halted, equity, open positions", status),
    "health": ("candle freshness, alerts of the last 24 h", health),
    "positions": ("open positions", positions),
    "trades": (f"the last {TRADES_SHOWN} closed trades", trades),
    "pnl": ("equity, P&L and fees, with the equity chart", pnl),
    "risk": ("halts, kill switch, peak equity and the limits", risk),
    "performance": ("closed trades: count, win rate, realised P&L, P&L per symbol chart",
                    performance),
    "strategy": ("the active strategy version and recent deployments", strategy),
    "candidates": ("strategy candidates", not_yet("candidates")),
    "scorecard": ("the evolution scorecard", not_yet("scorecard")),
    "thoughts": ("the advisor's latest thoughts", not_yet("thoughts")),
    "report": ("[YYYY-MM-DD] [week] the day's (or week's) report, with its charts",
               report),
    "halt": ("[reason] halt new entries on every slot", halt),
    "resume": ("[reason] clear halts and the kill switch", resume),
}
