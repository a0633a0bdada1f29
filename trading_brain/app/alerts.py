"""Emitting the alerts of what the system did (issue 13): the callers' one entry point.

Contract:
- ``emit(store, notifier, alerts, now)`` records each alert once in ``notifications`` (keyed by
  ``Alert.key``, ``app.notify.deliver``) and logs it through ``notifier``; the remote channels
  (Telegram, webhook) get it from that outbox at the alert sensor's next delivery (every
  minute), routed per event type. It NEVER raises: a busy warehouse or any other failure is
  logged and returned as a one-line warning (None: all recorded) — a notification never breaks
  trading, a halt, a kill or a promotion. Keys recorded by this process are remembered
  (``_SEEN``, bounded) so an alert repeated every tick (a standing halt) costs no warehouse
  round trip after the first.
- Sources: the executor tick (``engine.executor.alerts``: trades opened/closed, orders
  rejected, halts, kill switch, halts cleared), ``app.home.control`` (human halt, resume,
  kill), ``app.promotion`` (rollback, promotion, cancel) and the nightly cycle
  (``cycle_alerts``: the summary, the candidate created or cancelled).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from trading_brain.adapters.duckdb import notify_tables as nt
from trading_brain.app.notify import deliver
from trading_brain.domain.alerts import Alert
from trading_brain.ports import Notifier

if TYPE_CHECKING:
    from trading_brain.app.evolve.cycle import CycleResult
    from trading_brain.app.runtime import Runtime

log = logging.getLogger("trading_brain.alerts")
_SEEN: dict[str, None] = {}  # notification ids this process recorded (insertion ordered)
_SEEN_MAX = 4096


def emit(store: nt._Warehouse, notifier: Notifier, alerts: Sequence[Alert], now: datetime
         ) -> str | None:
    """Record and log ``alerts`` once per key; never raises (module docstring)."""
    key = str(store.path)
    fresh = [a for a in alerts if f"{key}|{a.notification_id}" not in _SEEN]
    if not fresh:
        return None
    try:
        _, unrecorded = deliver(fresh, [notifier], store, now)
    except Exception as e:  # noqa: BLE001 - an alert never breaks its caller
        log.exception("alerts not recorded")
        return f"alerts not recorded: {type(e).__name__}: {e}"
    if unrecorded:
        return f"{unrecorded} alert(s) not recorded (warehouse busy); logged only"
    for a in fresh:
        _SEEN[f"{key}|{a.notification_id}"] = None
    while len(_SEEN) > _SEEN_MAX:
        del _SEEN[next(iter(_SEEN))]
    return None


def notify_cycle(rt: Runtime, res: CycleResult, now: datetime | None = None) -> CycleResult:
    """Emit the alerts of a finished cycle (``done``/``rejected``; a cycle stopped after its
    decision is ``running``: nothing yet); returns ``res`` unchanged. Never raises."""
    if res.status in ("done", "rejected"):
        try:
            alerts = cycle_alerts(res.as_json())
        except Exception:  # noqa: BLE001 - an alert never breaks its caller
            log.exception("evolution cycle alerts not built")
            return res
        emit(rt.store, rt.notifier, alerts, now or rt.clock.now())
    return res


def cycle_alerts(cycle: Mapping[str, Any]) -> list[Alert]:
    """The nightly cycle's alerts from its result (``CycleResult.as_json()``): the summary
    (``evolution_cycle:<cycle_id>``), and the candidate it created (``candidate:<ref>``) or
    cancelled (``cancel:<ref>``, the key ``app.promotion.cancel`` uses)."""
    cid, status = str(cycle.get("cycle_id")), str(cycle.get("status"))
    decision = cycle.get("decision") or {}
    action = str(decision.get("action") or "none")
    cand, outcome = cycle.get("candidate"), str(cycle.get("outcome") or "")
    gates = cycle.get("gates") or []
    failed = [str(g.get("gate")) for g in gates if g.get("status") == "fail"]
    text = (f"evolution cycle {cid}: {status}; decision {action}"
            + (f"; candidate {cand}" if cand else "") + (f"; {outcome}" if outcome else "")
            + (f"; failed gates: {', '.join(failed)}" if failed else "")
            + (f"; error: {cycle['error']}" if cycle.get("error") else ""))
    level = "WARN" if status == "rejected" or cycle.get("error") else "INFO"
    out = [Alert(f"evolution_cycle:{cid}", level, "evolution_cycle", cid, text)]
    if action == "create_candidate" and cand and outcome.startswith("candidate"):
        out.append(Alert(f"candidate:{cand}", "INFO", "candidate_created", str(cand),
                         f"new candidate {cand}: {str(decision.get('reasoning') or '')[:300]}"
                         f" ({outcome})"))
    if action == "cancel_candidate" and cand and outcome == "cancelled":
        out.append(Alert(f"cancel:{cand}", "INFO", "candidate_cancelled", str(cand),
                         f"{cand} cancelled by the nightly cycle: "
                         f"{str(decision.get('reasoning') or '')[:300]}"))
    return out
