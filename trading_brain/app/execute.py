"""The executor's use case: one bounded tick over a runtime (what ``executor_sensor`` runs every
~15 s; DESIGN §6.2). No Dagster import.

``execute_once(rt)``:
1. bound the warehouse lock wait (``LOCK_BUDGET_S``: a locked warehouse raises
   ``TemporaryError`` quickly instead of blocking past the sensor's timeout);
2. build the slots' venues (``runtime.executor_slots``: ``active`` on the venue the settings
   name, shadow slots on paper while they have business);
3. refresh the account's fee tier (Kraken: at start, then daily; ``engine.venue_fees``); a
   failure keeps the stored fees and is returned as ``fee_error``; changed fees are read back
   so this tick already trades on them;
4. run ``engine.executor.tick.run_tick`` (reconcile, execute the pending intents, record
   fills/positions/ledger, snapshot) within ``TICK_BUDGET_S``;
5. act on a pending rollback trigger of the active slot (``app.promotion.auto_rollback``:
   revert the deployment, record why, clear the trigger, alert ``rollback``). Here because the
   triggers fire in the ticks (losing closes) and the scans (daily drop), and this runs every
   ~15 s: the revert follows the trigger within one sensor interval.
It returns an ``ExecuteOutcome`` (the tick's report, the fee error and the rollback done, if
any); ``TemporaryError``
(warehouse busy, venue briefly unavailable) propagates: the caller skips this tick.
``deliver_alerts(rt, alerts, notifier)`` records and logs the tick's alerts once per key
(``app.alerts.emit``: trades opened/closed, orders rejected, halts, kill switch, halts cleared,
refused protective legs; the alert sensor sends them to Telegram/webhook); it never raises: a
failure (a warehouse too busy to record them) is a returned warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trading_brain.app.alerts import emit
from trading_brain.app.notify import Alert
from trading_brain.app.promotion import auto_rollback
from trading_brain.app.runtime import Runtime, executor_slots
from trading_brain.engine.executor.context import TickReport
from trading_brain.engine.executor.tick import TickConfig, run_tick
from trading_brain.engine.venue_fees import refresh_venue_fees
from trading_brain.ports import Notifier

LOCK_BUDGET_S = 5.0
TICK_BUDGET_S = 20.0


@dataclass(frozen=True)
class ExecuteOutcome:
    """One tick: its report and why the venue fee tier was not refreshed (None: it was)."""

    report: TickReport
    fee_error: str | None = None
    rollback: str | None = None


def execute_once(rt: Runtime) -> ExecuteOutcome:
    """One bounded executor tick (see the module docstring)."""
    rt.store.lock_budget_s = LOCK_BUDGET_S
    pairs = rt.store.read_asset_pairs()
    slots = executor_slots(rt, pairs)
    fees = refresh_venue_fees(rt.store, slots["active"].exchange, rt.market.name,
                              rt.settings.symbols, rt.clock.now(),
                              live=rt.settings.execution == "kraken")  # at start, then daily
    if fees.changed:  # this tick already trades on the account's new rates
        pairs = rt.store.read_asset_pairs()
    report = run_tick(rt.store, slots, rt.market, rt.clock, pairs, rt.risk_limits,
                      TickConfig(budget_s=TICK_BUDGET_S, local_venues=rt.market_is_local))
    rollback = auto_rollback(rt, rt.clock.now())
    return ExecuteOutcome(report, fees.error, rollback)


def deliver_alerts(rt: Runtime, alerts: Sequence[Alert], notifier: Notifier) -> str | None:
    """The tick's alerts through ``notifier``, once per key (the notifications table),
    whatever the sensor's cursor; never raises (``app.alerts.emit``): returns a warning when
    they could not be recorded."""
    if not alerts:
        return None
    return emit(rt.store, notifier, alerts, rt.clock.now())
