"""Daily UTC partitions shared by every market asset (all symbols in one partition)."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from trading_brain.adapters.dagster_catalog import MARKET_START

daily = dg.DailyPartitionsDefinition(start_date=MARKET_START, timezone="UTC", end_offset=1)


def day_window(context: dg.AssetExecutionContext) -> tuple[datetime, datetime]:
    """[start, end) of the run's partition as UTC datetimes."""
    w = context.partition_time_window
    return w.start.astimezone(UTC), w.end.astimezone(UTC)


def partition_for(t: datetime) -> str:
    """The partition holding the newest bar closed at ``t`` (a scan at 00:00 finishes yesterday)."""
    return (t.astimezone(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%d")
