"""Tests of the sim market adapter (trading_brain.adapters.sim)."""
