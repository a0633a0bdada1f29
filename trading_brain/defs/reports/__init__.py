"""Dagster wiring of the `reports` group (issue 13): ``daily_report`` and ``weekly_report``
(thin assets over ``trading_brain.app.reports``), ``report_job`` and ``report_schedule``."""

from trading_brain.defs.reports.assets import REPORT_ASSETS, daily_report, weekly_report
from trading_brain.defs.reports.jobs import report_job, report_schedule

__all__ = ["REPORT_ASSETS", "daily_report", "report_job", "report_schedule", "weekly_report"]
