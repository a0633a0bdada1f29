"""`report_job` (the `reports` group) and `report_schedule`: daily, running by default, at
``[reports] schedule_time`` in ``[reports] timezone``.

Each tick asks for ``daily_report`` of the day before the tick's local date (a UTC day), and on
Mondays also ``weekly_report`` of the 7 days ending that day. The time is read from the home's
settings when the definitions load (``TRADING_BRAIN_HOME`` or the working directory); an
unreadable or absent config gives the defaults (07:00 UTC). A changed time applies after a
restart of ``up``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from trading_brain.defs.reports.assets import GROUP, daily_report, weekly_report
from trading_brain.settings import ReportSettings

report_job = dg.define_asset_job(
    "report_job", selection=dg.AssetSelection.groups(GROUP),
    executor_def=dg.in_process_executor, tags={"trading_brain/kind": "report"},
    description="Write (and send) the reports of the `reports` group.")


def report_settings() -> ReportSettings:
    """The home's ``[reports]`` settings, or the defaults when they cannot be read."""
    from trading_brain.errors import TradingBrainError
    from trading_brain.settings import Home, load_settings

    try:
        return load_settings(Home()).reports
    except (TradingBrainError, OSError):
        return ReportSettings()


def cron_of(rs: ReportSettings) -> str:
    hour, minute = rs.schedule_time.split(":")
    return f"{int(minute)} {int(hour)} * * *"


def run_request(local: datetime) -> dg.RunRequest:
    """The run of the tick at local time ``local``: yesterday's daily report, and on Mondays
    the week ending yesterday."""
    day = (local.date() - timedelta(days=1)).isoformat()
    keys = [daily_report.key] + ([weekly_report.key] if local.weekday() == 0 else [])
    ops = {k.to_python_identifier(): {"config": {"date": day}} for k in keys}
    return dg.RunRequest(run_key=f"report-{day}", run_config={"ops": ops},
                         asset_selection=keys, tags={"trading_brain/report_day": day})


def build_schedule(rs: ReportSettings) -> dg.ScheduleDefinition:
    @dg.schedule(name="report_schedule", job=report_job, cron_schedule=cron_of(rs),
                 execution_timezone=rs.timezone,
                 default_status=dg.DefaultScheduleStatus.RUNNING,
                 description=f"Daily at {rs.schedule_time} {rs.timezone}: yesterday's "
                             "daily_report (and weekly_report on Mondays).")
    def report_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        at = context.scheduled_execution_time or datetime.now(UTC)
        return run_request(at.astimezone(ZoneInfo(rs.timezone)))

    return report_schedule


report_schedule = build_schedule(report_settings())
