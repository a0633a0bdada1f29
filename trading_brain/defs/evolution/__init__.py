"""Dagster wiring of the `evolution` group (DESIGN §8): assets, checks, job and schedule.

`evolution_job` selects the whole group, so the promotion assets (``paper_tests`` ->
``deployments`` -> ``promotion_reviews``) run after ``strategy_candidates`` by their deps.
"""

from trading_brain.defs.evolution.assets import (
    evolution_decision,
    market_analysis,
    strategy_candidates,
    trade_performance,
    truth_benchmarks,
)
from trading_brain.defs.evolution.jobs import evolution_job, evolution_schedule
from trading_brain.defs.evolution.promotion import PROMOTION_ASSETS

EVOLUTION_ASSETS = [truth_benchmarks, market_analysis, trade_performance, evolution_decision,
                    strategy_candidates, *PROMOTION_ASSETS]

__all__ = ["EVOLUTION_ASSETS", "evolution_job", "evolution_schedule"]
