"""Hourly trend-pullback family with ATR-based stops (one file per released version, never
edited)."""
