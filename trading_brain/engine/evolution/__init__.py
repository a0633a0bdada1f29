"""The pure core of the nightly evolution loop (DESIGN §8): statistics, decisions, gates.

No I/O, no clock, no Dagster, no DuckDB: every function takes its inputs (``now`` included) and
returns values. The cycle (``app/evolve``), the wiring (``defs/evolution``) and the storage are
built on top of these modules:

- ``returns``: daily returns, Sharpe and Sortino with the √365 convention;
- ``overfit``: probabilistic and deflated Sharpe ratio (Bailey & López de Prado 2014);
- ``cscv``: probability of backtest over-fitting by CSCV (Bailey, Borwein, López de Prado, Zhu);
- ``decision``: the advisor's decision schema and ``parse_decision`` (rejections raise
  ``errors.AdvisorOutputRejected``); ``decision_fields``: its field types, limits and the closed
  set of prediction ``METRICS`` with the units the truth benchmarks must use;
- ``predictions``: grading of falsifiable predictions against benchmark readings;
- ``gates``: the over-fitting and paper-test gate verdicts as ``GateResult`` rows.
- ``candidate``: tier-1 candidates by AST transform of the parent's ``Params`` defaults;
- ``search``: the declared search space and its deterministic Halton sample of parameter sets;
- ``evidence``: sweep runs (hourly marks), the walk-forward split and the exact-engine
  confirmation (gate 2); ``guard``: the over-fitting guard over a sweep (gate 3);
- ``context``: what an advisor is given each night; ``offline``: the deterministic advisor.

Units to keep straight across the boundary: ``overfit`` and ``cscv`` work on PER-PERIOD Sharpe
ratios; ``returns`` and the ``sharpe``/``sortino`` prediction metrics are annualised with √365.
"""
