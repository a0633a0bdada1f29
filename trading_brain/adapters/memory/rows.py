"""How ``MemoryBook`` stores a row (its decimals as a DECIMAL(38, 18) column returns them) and
what it holds for the warehouse (``Pending``).

``dec`` rounds a value half away from zero to 18 decimals (what DuckDB stores and returns);
``norm_*`` apply it to every decimal field of a row. A row written again (``old``: the row the
book holds for it) normalises only the fields that are not the held row's own objects: a held
value is already a column value, on which ``dec`` is the identity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

from trading_brain.domain.intents import OrderIntent
from trading_brain.domain.orders import Fill
from trading_brain.domain.records import CashEntry, OrderRow, PositionRecord, Snapshot

_Q = Decimal("1e-18")
# ``localcontext(prec=60, rounding=ROUND_HALF_UP)`` of the default context (nothing in the
# project changes the thread's context), built once: ``dec`` runs for every decimal written
_HALF_UP = Context(prec=60, rounding=ROUND_HALF_UP)


def dec(x: Any) -> Decimal | None:
    """A value as a DECIMAL(38, 18) column returns it (None stays None)."""
    if x is None:
        return None
    d = x if isinstance(x, Decimal) else Decimal(repr(x)) if isinstance(x, float) else Decimal(x)
    return d.quantize(_Q, context=_HALF_UP)


def _dec_fields(obj: Any, names: Sequence[str]) -> dict[str, Any]:
    return {n: dec(getattr(obj, n)) for n in names}


def _dec_changed(obj: Any, old: Any, names: Sequence[str]) -> dict[str, Any]:
    """``_dec_fields`` of the fields of ``obj`` that are not the very object ``old`` (the row
    the book holds) has: a held value is already a column value (``dec`` of it or as the
    warehouse returned it), on which ``dec`` is the identity."""
    if old is None:
        return _dec_fields(obj, names)
    return {n: dec(v) for n in names if (v := getattr(obj, n)) is not getattr(old, n)}


_ORDER_DEC = ("quantity", "limit_price", "stop_price", "filled_qty", "avg_price", "fee")


def norm_order(o: OrderRow, old: OrderRow | None = None) -> OrderRow:
    """``o`` with its decimals as the columns hold them (``old``: the row held for it)."""
    changes = _dec_changed(o, old, _ORDER_DEC)
    return replace(o, **changes) if changes else o


def norm_intent(i: OrderIntent) -> OrderIntent:
    return i.model_copy(update=_dec_fields(i, ("quantity", "limit_price", "reference_price")))


def norm_fill(f: Fill) -> Fill:
    return f.model_copy(update=_dec_fields(f, ("qty", "price", "fee")))


def norm_entry(e: CashEntry) -> CashEntry:
    return replace(e, amount=dec(e.amount), balance_after=dec(e.balance_after))


_POS_DEC = ("quantity", "cost_basis", "entry_fee", "stop_loss_price", "take_profit_price",
            "sold_qty", "exit_value", "exit_fee", "realized_pnl", "entry_cost")


def norm_position(p: PositionRecord, old: PositionRecord | None = None) -> PositionRecord:
    """``p`` as the columns hold it (``old``: the row held for it, see ``_dec_changed``)."""
    changes = _dec_changed(p, old, _POS_DEC)
    if type(p.version) is not int:
        changes["version"] = int(p.version)
    if type(p.max_adverse_excursion) is not float:
        changes["max_adverse_excursion"] = float(p.max_adverse_excursion)
    return replace(p, **changes) if changes else p


@dataclass
class Pending:
    """What the warehouse does not hold yet (``memory.flush.flush`` writes and clears it)."""

    new_orders: set[str] = field(default_factory=set)
    orders: set[str] = field(default_factory=set)
    new_intents: set[str] = field(default_factory=set)
    intents: set[str] = field(default_factory=set)  # status/updated_at changed
    fills: list[tuple[Fill, datetime]] = field(default_factory=list)
    entries: list[tuple[CashEntry, int]] = field(default_factory=list)
    positions: set[str] = field(default_factory=set)
    snapshots: dict[tuple[datetime, str], Snapshot] = field(default_factory=dict)
    risk_states: set[str] = field(default_factory=set)
    events: list[list[Any]] = field(default_factory=list)
    papers: set[str] = field(default_factory=set)
