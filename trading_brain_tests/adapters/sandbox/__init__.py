"""Tests of the strategy sandbox (gate, OS-locked worker, host)."""
