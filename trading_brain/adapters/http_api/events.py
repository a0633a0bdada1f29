"""The event stream (``GET /events``, Server-Sent Events): fills, halts, evolution decisions.

Contract:
- sources: ``fill`` (a new row of ``fills``, ordered by ``recorded_at``), ``halt`` (a
  ``risk_events`` row of a halt, resume, kill-switch or rollback kind, as ``risk_kind``),
  ``decision`` (an ``evolution_cycles`` row once finished) and ``deployment`` (a
  ``deployments_log`` row: deploy, promote, rollback);
- each source keeps a cursor (time, id); a poll reads, in one short read-only connection, the
  rows strictly after it, at most ``BATCH`` per source, oldest first. A stream starts at the
  newest rows (only what happens after connecting), or at ``since`` when given;
- a row recorded with a time before its source's cursor is not sent (the writers stamp rows
  with their clock as they write, so this only affects back-dated rows);
- the SSE ``id`` of an event is ``kind|time|row id``; a reconnecting client's
  ``Last-Event-ID`` resumes after it (``EventPoller.resuming``); a comment line is sent as a
  heartbeat when nothing else went out for ``heartbeat_s``; a poll that meets the writer's
  lock is skipped (the next one reads what it missed); the generator ends when the client
  disconnects.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from trading_brain.adapters.http_api.reads import Warehouse
from trading_brain.adapters.http_api.warehouse import Row, Statement, json_value
from trading_brain.errors import WarehouseLocked

log = logging.getLogger("trading_brain.api")
BATCH = 200
HALT_KINDS = ("halt", "halt_cleared", "resume", "kill_switch", "rollback_trigger",
              "rollback_cleared")


@dataclass(frozen=True)
class Source:
    table_sql: str  # columns: at (TIMESTAMPTZ), id (VARCHAR), then the payload


_KINDS = ", ".join(f"'{k}'" for k in HALT_KINDS)
SOURCES: dict[str, Source] = {
    "fill": Source("""SELECT recorded_at AS ev_at, fill_id AS ev_id, client_order_id, symbol, side,
        qty, price, fee, fee_currency, ts FROM fills"""),
    "halt": Source(f"""SELECT ts AS ev_at, event_id AS ev_id, kind AS risk_kind, symbol, reason,
        details FROM risk_events WHERE kind IN ({_KINDS})"""),
    "decision": Source("""SELECT finished_at AS ev_at, cycle_id AS ev_id, night, status, advisor,
        decision, error FROM evolution_cycles WHERE finished_at IS NOT NULL"""),
    "deployment": Source("""SELECT logged_at AS ev_at, lpad(seq::VARCHAR, 12, '0') AS ev_id,
        strategy_id, version, action, reason FROM deployments_log"""),
}


def _after(src: Source) -> str:
    return (f"SELECT * FROM ({src.table_sql}) s WHERE ev_at > ?::TIMESTAMPTZ OR "
            f"(ev_at = ?::TIMESTAMPTZ AND ev_id > ?) ORDER BY ev_at, ev_id LIMIT {BATCH}")


def _newest(src: Source) -> str:
    return (f"SELECT ev_at, ev_id FROM ({src.table_sql}) s "
            "ORDER BY ev_at DESC, ev_id DESC LIMIT 1")


@dataclass(frozen=True)
class Event:
    kind: str
    id: str
    data: Row

    def sse(self) -> str:
        payload = json.dumps({"kind": self.kind, **self.data}, default=str)
        return f"id: {self.id}\nevent: {self.kind}\ndata: {payload}\n\n"


class EventPoller:
    """Cursors over ``SOURCES``; ``poll`` returns the events after them and moves them on."""

    EPOCH = "1970-01-01T00:00:00Z"

    def __init__(self, wh: Warehouse, since: datetime | None = None) -> None:
        self.wh = wh
        self.cursors: dict[str, tuple[str, str]] = {}
        if since is not None:
            start = str(json_value(since))
            self.cursors = {k: (start, "") for k in SOURCES}

    @classmethod
    def resuming(cls, wh: Warehouse, last_event_id: str) -> EventPoller:
        """Resume after the event ``last_event_id`` (``kind|time|id``, what an EventSource
        sends as ``Last-Event-ID`` when it reconnects): that source continues after it, the
        others from its time on (an event of another source at that very time may come
        twice: at least once, never lost). ``ValueError`` when the id is malformed."""
        kind, at, rid = last_event_id.split("|", 2)
        if kind not in SOURCES:
            raise ValueError(f"unknown event kind {kind!r}")
        when = datetime.fromisoformat(at)
        poller = cls(wh, when)
        poller.cursors[kind] = (str(json_value(when)), rid)
        return poller

    def start(self) -> None:
        """Set the cursors at the newest rows (unless ``since`` set them)."""
        if self.cursors:
            return
        newest = self.wh.batch([(_newest(s), ()) for s in SOURCES.values()], cached=False)
        for kind, rows in zip(SOURCES, newest, strict=True):
            self.cursors[kind] = ((str(rows[0]["ev_at"]), str(rows[0]["ev_id"])) if rows
                                  else (self.EPOCH, ""))

    def poll(self) -> list[Event]:
        stmts: list[Statement] = [(_after(s), [*self.cursors[k][:1], *self.cursors[k]])
                                  for k, s in SOURCES.items()]
        out: list[Event] = []
        for kind, rows in zip(SOURCES, self.wh.batch(stmts, cached=False), strict=True):
            for r in rows:
                at, rid = str(r.pop("ev_at")), str(r.pop("ev_id"))
                out.append(Event(kind, f"{kind}|{at}|{rid}", {"at": at, "id": rid, **r}))
                self.cursors[kind] = (at, rid)
        return out


async def stream(poller: EventPoller, is_disconnected: Callable[[], Awaitable[bool]], *,
                 poll_s: float, heartbeat_s: float) -> AsyncIterator[str]:
    """The SSE text of ``poller``'s events until the client goes away."""
    yield ": connected\n\n"
    quiet_since = time.monotonic()
    while not await is_disconnected():
        try:
            events = await asyncio.to_thread(poller.poll)
        except WarehouseLocked:
            events = []  # the writer held the file for the whole budget: try next time
        except Exception as e:  # anything else ends the stream with one error event
            log.exception("event stream failed")
            yield f"event: error\ndata: {json.dumps({'error': str(e)[:200]})}\n\n"
            return
        for e in events:
            yield e.sse()
        if events:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= heartbeat_s:
            yield f": heartbeat {time.time():.0f}\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(poll_s)
