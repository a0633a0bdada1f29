"""`simulate`: the live trading loop offline on a simulated clock — ``loop`` (``simulate``, the
steps and checkpoints), ``day`` (the day's candles, indicators and primed strategy), ``plan``
(the stored plan, its window and the summary)."""
