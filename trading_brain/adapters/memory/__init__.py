"""Simulate's write-behind book: the trading tables in Python objects while ``simulate`` runs.

``book.MemoryBook`` (state and writes) with ``reads`` (its reads), ``index`` (indexes kept on
write), ``rows`` (column rounding, pending writes) and ``flush`` (load from and write to the
warehouse once per simulated day). It implements the storage Protocols of
``trading_brain.ports`` in full, like the DuckDB ``Store``; nothing outside asks which one it has.

Why it exists (issue 10, "keep it only if it earns its place"), measured on 2 shared cores with
``trading-brain --home H simulate --days 30 --seed 7 --start 2026-10-01T00:00:00Z --json`` in a
fresh home (same summary for both: 11,252 ticks, 1,220 trades, 2,440 fills, equity 5,999.02):
- this book: 36.4 s (median of 34.0 / 36.4 / 37.2 s, load average 2.1-3.4); 60.3 s (median of
  59.4 / 60.3 / 111.2 s, load average 7.3-9.8, the machine busy with other work);
- the alternative, the same ``Store`` over an in-memory DuckDB (``ATTACH ':memory:'`` with the
  same migrations) replacing the warehouse's trading tables once per simulated day
  (trading_brain_tests/benchmarks/simulate_store.py; ``.venv/bin/python -m
  trading_brain_tests.benchmarks.simulate_store --home H simulate …`` with the same arguments):
  3,561 s (one run; load average 9.8 falling to 2.8 — three were not affordable). An in-memory
  DuckDB keeps the ~1-3 ms cost of every statement (a tick issues a dozen), which is what the
  book removes: it is 60-100x faster, so it stays.
"""
