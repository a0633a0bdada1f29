"""`simulate`: the live trading loop offline on a simulated clock — ``loop`` (``simulate``, the
steps and checkpoints), ``setup`` (the home, the derived runtime and the loop state), ``day``
(the day's candles, indicators and primed strategy), ``plan`` (the stored plan, its window and
the summary)."""
