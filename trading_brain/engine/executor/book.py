"""Booking half of the executor tick (engine/executor/tick.py): the slot's deposit, fills into
positions and the cash ledger, the closing snapshot with the invariant and the venue balance
reconcile.

Contract:
- Deposit: a paper slot deposits ``SlotSetup.starting_capital`` once (the tick's load). Venue
  capital (``SlotSetup.venue_capital``, live mode, ``open_live_book``): the venue's balances
  are the truth. The
  slot's first tick (no deposit recorded yet) deposits the venue's quote (USD) balance at that
  moment and records every other asset held then as the slot's baseline in
  ``system_meta[VENUE_BASELINE_KEY]`` (JSON ``{slot: {ts, deposit, assets}}``), in one
  transaction; the deposit is never re-read. The balance reconcile compares the ledger with
  the venue's balances minus the baseline (``reconcile.without_baseline``): the bot accounts
  only for what it bought, and any later difference (a manual deposit, withdrawal or trade) is
  flagged.
- ``record_fills``: the venue's fills not stored yet (``reconcile.fresh_fills``), oldest
  first (buys before sells at one time), each into its position and cash entries (in memory;
  the phase's ``flush`` stores fills, entries and positions in one transaction); a fill of a
  protective sell without a row first gets one (``reconcile.adopted_rows``); a fill matching no
  order of the slot is an error; a closed position feeds ``update_state_on_close``.
- ``finish_slot``: marks, max adverse excursion, then in ONE transaction the phase's writes,
  the snapshot from the warehouse's totals, the risk state and events; then the invariant
  and the venue balance reconcile.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal

from trading_brain.domain.orders import Balance
from trading_brain.domain.records import FillBook, OrderRow, PositionRecord
from trading_brain.engine.executor import alerts
from trading_brain.engine.executor.context import (
    REASON_OF,
    VENUE_BASELINE_KEY,
    ExecutorStore,
    TickContext,
)
from trading_brain.engine.executor.reconcile import adopted_rows, fresh_fills
from trading_brain.engine.ledger import PositionMeta, adverse_excursion, apply_fill
from trading_brain.engine.risk_state import update_state_on_close, update_state_on_equity
from trading_brain.engine.valuation import (
    InvariantReport,
    check_invariant,
    check_totals,
    make_snapshot,
    reconcile_balances,
    replay_fills,
    valuation,
)
from trading_brain.errors import DataError
from trading_brain.ports import LedgerStore


def slot_invariant(store: ExecutorStore, slot: str, marks: Mapping[str, Decimal]
                   ) -> InvariantReport:
    """The ledger invariant of one slot from the warehouse (what the ERROR asset check calls)."""
    with store.session():
        capital = store.starting_capital(slot)
        if capital is None:
            return InvariantReport(True, [], Decimal(0), Decimal(0))  # never traded
        return check_invariant(capital, store.cash_entries(slot), store.fills(slot),
                               store.positions(slot), marks)


def record_fills(ctx: TickContext) -> None:
    """Book the venue's fills not stored yet into ``ctx``: positions, cash entries, risk state
    (memory; the phase's ``flush`` stores fills, entries and positions in one transaction)."""
    venue, ctx.venue_fills = ctx.venue_fills, []
    if not venue:
        return
    fresh = fresh_fills(venue, ctx.store.known_fill_ids([f.fill_id for f in venue]))
    if not fresh:
        return
    missing = sorted({f.client_order_id for f in fresh
                      if f.client_order_id and f.client_order_id not in ctx.rows})
    for row in ctx.store.orders_by_cids(missing):  # fills of orders this tick did not load
        ctx.rows[row.client_order_id] = row
    if missing and any(c not in ctx.rows for c in missing):
        # a protective sell known only by its fills (paper's take-profit)
        for adopted in adopted_rows(ctx.positions.values(), fresh, ctx.rows.keys(), ctx.slot,
                                    ctx.ex.name, ctx.now):
            ctx.insert_order(adopted)
    ctx.load_intents([r.intent_id for r in (ctx.rows.get(f.client_order_id or "") for f in fresh
                                            if f.side == "buy") if r is not None and r.intent_id])
    balance, booked = ctx.cash, set()
    for f in sorted(fresh, key=lambda f: (f.ts, f.side != "buy", f.fill_id)):
        row = ctx.rows.get(f.client_order_id) if f.client_order_id else None
        if row is None or row.slot != ctx.slot:
            ctx.rep.errors.append(f"fill {f.fill_id} matches no order of slot {ctx.slot}")
            continue
        meta = position_meta(ctx, row) if f.side == "buy" else None
        try:
            effect = apply_fill(ctx.positions.get(f.symbol), f, ctx.slot, balance, meta,
                                REASON_OF.get(row.purpose, "signal"))
        except DataError as e:
            ctx.rep.errors.append(str(e))
            continue
        if f.fill_id in booked:  # the venue listed it twice: stored once
            continue
        booked.add(f.fill_id)
        ctx.w.fills.append(f)
        ctx.w.entries += effect.entries
        ctx.save_position(effect.position)
        balance = ctx.cash = effect.entries[-1].balance_after
        ctx.positions[f.symbol] = effect.position
        ctx.rep.fills.append(f.fill_id)
        if effect.opened:
            ctx.rep.positions_opened.append(effect.position.position_id)
            ctx.rep.alerts += alerts.trade_opened(ctx.slot, effect.position, ctx.pairs)
        if effect.closed:
            del ctx.positions[f.symbol]
            on_closed(ctx, effect.position)


def position_meta(ctx: TickContext, row: OrderRow) -> PositionMeta | None:
    intent = ctx.intent(row.intent_id) if row.intent_id else None
    if intent is None:
        return PositionMeta(row.intent_id or row.client_order_id)
    return PositionMeta(intent.intent_id, intent.strategy_id, intent.version, intent.intent_type)


def on_closed(ctx: TickContext, pos: PositionRecord) -> None:
    ctx.rep.positions_closed.append(pos.position_id)
    ctx.rep.alerts += alerts.trade_closed(ctx.slot, pos, ctx.pairs)
    if pos.entry_cost > 0:
        ctx.state, events = update_state_on_close(
            ctx.state, pos.symbol, pos.realized_pnl or Decimal(0), pos.entry_cost,
            pos.exit_reason or "signal", ctx.now, ctx.limits)
        ctx.rep.events += events


def slot_book(store: LedgerStore, slot: str) -> FillBook:
    """``replay_fills`` of the slot's stored fills, reading O(open positions' fills) rows: the
    warehouse reduces the closed position cycles (``fill_totals``); every fill is read and
    replayed only when it finds a symbol sold short (a corrupted ledger). Through the store's
    ``memo_fill_book``: the memory book keeps the result until a fill of the slot is added, the
    warehouse computes it every time. The ``FillBook`` is only read."""
    return store.memo_fill_book(slot, _slot_book)


def _slot_book(store: LedgerStore, slot: str) -> FillBook:
    totals = store.fill_totals(slot)
    if totals is None:
        return replay_fills(store.fills(slot))
    closed, open_fills = totals
    return replay_fills(open_fills, closed)


def finish_slot(ctx: TickContext) -> None:
    """Mark positions, then in ONE transaction: this phase's writes, the snapshot from the
    warehouse's totals of the stored cash ledger and fills (``ledger_totals``, ``slot_book``:
    the same figures as replaying them, at a cost that does not grow with the history), the
    risk state and events; then the invariant from the same three sources (``check_totals``)
    and the venue balance reconcile. ``slot_invariant`` (the asset check) replays everything."""
    positions = list(ctx.positions.values())
    marks = {**ctx.marks}
    missing = sorted(p.symbol for p in positions if p.symbol not in marks)
    if missing:  # opened by a fill recorded in this phase: mark at its fill price
        marks.update({p.symbol: p.entry_price for p in positions if p.symbol in missing})
    for p in positions:
        moved = adverse_excursion(p, float(marks[p.symbol]))
        if moved is not p:
            ctx.save_position(moved)
    with ctx.store.atomic():
        ctx.flush()
        ledger = ctx.store.ledger_totals(ctx.slot)
        book = slot_book(ctx.store, ctx.slot)  # once: the snapshots and the invariant share it
        cash = ledger.balance
        valued = valuation(cash, positions, marks)  # both snapshots value the same positions
        snap = make_snapshot(ctx.now, ctx.slot, cash, positions, marks, (), None, None, book,
                             valued)
        ctx.state, events = update_state_on_equity(ctx.state, snap.equity, ctx.now, ctx.limits)
        ctx.rep.events += events
        snap = make_snapshot(ctx.now, ctx.slot, cash, positions, marks, (),
                             ctx.state.peak_equity, ctx.state.day_start_equity, book, valued)
        ctx.store.write_snapshot(snap)
        ctx.store.save_risk_state(ctx.slot, ctx.state, ctx.now)
        if ctx.rep.events:
            ctx.store.record_risk_events(ctx.slot, ctx.rep.events)
    ctx.rep.snapshot = snap
    ctx.rep.alerts += alerts.risk_alerts(ctx.slot, ctx.state, ctx.rep.events)
    ctx.rep.invariant = check_totals(ctx.capital or Decimal(0), ledger, book, positions, marks)
    holdings = {(ctx.pairs[p.symbol].base if p.symbol in ctx.pairs else p.symbol.split("/")[0]):
                p.quantity for p in positions}
    if ctx.balance is not None:
        ctx.rep.mismatches = reconcile_balances(cash, holdings, ctx.balance, ctx.config.quote)


def marks_for(ctx: TickContext, symbols: list[str]) -> dict[str, Decimal]:
    if not symbols:
        return {}
    tickers = ctx.market.tickers(symbols)
    return {s: Decimal(repr(float(t.last))) for s, t in tickers.items()}


# ---- the deposit -----------------------------------------------------------------------------
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
            books[ctx.slot] = {"ts": ctx.now.isoformat(),
                               "deposit": format(opening.get(quote), "f"), "assets": held}
            s.set_meta(VENUE_BASELINE_KEY, json.dumps(books, sort_keys=True))
    ctx.capital, _, _, ctx.cash = s.executor_header(ctx.slot)
    ctx.baseline = baseline_of(s, ctx.slot)
