"""One executor tick: reconcile, take pending intents, place, record fills, ledger, risk, snapshot.

Contract (DESIGN §6.2; the ``executor_sensor`` calls ``run_tick`` and turns the report into asset
events). Pure over ports: the warehouse (``ExecutorStore``), one ``Exchange`` per slot (active
and shadow slots each have their own cash pool and risk state), a ``MarketData`` for marks and
a ``Clock``. Per slot, in order:
1. deposit the starting capital once; load the risk state. Live mode
   (``SlotSetup.venue_capital``): the first tick deposits the venue's USD balance instead and
   records the coins held then as a baseline (engine/executor_live.py);
2. reconcile orders: every open order row (protective ones too, ``submitting`` included) is
   looked up by client order id (the venue is the truth) and corrected
   (``protective.correction``: state, venue id, filled quantity, price, fee); ``submitting``/``unresolved`` rows the venue does not know become
   ``unresolved`` and, after ``unresolved_grace``, ``rejected`` (``not_at_venue``) — never resent;
3. record fills (``fills_since`` a watermark: the oldest open order/position or the newest
   stored fill, minus ``fill_lookback``; stored fill ids are skipped): each
   fill writes the fill, its cash entries and the position in one transaction; a closed
   position feeds ``update_state_on_close``;
4. protect (engine/executor_protect.py over the pure engine/protective.py): a filled entry
   with stop-loss/take-profit fractions gets levels fixed from its average fill price
   (``fills.stop_levels``) and ONE exchange-native stop-loss (row written ahead, then
   ``reconcile_protective``; the row takes the venue's id, state and trigger price, also after
   a partial failure). The take-profit is an exit done by the executor on a venue that holds
   the stop: a bar (or the last price) reaching the level -> cancel the stop, confirm, market
   sell (purpose ``take_profit``); the paper venue models it at the level (the fill model). A
   leg refused for funds is a risk event and an alert and is retried only when its
   fingerprint changed. Stops of closed positions are cancelled (confirmed by a lookup);
5. intents (``store.intents("pending", slot)``, at most ``max_orders``): entries are refused
   while halted or already holding the symbol, exits always pass (and sell the whole position;
   purpose ``kill`` when the intent is ``trading-brain kill``'s, else ``exit``; the position's
   ``exit_reason`` follows). On a real venue an exit of a position with open protective orders
   first cancels them and confirms the cancels, and is sent only if none filled
   (``executor_live.clear_for_exits``); write-ahead ``submitting`` row, intent ``submitted``,
   then ``place_order``. ``OrderRejected`` ->
   order and intent rejected with the reason; ``AmbiguousOrderError``/``TemporaryError`` ->
   ``unresolved`` and a warning (settled by step 2 on a later tick). Other exceptions propagate (a crash):
   the next tick finds the order by its client id, so an intent is never sent twice;
6. mark positions (ticker last), update max adverse excursion, ``update_state_on_equity``,
   snapshot, risk events, the invariant and the balance reconcile against the venue (minus the
   live baseline). When the tick sent, armed or cancelled anything, the fills are fetched
   again right before the balances are read, so an order that filled at once is in both and
   no false mismatch is flagged.
Given the same clock readings and market, a tick is deterministic.

I/O shape (a connection costs ~25 ms, a statement ~0.3-3 ms): each slot runs three warehouse
phases, each inside one ``store.session()`` (load; apply answers + write-ahead; record +
snapshot), with the venue calls between them outside any session — except with
``TickConfig.local_venues`` (paper venue over a local sim/replay market: no network), where the
venue phases share the session too. The load reads the slot in four queries (header: capital,
risk state, cash, newest fill; positions; pending intents; their orders and the open ones) and
the tick keeps it in memory (``TickContext``: no order is re-read); phases 3 and 5 each write in
ONE transaction (``store.atomic()``, skipped when there is nothing to write) with one set-based
statement per table, so the write-ahead ``submitting`` rows of all the tick's orders are
durable before the venue is called for any of them, and fills, positions and cash entries are
stored together. A venue with ``deferred_saves()`` (paper) writes its book once per venue phase.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta

from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.orders import (
    Fill,
    OrderRequest,
    derive_client_order_id,
)
from trading_brain.domain.records import OrderRow
from trading_brain.domain.risk import RiskLimits, RiskState
from trading_brain.engine.executor.book import (
    finish_slot,
    marks_for,
    record_fills,
)
from trading_brain.engine.executor.context import (
    EXITS,
    ORDER_PURPOSES,
    PROTECTIVE,
    ExecutorStore,
    SlotReport,
    SlotSetup,
    TickConfig,
    TickContext,
    TickReport,
)
from trading_brain.engine.executor.live import (
    baseline_of,
    clear_for_exits,
    guards_exits,
    open_live_book,
    without_baseline,
)
from trading_brain.engine.executor.protect import (
    act_protection,
    ask_protection,
    plan_protection,
    read_fingerprints,
    warn,
)
from trading_brain.engine.executor.protective import FUNDS
from trading_brain.engine.executor.record import (
    apply_status,
    finish_intent,
    record_answers,
    refuse,
    unknown_at_venue,
)
from trading_brain.errors import AmbiguousOrderError, OrderRejected, TemporaryError
from trading_brain.ports import Clock, MarketData


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
            with store.session():
                _load(ctx, setup)
            with _venue_batch(ctx.ex):
                _ask_venue(ctx)
            if ctx.capital is None and ctx.opening is None:  # live: no opening balances yet
                report.slots[slot] = ctx.rep
                continue
            with store.session():
                _apply_answers(ctx)
                _plan(ctx)
            with _venue_batch(ctx.ex):
                _act(ctx)
            with store.session():
                record_answers(ctx)
                record_fills(ctx)
                finish_slot(ctx)
            report.slots[slot] = ctx.rep
    report.duration_s = time.monotonic() - started
    return report


def _venue_batch(ex: object) -> AbstractContextManager[object]:
    """The venue's ``deferred_saves()`` block when it has one (paper: one book write per phase)."""
    defer = getattr(ex, "deferred_saves", None)
    return defer() if callable(defer) else nullcontext()


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
            trouble(ctx, f"lookup {row.client_order_id}: {e}")
    ctx.venue_fills = _fetch_fills(ctx)
    ask_protection(ctx)


def _fetch_fills(ctx: TickContext) -> list[Fill]:
    try:
        return ctx.ex.fills_since(ctx.since or ctx.now)
    except TemporaryError as e:
        trouble(ctx, f"fills: {e}")
        return []


def trouble(ctx: TickContext, text: str) -> None:
    """A transient venue failure: an error of the tick and a warning (log and asset events)."""
    ctx.rep.errors.append(text)
    warn(ctx, text)


# ---- phase 3: apply answers, plan protection and orders (warehouse) --------------------------
def _apply_answers(ctx: TickContext) -> None:
    if ctx.opening is not None:
        open_live_book(ctx, ctx.opening)
    settled = [o.intent_id for o in ctx.open_orders if o.intent_id and o.purpose in
               ORDER_PURPOSES and o.client_order_id in ctx.statuses and (
        ctx.statuses[o.client_order_id] is None or ctx.statuses[o.client_order_id].is_terminal)]
    ctx.load_intents([i.intent_id for i in ctx.intents] + settled)  # fresh statuses: one query
    for row in ctx.open_orders:
        if row.client_order_id not in ctx.statuses:
            continue
        st = ctx.statuses[row.client_order_id]
        if st is None:
            unknown_at_venue(ctx, row)
        else:
            apply_status(ctx, row, st)
    record_fills(ctx)


def _plan(ctx: TickContext) -> None:
    """Protective orders to arm or cancel, and the write-ahead rows of this tick's orders; then
    the phase is written in one transaction (before any venue call)."""
    open_rows = ctx.open_rows()
    exiting = {i.symbol for i in ctx.intents if guards_exits(ctx) and i.action == "exit"
               and ctx.status_of(i.intent_id) == "pending"}  # never arm legs an exit sells
    plan_protection(ctx, open_rows, exiting)
    _write_ahead(ctx, open_rows)
    inserted: set[str] = set()
    if ctx.w:  # nothing to write: no transaction (a COMMIT costs more than a statement)
        with ctx.store.atomic():
            inserted = ctx.flush()
    lost = {r.client_order_id for _, r in ctx.to_place} - inserted
    if lost:  # written meanwhile by another tick: never send, take the stored row's outcome
        ctx.to_place = [p for p in ctx.to_place if p[1].client_order_id not in lost]
        for row in ctx.store.orders_by_cids(sorted(lost)):
            ctx.rows[row.client_order_id] = row
            if not row.is_open:
                finish_intent(ctx, row.intent_id, "done" if row.filled_qty > 0 else "rejected",
                               row.reason or row.state)
        with ctx.store.atomic():
            ctx.flush()


def _write_ahead(ctx: TickContext, rows: list[OrderRow]) -> None:
    """Write-ahead rows of this tick's intents. An exit of a position with open protective
    orders is ``guarded`` instead: its intent stays pending and ``_act`` cancels the legs,
    confirms the cancels and only then writes the exit ahead and sends it."""
    selling = {o.symbol for o in rows if o.purpose in EXITS and o.is_open}
    buying = {o.symbol for o in rows if o.purpose == "entry" and o.is_open}
    ordered = {o.intent_id for o in rows}
    for intent in ctx.intents:
        if intent.intent_id in ordered:  # a crashed tick wrote its order: settle, never resend
            ctx.set_status(intent.intent_id, "submitted")
            continue
        if ctx.status_of(intent.intent_id) != "pending":
            continue  # settled above
        pos = ctx.positions.get(intent.symbol)
        if intent.action == "enter":
            refusal = ("halted" if ctx.state.halted else
                       "duplicate_position" if pos is not None else
                       "duplicate_pending" if intent.symbol in buying else None)
            qty, side, purpose = intent.quantity, "buy", "entry"
        else:
            refusal = ("no_position" if pos is None else
                       "duplicate_pending" if intent.symbol in selling else None)
            qty, side = (pos.quantity if pos else intent.quantity), "sell"
            purpose = "kill" if intent.strategy_id == "kill" else "exit"
        if refusal:
            refuse(ctx, intent, refusal, "cancelled" if refusal == "halted" else "rejected")
            continue
        cid = derive_client_order_id(intent.intent_id)
        row = ctx.rows.get(cid)  # every order of a pending intent was loaded
        new = OrderRow(cid, intent.intent_id, ctx.slot, ctx.ex.name, intent.symbol, side,
                       "market", purpose, qty, "submitting", ctx.now, ctx.now,
                       limit_price=intent.limit_price)
        legs = [o.client_order_id for o in rows if pos is not None and side == "sell"
                and o.intent_id == pos.position_id and o.purpose in PROTECTIVE
                and guards_exits(ctx)]
        if legs and row is None:
            ctx.guarded.append((intent, new, legs))
            selling.add(intent.symbol)
            continue
        ctx.insert_order(new)
        ctx.set_status(intent.intent_id, "submitted")
        if row is not None:  # written by an earlier tick and already closed: take its outcome
            if not row.is_open:
                finish_intent(ctx, intent.intent_id, "done" if row.filled_qty > 0 else
                               "rejected", row.reason or row.state)
        else:
            ctx.to_place.append((intent, OrderRequest(client_order_id=cid, symbol=intent.symbol,
                                                      side=side, type="market", quantity=qty)))
        (selling if side == "sell" else buying).add(intent.symbol)


# ---- phase 4: act on the venue ---------------------------------------------------------------
def _act(ctx: TickContext) -> None:
    act_protection(ctx)
    if ctx.guarded:
        clear_for_exits(ctx)
    for intent, req in ctx.to_place:
        if time.monotonic() - ctx.started > ctx.config.budget_s:
            ctx.answers.append((intent, req.client_order_id, AmbiguousOrderError("not sent")))
            continue
        try:
            ctx.answers.append((intent, req.client_order_id, ctx.ex.place_order(req)))
        except (OrderRejected, AmbiguousOrderError, TemporaryError) as e:
            ctx.answers.append((intent, req.client_order_id, e))
        if ctx.answers and isinstance(ctx.answers[-1][2], OrderRejected) and getattr(
                ctx.answers[-1][2], "reason", None) == FUNDS and intent is None:
            read_fingerprints(ctx, [req.symbol])  # the state a retry must see changed
    if ctx.to_cancel or ctx.to_protect or ctx.to_place or ctx.guarded:
        # what was sent may have filled at once (a market order; a stop armed on bars that
        # closed already): fetch the fills again so the ledger and the balances read next
        # describe the same moment (the balance reconcile flags no false mismatch)
        ctx.venue_fills = _fetch_fills(ctx)
    ctx.marks = marks_for(ctx, sorted(ctx.positions))
    ctx.venue_balance = ctx.ex.balances()
    ctx.balance = without_baseline(ctx.venue_balance, ctx.baseline)
