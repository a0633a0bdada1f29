"""Live-venue parts of the executor tick (engine/executor.py): capital from the venue, and
exits guarded against the venue's protective orders.

Contract:
- Venue capital (``SlotSetup.venue_capital``, live mode): the venue's balances are the truth.
  The slot's first tick (no deposit recorded yet) deposits the venue's quote (USD) balance at
  that moment and records every other asset held then as the slot's baseline in
  ``system_meta[VENUE_BASELINE_KEY]`` (JSON ``{slot: {ts, deposit, assets}}``), in one
  transaction; the deposit is never re-read. The balance reconcile compares the ledger with
  the venue's balances minus the baseline (``without_baseline``): the bot accounts only for
  what it bought, and any later difference (a manual deposit, withdrawal or trade) is flagged.
- Guarded exits (``guards_exits``: every venue but the modelled-stop paper venue): an exit of a
  position with open protective orders — an exit intent's sell, or the executor's take-profit
  sell (engine/executor_protect.py) — is sent only after each of them was cancelled and
  the cancel confirmed by a lookup (a venue may hold the coins for untriggered trigger
  sells, refusing the exit for insufficient funds; and a leg left armed could sell coins the
  bot no longer holds). When a leg filled meanwhile or a cancel is not confirmed, the exit
  is not sent: its intent stays pending and the next tick decides again (the leg's fill
  closes the position -> ``no_position``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal

from trading_brain.domain.orders import Balance, OrderRequest
from trading_brain.engine.executor.context import (
    MODELLED_STOPS,
    VENUE_BASELINE_KEY,
    ExecutorStore,
    TickContext,
)
from trading_brain.errors import AmbiguousOrderError, OrderRejected, TemporaryError


def baseline_of(store: ExecutorStore, slot: str) -> dict[str, Decimal]:
    """The coins ``slot``'s venue held before its first tick (``VENUE_BASELINE_KEY``)."""
    raw = store.get_meta(VENUE_BASELINE_KEY)
    book = json.loads(raw).get(slot) if raw else None
    return {a: Decimal(q) for a, q in book["assets"].items()} if book else {}


def open_live_book(ctx: TickContext, opening: Balance) -> None:
    """Live slot, first tick: deposit the venue's quote balance and record the other assets
    held as the baseline (one transaction); then read the header and baseline back."""
    quote = ctx.config.quote.upper()
    held = {a: format(q, "f") for a, q in sorted(opening.assets.items()) if a != quote and q}
    s = ctx.store
    with s.atomic():
        if s.ensure_deposit(ctx.slot, opening.get(quote), ctx.now):
            raw = s.get_meta(VENUE_BASELINE_KEY)
            books = json.loads(raw) if raw else {}
            books[ctx.slot] = {"ts": ctx.now.isoformat(), "deposit": format(opening.get(quote),
                                                                            "f"), "assets": held}
            s.set_meta(VENUE_BASELINE_KEY, json.dumps(books, sort_keys=True))
    ctx.capital, _, _, ctx.cash = s.executor_header(ctx.slot)
    ctx.baseline = baseline_of(s, ctx.slot)


def without_baseline(venue: Balance, baseline: Mapping[str, Decimal]) -> Balance:
    """The venue's balances minus the baseline (``baseline_of``): what the ledger accounts
    for. Whatever else reconciles a live slot with the venue must compare these too."""
    if not baseline:
        return venue
    assets = {**venue.assets}
    for a, q in baseline.items():
        assets[a] = assets.get(a, Decimal(0)) - q
    return Balance(assets=assets)


def guards_exits(ctx: TickContext) -> bool:
    """A real venue holds protective orders: an exit first cancels them (``clear_for_exits``)
    and a position about to be exited is not armed. The paper venue models stops itself
    (``MODELLED_STOPS``: a stop on the exit's bar comes first, as in the backtest)."""
    return ctx.ex.name not in MODELLED_STOPS


def clear_for_exits(ctx: TickContext) -> None:
    """Guarded exits: cancel the position's protective orders (a venue may hold the coins for
    untriggered triggers) and confirm each by a lookup; an exit whose legs are all confirmed
    closed without a fill is written ahead (own transaction) and joins ``to_place``. When a
    leg filled meanwhile, or a cancel is not confirmed, the exit is not sent: its intent stays
    pending and the next tick (which records the leg's fill or retries) decides again."""
    clear = []
    for intent, row, legs in ctx.guarded:
        ok = True
        for cid in legs:
            try:
                if cid not in ctx.confirmed:
                    ctx.ex.cancel_order(client_order_id=cid)
                    ctx.confirmed[cid] = st = ctx.ex.order_by_client_id(cid)
                else:
                    st = ctx.confirmed[cid]
            except (TemporaryError, AmbiguousOrderError, OrderRejected) as e:
                ctx.rep.errors.append(f"cancel {cid} before {row.purpose}: {e}")
                ok = False
                continue
            if st is not None and (not st.is_terminal or st.filled_qty > 0):
                ok = False  # still open, or the protective sell (partly) filled: no exit now
        if ok:
            ctx.insert_order(row)
            if intent is not None:  # None: the executor's take-profit sell
                ctx.set_status(intent.intent_id, "submitted")
            clear.append((intent, row))
    if not clear:
        return
    with ctx.store.atomic():
        inserted = ctx.flush()
    for intent, row in clear:
        if row.client_order_id in inserted:  # else written by another tick: never send twice
            ctx.to_place.append((intent, OrderRequest(
                client_order_id=row.client_order_id, symbol=row.symbol, side="sell",
                type="market", quantity=row.quantity)))
