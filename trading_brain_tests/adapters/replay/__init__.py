"""Tests of the replay market adapter and candle file readers."""
