"""Retention of old candles (DESIGN §4): 5m kept ≥ 90 days, 1h ≥ 3 years, 1d forever.

``apply_retention`` runs at most once per UTC day (the marker lives in ``system_meta``) and
deletes only bars opened before ``now - retention``; it never touches 1d candles.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

MARKER = "retention_last_day"


class RetentionStore(Protocol):
    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def delete_candles_before(self, timeframe: str, cutoff: datetime) -> int: ...


def apply_retention(store: RetentionStore, now: datetime, days_5m: int, days_1h: int
                    ) -> dict[str, int]:
    """Delete expired 5m/1h candles once per day; return rows removed per timeframe."""
    today = now.strftime("%Y-%m-%d")
    if store.get_meta(MARKER) == today:
        return {}
    removed = {
        "5m": store.delete_candles_before("5m", now - timedelta(days=days_5m)),
        "1h": store.delete_candles_before("1h", now - timedelta(days=days_1h)),
    }
    store.set_meta(MARKER, today)
    return removed
