"""The report use cases: what the CLI, the Dagster assets and ``simulate`` call.

Contract:
- reports go to ``<home>/var/reports/`` (``reports_dir``);
- ``report(home, store, kind, day, now)``: ``kind`` ``daily`` (the UTC day) or ``weekly`` (the
  7 days ending with ``day``); ``day=None`` means the newest day holding data
  (``latest_day``: the day of the newest snapshot, a snapshot at midnight closing the day
  before); a home without any snapshot raises ``DataError``; see ``build.write_report``;
- ``simulation_report(home, store, start, end, now)``: the simulated window from ``start`` to
  ``end`` (the last step's bar close) and that step's ticks (until ``end + 5m``): its last
  snapshot is the simulation's final equity;
- ``send_report(report, home, settings, store, now, logger=None)``: one ``daily_report``
  notification (log, plus the channels ``[notify]`` routes it to), once per report name;
  returns whether it was handed over; it never raises (a notification never fails a report).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from pathlib import Path

from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.duckdb import report_reads as reads
from trading_brain.adapters.notify.log import Logger
from trading_brain.app.reports import period as periods
from trading_brain.app.reports.build import Report, write_report
from trading_brain.errors import ConfigError, DataError
from trading_brain.settings import Home, Secrets, Settings

log = logging.getLogger("trading_brain.reports")
KINDS = ("daily", "weekly")
STEP = timedelta(minutes=5)


def reports_dir(home: Home) -> Path:
    return home.var / "reports"


def latest_day(store: Store, slot: str = "active") -> date | None:
    span = reads.data_span(store, slot)
    return None if span is None else (span[1] - timedelta(microseconds=1)).date()


def report(home: Home, store: Store, kind: str, day: date | None, now: datetime) -> Report:
    if kind not in KINDS:
        raise ConfigError(f"report kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if day is None:
        day = latest_day(store)
        if day is None:
            raise DataError("no trading data in this home yet (run `trading-brain simulate` "
                            "or `trading-brain up` first)")
    p = periods.day(day) if kind == "daily" else periods.week(day)
    return write_report(store, p, reports_dir(home), now=now)


def simulation_report(home: Home, store: Store, start: datetime, end: datetime,
                      now: datetime) -> Report:
    label = periods.span(start, end).label
    p = periods.span(start, end + STEP, "simulation")  # the last step's ticks (T, T+1m)
    return write_report(store, periods.Period(p.kind, p.start, p.end, label),
                        reports_dir(home), now=now)


def send_report(rep: Report, home: Home, settings: Settings, store: Store, now: datetime,
                logger: Logger | None = None) -> bool:
    """Hand the report's summary to the notifier (see the module contract); never raises."""
    try:
        from trading_brain.app.notify import Alert, build_channels, deliver

        alert = Alert(f"report:{rep.period.name}", "INFO", "daily_report", rep.period.name,
                      rep.summary)
        channels = build_channels(settings, Secrets.load(home.root), logger)
        deliver([alert], channels, store, now, config=settings.notify)
        return True
    except Exception as e:  # noqa: BLE001 - a notification never fails a report
        log.debug("report notification failed", exc_info=True)
        (logger or log).warning(f"report {rep.period.name}: notification failed: {e!r}")
        return False
