"""The fill model: one contract for backtest, replay and paper (DESIGN §6).

It is the semantics of vectorbt 1.2 ``Portfolio.from_signals`` with signals shifted one bar,
``price=open``, ``size_type="percent"``, ``accumulate=False``, ``upon_opposite_entry="ignore"``,
``stop_entry_price="fillprice"``, ``stop_exit_price="stoplimit"``. The fast engine *is* vectorbt;
the exact replay and the paper executor call the functions below, which mirror vectorbt's float
arithmetic operation by operation so that both give the same numbers.

Rules
-----
1. A decision on bar ``t`` uses bars with open time <= t. Its market order fills at the open of
   bar ``t+1`` ("next open" = first price after the decision, for paper trading). Buys fill at
   ``open*(1+slippage)``, signal sells at ``open*(1-slippage)``.
2. Every fill pays ``fee = rate*quantity*price``; entry and exit fees are both in P&L.
3. An entry spends ``size`` x available cash, fee included: ``limit = size*cash``,
   ``quantity = limit/(1+rate)/price``, ``fee = limit - limit/(1+rate)``.
4. One long position per symbol (and slot): an entry while in a position is ignored; an exit
   while flat is ignored; one order per symbol and bar, so there is no re-entry on the bar where a
   position was closed (the earliest re-entry is the next bar's open).
5. Stop-loss and take-profit are levels fixed from the entry *fill* price
   (``fill*(1-sl)``, ``fill*(1+tp)``), checked on every bar after the entry bar: an open at or
   beyond a level exits at that open; otherwise ``low <= SL`` exits at the SL level, else
   ``high >= TP`` exits at the TP level (SL wins when both are touched). Stop exits pay the fee and
   no slippage. Stops are evaluated before a pending signal order on the same bar; when a stop
   fires, the pending signal is dropped (one order per bar).
6. Lot rounding and exchange minimums (paper/live): the quantity rounds *down* to the pair's lot
   precision and an order below ``ordermin``/``costmin`` is rejected. A backtest does not round;
   it reports how many entries would have been rejected (``would_reject``).

vectorbt subtleties found by experiment (vectorbt 1.2.0, engine="rust", same as numba)
---------------------------------------------------------------------------------------
- ``size_type="percent"`` caps the spend at ``percent*cash`` *including* the fee (rule 3); the
  order has infinite size, so vectorbt always takes its "insufficient cash" branch and the fee is
  ``limit - limit/(1+rate)`` (equal to ``rate*qty*price`` up to rounding).
- Levels are computed as ``fill*(1-sl)`` in float: 101*(1-0.05) = 95.94999999999999, so a low of
  95.95 does *not* trigger. Comparisons are inclusive (``open <= SL`` exits at the open).
- ``size_granularity`` is applied to exits too: ``(k*g)//g`` is ``k-1`` for about half of all k, so
  rounding inside vectorbt leaves dust positions. That is why backtests do not round (rule 6).
- Entry and exit on the same bar conflict and are both ignored (``upon_long_conflict="ignore"``);
  a signal frame cannot express that, since an action is one of enter/exit/hold.
- Cash and positions within 1e-9 relative / 1e-12 absolute of zero are snapped to zero
  (``is_close_nb``); a zero spending limit means the entry is rejected.
- Stops are armed only after the entry order, so the entry bar itself is never checked.
- A UTC-aware pandas index made a simulation 20x slower: the fast engine passes plain arrays.
- ``Portfolio.from_signals`` spends ~10 ms per call on pandas wrapping and config copies; the fast
  engine calls the same engine-neutral core (``vectorbt.portfolio.dispatch.simulate_from_signals``)
  with the arguments from_signals builds, and a test asserts identical order records.
- The Rust core releases the GIL, but two threads must never share a mutable input (``call_seq``):
  numpy's borrow checker panics (``AlreadyBorrowed``). Each thread builds its own arrays.
- Per-bar ``size``/``sl_stop``/``tp_stop`` are read at the bar the entry fills (the shifted
  decision bar), and only there; a (1 x k) row broadcasts without copying.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from trading_brain.domain.instruments import AssetPair

REL_TOL = 1e-9
ABS_TOL = 1e-12
EXIT_REASONS = ("signal", "stop_loss", "take_profit")


@dataclass(frozen=True, slots=True)
class Fill:
    """One executed order: quantity (> 0), price after slippage, fee paid, cash moved (signed)."""

    quantity: float
    price: float
    fee: float
    cash_delta: float


def is_close(a: float, b: float) -> bool:
    """vectorbt's ``is_close_nb``: equal within 1e-9 relative or 1e-12 absolute."""
    if a == b:
        return True
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return False
    return abs(a - b) <= max(REL_TOL * max(abs(a), abs(b)), ABS_TOL)


def snap(x: float) -> float:
    """Snap a value within tolerance of zero to exactly zero (vectorbt's numerical stability)."""
    return 0.0 if is_close(x, 0.0) else x


def add(a: float, b: float) -> float:
    """vectorbt's ``add_nb``: ``a + b``, snapped to zero when the two (nearly) cancel."""
    if _sign(a) != _sign(b):
        return 0.0 if is_close(abs(a), abs(b)) else a + b
    return 0.0 if is_close(a + b, 0.0) else a + b


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def buy_price(open_: float, slippage: float) -> float:
    """Fill price of a market buy at ``open_``."""
    return open_ * (1 + slippage)


def sell_price(open_: float, slippage: float) -> float:
    """Fill price of a market (signal) sell at ``open_``."""
    return open_ * (1 - slippage)


def entry_fill(cash: float, size: float, price: float, fee: float) -> Fill | None:
    """Spend ``size`` x ``cash`` (fee included) at ``price``; None when nothing can be bought."""
    cash = snap(cash)
    limit = min(cash, size * cash)
    if limit <= 0 or not math.isfinite(price) or price <= 0:
        return None
    max_req = limit / (1 + fee)
    qty = max_req / price
    return Fill(quantity=qty, price=price, fee=limit - max_req, cash_delta=-limit)


def entry_fill_rounded(
    cash: float, size: float, price: float, fee: float, pair: AssetPair
) -> Fill | None:
    """Paper/live entry: like ``entry_fill`` but the quantity rounds down to lot precision.

    Returns None when the rounded quantity is zero or below the pair's minimums.
    """
    raw = entry_fill(cash, size, price, fee)
    if raw is None:
        return None
    qty = float(pair.round_qty(raw.quantity))
    if qty <= 0 or not meets_minimums(qty, price, pair):
        return None
    cost = qty * price
    fee_paid = cost * fee
    return Fill(quantity=qty, price=price, fee=fee_paid, cash_delta=-(cost + fee_paid))


def exit_fill(quantity: float, price: float, fee: float) -> Fill:
    """Sell the whole ``quantity`` at ``price`` (slippage already applied, if any)."""
    acq = quantity * price
    fee_paid = acq * fee
    return Fill(quantity=quantity, price=price, fee=fee_paid, cash_delta=add(acq, -fee_paid))


def stop_levels(entry_price: float, sl: float | None, tp: float | None) -> tuple[float, float]:
    """Stop-loss and take-profit levels (NaN = none) fixed from the entry fill price."""
    nan = math.nan
    sl_level = entry_price * (1 - sl) if sl is not None and not math.isnan(sl) else nan
    tp_level = entry_price * (1 + tp) if tp is not None and not math.isnan(tp) else nan
    return sl_level, tp_level


def stop_exit(
    open_: float, high: float, low: float, sl_level: float, tp_level: float
) -> tuple[float, str] | None:
    """The stop that fires on this bar as ``(price, reason)``, or None (rule 5)."""
    if sl_level == sl_level:  # not NaN
        if open_ <= sl_level:
            return open_, "stop_loss"
        if low <= sl_level <= high:
            return sl_level, "stop_loss"
    if tp_level == tp_level:
        if tp_level <= open_:
            return open_, "take_profit"
        if low <= tp_level <= high:
            return tp_level, "take_profit"
    return None


def meets_minimums(quantity: float, price: float, pair: AssetPair) -> bool:
    """True when ``quantity`` >= ordermin and ``quantity*price`` >= costmin."""
    qty = Decimal(repr(float(quantity)))
    return pair.meets_minimums(qty, Decimal(repr(float(price))))


def would_reject(quantity: float, price: float, pair: AssetPair) -> bool:
    """True when a backtest entry of ``quantity`` at ``price`` would be refused by the venue."""
    qty = pair.round_qty(quantity)
    return qty <= 0 or not pair.meets_minimums(qty, Decimal(repr(float(price))))
