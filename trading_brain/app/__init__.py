"""Use cases: each composes the ports of a ``runtime.Runtime`` (store, market, clock, workers,
notifier, exchanges) into one thing the system does, for the CLI (``commands/``) and the
Dagster definitions (``defs/``) alike. No click, no Dagster; app imports no defs or commands.

- ``runtime``: the composition root (``build_runtime``; a frozen dataclass of ports);
- ``scan`` / ``scan_inputs``: one scan (signals -> risk -> order intents);
- ``execute``: one executor tick (venues, fee tier, ``run_tick``, alerts);
- ``backup``, ``notify``, ``serve``: snapshots/restore, alert delivery, `up`;
- ``research/``: register, backtest, optimize strategy versions;
- ``simulate/``: the live loop offline on a simulated clock;
- ``home/``: init, status, halt/resume/kill, history backfill of one home.
"""
