"""One executor tick: ``run_tick`` reconciles, places and books, slot by slot.

Contract (DESIGN §6.2; the ``executor_sensor`` calls ``run_tick`` and turns the ``TickReport``
into asset events). Pure over ports: the warehouse (``ExecutorStore``), one ``Exchange`` per slot
(active and shadow slots each have their own cash pool and risk state), a ``MarketData`` for
marks and a ``Clock``. Per slot, in order (this module orchestrates; each step names its
module):
1. load (warehouse): deposit the starting capital once (book.py; live: the venue's balances,
   read in step 2, are the deposit and the coins held then the baseline); the risk state,
   positions, pending intents (at most ``max_orders``) and the orders they and the open ones
   have;
2. ask the venue (the truth): every open order (protective ones and ``submitting`` included)
   by client order id, the fills since a watermark (the oldest open order/position or the
   newest stored fill, minus ``fill_lookback``), and protect.ask_protection;
3. reconcile and plan (warehouse): the pure reconcile.reconcile_orders decides each row's
   correction and the intents it settles; ``submitting``/``unresolved`` rows the venue does not
   know become ``unresolved`` and, after ``unresolved_grace``, ``rejected``: never resent; the
   fills are booked (book.record_fills); protect.plan_protection and place.write_ahead plan the
   tick's orders and place.commit_plan writes them ahead in one transaction;
4. act (venue): protect.act_protection, place.send; then, when anything was sent, armed or
   cancelled, the fills again (so the ledger and the balances read next describe the same
   moment), the marks and the venue's balances (minus the live baseline);
5. record and book (warehouse): place.record_answers, book.record_fills, book.finish_slot
   (snapshot, risk state and events, the invariant, the balance reconcile).
A transient venue failure (``TemporaryError``) is an error and a warning of the tick; other
exceptions propagate (a crash: the next tick finds every order by its client id, so an intent
is never sent twice). Given the same clock readings and market, a tick is deterministic.

I/O shape (a connection costs ~25 ms, a statement ~0.3-3 ms): each slot runs three warehouse
phases (1, 3, 5), each inside one ``store.session()``, with the venue phases between them
outside any session — except with ``TickConfig.local_venues`` (paper venue over a local sim or
replay market: no network), where they share one session. The load reads the slot in four
queries and the tick keeps it in memory (``TickContext``: no order is re-read); phases 3 and 5
each write in ONE transaction with one set-based statement per table, so the write-ahead
``submitting`` rows of all the tick's orders are durable before the venue is called for any of
them. A ``Deferring`` venue (paper) writes its book once per venue phase.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import nullcontext
from datetime import timedelta

from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.intents import IntentPurpose
from trading_brain.domain.orders import Fill
from trading_brain.domain.risk import RiskLimits, RiskState
from trading_brain.engine.executor.book import (
    baseline_of,
    finish_slot,
    marks_for,
    open_live_book,
    record_fills,
)
from trading_brain.engine.executor.context import (
    ExecutorStore,
    SlotReport,
    SlotSetup,
    TickConfig,
    TickContext,
    TickReport,
)
from trading_brain.engine.executor.place import commit_plan, record_answers, send, write_ahead
from trading_brain.engine.executor.protect import act_protection, ask_protection, plan_protection
from trading_brain.engine.executor.reconcile import (
    reconcile_orders,
    settling_intents,
    without_baseline,
)
from trading_brain.errors import TemporaryError
from trading_brain.ports import Clock, MarketData

__all__ = ["SlotReport", "SlotSetup", "TickConfig", "TickReport", "run_tick"]


def run_tick(store: ExecutorStore, slots: Mapping[str, SlotSetup], market: MarketData,
             clock: Clock, pairs: Mapping[str, AssetPair], limits: RiskLimits,
             config: TickConfig | None = None) -> TickReport:
    """Run one bounded, idempotent executor tick over every slot (sorted by name)."""
    config = config or TickConfig()
    started, now = time.monotonic(), clock.now()
    report = TickReport(now, {})
    with store.session() if config.local_venues else nullcontext():
        for slot in sorted(slots):
            setup = slots[slot]
            ctx = TickContext(store, market, pairs, limits, config, now, slot, setup.exchange,
                              SlotReport(slot), started)
            report.slots[slot] = ctx.rep
            with store.session():
                _load(ctx, setup)
            with ctx.venue_batch():
                _ask_venue(ctx)
            if ctx.capital is None and ctx.opening is None:  # live: no opening balances yet
                continue
            with store.session():
                _reconcile(ctx)
                _plan(ctx)
            with ctx.venue_batch():
                _act(ctx)
            with store.session():
                record_answers(ctx)
                record_fills(ctx)
                finish_slot(ctx)
    report.duration_s = time.monotonic() - started
    return report


# ---- phase 1: load (warehouse) ---------------------------------------------------------------
def _load(ctx: TickContext, setup: SlotSetup) -> None:
    s, capital = ctx.store, setup.starting_capital
    ctx.capital, state, last_fill, ctx.cash = s.executor_header(ctx.slot)
    if setup.venue_capital:  # live: deposit from the venue's balances (phase 2 reads them)
        ctx.baseline = baseline_of(s, ctx.slot)
    elif ctx.capital is None:
        s.ensure_deposit(ctx.slot, capital, ctx.now)
        ctx.capital, state, last_fill, ctx.cash = s.executor_header(ctx.slot)
        ctx.capital = capital
    ctx.state = (state if isinstance(state, RiskState)  # a store holding the object (memory)
                 else RiskState.model_validate_json(state) if state else RiskState())
    ctx.positions = {p.symbol: p for p in s.positions(ctx.slot)}
    ctx.intents = s.pending_intents(ctx.slot, ctx.config.max_orders)
    ctx.rows = {o.client_order_id: o for o in s.executor_orders(
        ctx.slot, [p.position_id for p in ctx.positions.values()] +
        [i.intent_id for i in ctx.intents])}  # open ones, and all a position or intent has
    ctx.open_orders = ctx.open_rows()
    times = [t for t in [last_fill] if t is not None]
    times += [p.entry_time for p in ctx.positions.values()]
    times += [o.created_at for o in ctx.open_orders]
    since = min(times) if times else ctx.now - timedelta(days=1)
    ctx.since = since - ctx.config.fill_lookback  # late venue fills; stored ids are skipped


# ---- phase 2: ask the venue (it is the truth) ------------------------------------------------
def _ask_venue(ctx: TickContext) -> None:
    if ctx.capital is None:  # live slot's first tick: its opening balances are the deposit
        try:
            ctx.opening = ctx.ex.balances()
        except TemporaryError as e:
            ctx.rep.errors.append(f"opening balances: {e}")
            return
    for row in ctx.open_orders:  # protective rows too: the venue is the truth for every row
        try:
            ctx.statuses[row.client_order_id] = ctx.ex.order_by_client_id(row.client_order_id)
        except TemporaryError as e:
            ctx.rep.trouble(f"lookup {row.client_order_id}: {e}")
    ctx.venue_fills = _fetch_fills(ctx)
    ask_protection(ctx)


def _fetch_fills(ctx: TickContext) -> list[Fill]:
    try:
        return ctx.ex.fills_since(ctx.since or ctx.now)
    except TemporaryError as e:
        ctx.rep.trouble(f"fills: {e}")
        return []


# ---- phase 3: reconcile, then plan this tick's orders (warehouse) ----------------------------
def _reconcile(ctx: TickContext) -> None:
    if ctx.opening is not None:
        open_live_book(ctx, ctx.opening)
    settled = settling_intents(ctx.open_orders, ctx.statuses)
    ctx.load_intents([i.intent_id for i in ctx.intents] + settled)  # fresh statuses: one query
    for fix in reconcile_orders(ctx.open_orders, ctx.statuses, ctx.now,
                                ctx.config.unresolved_grace):
        ctx.apply_fix(fix)
    record_fills(ctx)


def _plan(ctx: TickContext) -> None:
    """Protective orders to arm or cancel, and the write-ahead rows of this tick's orders; then
    the phase is written in one transaction (before any venue call)."""
    open_rows = ctx.open_rows()
    exiting = {i.symbol for i in ctx.intents if ctx.guards_exits
               and i.purpose != IntentPurpose.ENTRY
               and ctx.status_of(i.intent_id) == "pending"}  # never arm legs an exit sells
    plan_protection(ctx, open_rows, exiting)
    write_ahead(ctx, open_rows)
    commit_plan(ctx)


# ---- phase 4: act on the venue ---------------------------------------------------------------
def _act(ctx: TickContext) -> None:
    act_protection(ctx)
    send(ctx)
    if ctx.to_cancel or ctx.to_protect or ctx.to_place or ctx.guarded:
        # what was sent may have filled at once (a market order; a stop armed on bars that
        # closed already): fetch the fills again so the ledger and the balances read next
        # describe the same moment (the balance reconcile flags no false mismatch)
        ctx.venue_fills = _fetch_fills(ctx)
    ctx.marks = marks_for(ctx, sorted(ctx.positions))
    ctx.venue_balance = ctx.ex.balances()
    ctx.balance = without_baseline(ctx.venue_balance, ctx.baseline)
