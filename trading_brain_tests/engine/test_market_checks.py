"""Pure check evaluations behind the market asset checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from trading_brain.engine import market_checks as mc

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _ts(*minutes: int) -> list[datetime]:
    return [T0 + timedelta(minutes=m) for m in minutes]


def test_freshness_passes_within_and_fails_beyond_15_minutes():
    now = T0 + timedelta(minutes=30)
    fresh = {"BTC/USD": now - timedelta(minutes=5 + 14), "ETH/USD": now - timedelta(minutes=10)}
    assert mc.freshness(fresh, ["BTC/USD", "ETH/USD"], now, live=True).passed
    stale = {**fresh, "ETH/USD": now - timedelta(minutes=5 + 16)}  # closed 16 minutes ago
    out = mc.freshness(stale, ["BTC/USD", "ETH/USD"], now, live=True)
    assert not out.passed and "ETH/USD" in out.description and "BTC/USD" not in out.description
    missing = mc.freshness(fresh, ["BTC/USD", "ETH/USD", "SOL/USD"], now, live=True)
    assert not missing.passed and "SOL/USD" in missing.description


def test_freshness_not_enforced_when_not_live():
    out = mc.freshness({}, ["BTC/USD"], T0, live=False)
    assert out.passed and "not enforced" in out.description


def test_gaps_tolerate_venue_omissions_only():
    stored = pl.DataFrame({"symbol": ["BTC/USD"] * 4, "ts": _ts(0, 5, 15, 25)})
    omitted = pl.DataFrame({"symbol": ["BTC/USD"], "ts": _ts(10)})
    out = mc.gaps(stored, omitted, "5m", T0, T0 + timedelta(days=1))
    assert not out.passed
    assert out.metadata["missing_bars"] == 1  # 20 is lost; 10 was omitted by the venue
    assert (T0 + timedelta(minutes=20)).isoformat() in out.description
    omitted_both = pl.concat([omitted, pl.DataFrame({"symbol": ["BTC/USD"], "ts": _ts(20)})])
    assert mc.gaps(stored, omitted_both, "5m", T0, T0 + timedelta(days=1)).passed


def test_validity_and_duplicates_from_audit():
    ok = {"rows": 10, "invalid": 0, "duplicates": 0, "quarantined": 2}
    valid = mc.validity(ok, "5m")
    assert valid.passed and "2 row(s) quarantined" in valid.description
    assert not mc.validity({**ok, "invalid": 1}, "5m").passed
    assert mc.duplicates(ok, "1h").passed
    assert not mc.duplicates({**ok, "duplicates": 3}, "1h").passed


def test_finite_indicators():
    good = pl.DataFrame({"rsi_14": [None, 50.0], "regime": ["range", "range"]})
    assert mc.finite_indicators(good).passed
    bad = pl.DataFrame({"rsi_14": [float("nan"), 50.0], "atr_14": [1.0, float("inf")]})
    out = mc.finite_indicators(bad)
    assert not out.passed and out.metadata["non_finite"] == 2


def test_quarantine_is_reported():
    assert mc.quarantine({"quarantined": 0}, "5m").passed
    out = mc.quarantine({"quarantined": 4}, "5m")
    assert not out.passed and "4 5m row(s) quarantined" in out.description
