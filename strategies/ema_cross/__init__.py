"""EMA crossover family: the reference strategy (one file per released version, never edited)."""
