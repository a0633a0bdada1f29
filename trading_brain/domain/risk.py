"""Risk shell types: limits, persisted state, the portfolio it sees, proposals and decisions.

Contract (DESIGN §6.3, rules in engine/risk.py and engine/risk_state.py):
- ``RiskLimits`` comes from settings (the ``[risk]`` section shape, alias ``RiskSettings``), never
  from strategy or AI output. Fractions are floats in (0, 1]; money is ``Decimal``.
- ``RiskState`` is everything that must survive a restart (halts with reasons, kill switch, peak
  equity, the UTC day and its start equity, consecutive losses, per-symbol recent closes and
  cooldowns, a pending rollback trigger). It is a frozen pydantic model: persist it with
  ``model_dump_json()`` and load it with ``RiskState.model_validate_json()``; transitions return a
  new state.
- ``PortfolioView`` is the read-only picture of one account (one slot) the shell sizes against;
  the cash reserved for pending orders is derived from ``pending`` so it cannot drift.
- ``Decision`` carries a machine ``reason`` (``ReasonCode``) and a human ``message``; every
  decision and state change becomes a ``RiskEvent`` (table ``risk_events``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal, localcontext
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ReasonCode = Literal[
    "ok",  # approved as requested (entries: up to lot rounding; exits: full quantity)
    "kill_switch",  # the kill switch is on: no new entries
    "halt_manual",  # a human halted trading
    "halt_daily_loss",  # equity fell by daily_loss_halt_pct since 00:00 UTC
    "halt_drawdown",  # equity fell by drawdown_halt_pct from the persisted peak
    "state_stale",  # risk state not initialised or not updated today: call restore/update first
    "invalid_proposal",  # bad price, zero size, symbol/pair mismatch
    "unknown_pair",  # no exchange metadata for the symbol
    "pair_unavailable",  # the venue does not accept new orders on the pair
    "cooldown",  # the symbol is cooling down after a stop-loss
    "duplicate_position",  # already holding the symbol (one position per symbol and slot)
    "duplicate_pending",  # an entry for the symbol is already pending
    "duplicate_intent",  # the same intent id was already reserved or proposed
    "max_positions",  # max open positions reached (held + pending entries)
    "max_exposure",  # total exposure headroom capped or exhausted
    "max_trade_size",  # capped by the max trade fraction of equity
    "max_position_size",  # capped by the max position fraction of equity
    "probation",  # size scaled down after recent losses on the symbol
    "insufficient_cash",  # no free cash after reservations
    "below_ordermin",  # rounded quantity below the pair's ordermin
    "below_costmin",  # rounded quantity x price below the pair's costmin
    "no_position",  # exit or protective order without a sellable position
    "exit_capped",  # exit quantity capped at the sellable position
]

RollbackReason = Literal["consecutive_losses", "daily_drop"]
EventKind = Literal[
    "decision", "halt", "halt_cleared", "kill_switch", "resume", "day_rollover",
    "rollback_trigger", "rollback_cleared", "probation", "cooldown", "restore", "deployment",
]
HaltKind = Literal["manual", "daily_loss", "drawdown"]
Action = Literal["enter", "exit", "protect"]
Status = Literal["approved", "resized", "rejected"]
Scalar = str | int | float | bool | None


MONEY_PREC = 60  # digits: sums of money stay exact (the default context keeps only 28)


def _exact_sum(values: Iterable[Decimal]) -> Decimal:
    with localcontext(prec=MONEY_PREC):
        return sum(values, Decimal(0))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class RiskLimits(_Frozen):
    """The rigid limits of the risk shell; defaults are the issue's, bounds keep them sane."""

    max_trade_pct: float = Field(default=0.10, gt=0, le=1, description="max order cost / equity")
    max_position_pct: float = Field(default=0.25, gt=0, le=1, description="per symbol / equity")
    max_open_positions: int = Field(default=5, ge=1, le=100,
                                    description="held positions + pending entries")
    max_exposure_pct: float = Field(default=0.80, gt=0, le=1, description="positions + pending")
    daily_loss_halt_pct: float = Field(default=0.10, gt=0, lt=1,
                                       description="halt on this loss since 00:00 UTC")
    drawdown_halt_pct: float = Field(default=0.40, gt=0, lt=1, description="from persisted peak")
    rollback_daily_drop_pct: float = Field(
        default=0.15, gt=0, lt=1, description="ask for a strategy rollback on this daily drop")
    rollback_consecutive_losses: int = Field(
        default=4, ge=1, le=100,
        description="ask for a strategy rollback after this many losing trades in a row")
    probation_half_pct: float = Field(default=0.05, gt=0, lt=1, description="half size at -5%")
    probation_quarter_pct: float = Field(default=0.10, gt=0, lt=1, description="quarter at -10%")
    probation_window_hours: float = Field(
        default=24.0, gt=0, le=24 * 30,
        description="probation sums the returns of a symbol's trades closed this recently")
    cooldown_minutes: float = Field(default=240.0, ge=0, le=7 * 24 * 60,
                                    description="no new entry on a symbol after its stop-loss")
    price_buffer_pct: float = Field(
        default=0.01, ge=0, le=0.1,
        description="entry limit = reference x (1 + buffer); exits x (1 - buffer)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> RiskLimits:
        if self.probation_quarter_pct <= self.probation_half_pct:
            raise ValueError("probation_quarter_pct must be greater than probation_half_pct")
        return self


RiskSettings = RiskLimits  # the section shape settings.py embeds as ``risk``


class Halt(_Frozen):
    """An active halt: why and since when."""

    reason: str
    since: datetime


class ClosedTrade(_Frozen):
    """A realised round trip on one symbol, kept for the probation window."""

    ts: datetime
    pnl: Decimal
    cost: Decimal = Field(gt=0)

    @property
    def ret(self) -> float:
        return float(self.pnl / self.cost)


class SymbolRisk(_Frozen):
    """Per-symbol memory: today's realised P&L, recent closes (probation), cooldown."""

    day_pnl: Decimal = Decimal(0)
    closes: tuple[ClosedTrade, ...] = ()
    cooldown_until: datetime | None = None


class RollbackTrigger(_Frozen):
    """A request to revert to the last good strategy version (consumed by deployments)."""

    reason: RollbackReason
    since: datetime
    detail: str


class RiskState(_Frozen):
    """Everything the shell remembers across restarts (table ``risk_state``)."""

    halts: dict[HaltKind, Halt] = Field(default_factory=dict)
    kill_switch: Halt | None = None
    peak_equity: Decimal | None = None
    day: date | None = None
    day_start_equity: Decimal | None = None
    consecutive_losses: int = Field(default=0, ge=0)
    symbols: dict[str, SymbolRisk] = Field(default_factory=dict)
    rollback: RollbackTrigger | None = None
    rollback_drop_day: date | None = Field(default=None, description="daily-drop fired this day")
    updated_at: datetime | None = None

    @property
    def halted(self) -> bool:
        return bool(self.halts) or self.kill_switch is not None

    def symbol(self, symbol: str) -> SymbolRisk:
        return self.symbols.get(symbol, SymbolRisk())


class PositionView(_Frozen):
    """An open long: base quantity, current market value and entry price (quote currency)."""

    qty: Decimal = Field(ge=0)
    value: Decimal = Field(ge=0)
    entry_price: Decimal = Field(ge=0)


class PendingOrder(_Frozen):
    """An approved order not yet settled; entries hold ``reserved`` cash, sells hold ``qty``."""

    intent_id: str
    symbol: str
    action: Action
    qty: Decimal = Field(ge=0)
    reserved: Decimal = Field(default=Decimal(0), ge=0)


class PortfolioView(_Frozen):
    """One account as the risk shell sees it (one slot)."""

    equity: Decimal = Field(ge=0)
    cash: Decimal = Field(ge=0)
    positions: dict[str, PositionView] = Field(default_factory=dict)
    pending: tuple[PendingOrder, ...] = ()

    @property
    def reserved_cash(self) -> Decimal:
        return _exact_sum(p.reserved for p in self.pending)

    @property
    def available_cash(self) -> Decimal:
        with localcontext(prec=MONEY_PREC):
            return max(self.cash - self.reserved_cash, Decimal(0))

    @property
    def exposure(self) -> Decimal:
        """Market value held plus cash reserved by pending entries."""
        held = [p.value for p in self.positions.values() if p.qty > 0]
        return _exact_sum([*held, *(p.reserved for p in self.pending if p.action == "enter")])

    def held(self, symbol: str) -> Decimal:
        pos = self.positions.get(symbol)
        return pos.qty if pos is not None else Decimal(0)

    def open_symbols(self) -> set[str]:
        """Symbols held or with a pending entry (each counts once toward max positions)."""
        held = {s for s, p in self.positions.items() if p.qty > 0}
        return held | {p.symbol for p in self.pending if p.action == "enter"}


class Proposal(_Frozen):
    """What a strategy signal asks for, before the risk shell (one symbol, one slot)."""

    intent_id: str = Field(min_length=1)
    symbol: str
    action: Action
    size: float = Field(default=1.0, ge=0, le=1, description="fraction of available cash")
    quantity: Decimal | None = Field(default=None, gt=0, description="exits: None = all held")
    price: Decimal = Field(gt=0, description="reference price (last close / next open)")
    stop_loss: float | None = Field(default=None, gt=0, le=1)
    take_profit: float | None = Field(default=None, gt=0)
    strategy_version: str = ""
    slot: str = "active"


class Decision(_Frozen):
    """The risk shell's answer to one proposal."""

    intent_id: str
    symbol: str
    action: Action
    status: Status
    reason: ReasonCode
    message: str
    quantity: Decimal = Decimal(0)
    limit_price: Decimal = Decimal(0)
    reserved_cash: Decimal = Decimal(0)
    stop_loss: float | None = None
    take_profit: float | None = None
    strategy_version: str = ""
    slot: str = "active"

    @property
    def approved(self) -> bool:
        return self.status != "rejected"


class RiskEvent(_Frozen):
    """One row of ``risk_events``: a decision or a state change, with its reason."""

    ts: datetime
    kind: EventKind
    symbol: str | None = None
    reason: str
    details: dict[str, Scalar] = Field(default_factory=dict)
