"""`evolution_job` (the whole `evolution` group) and `evolution_schedule`: nightly, running by
default, at ``[evolution] schedule_time`` in ``[evolution] timezone``.

The time is read from the home's settings when the definitions load (``TRADING_BRAIN_HOME`` or
the working directory, as ``trading-brain up`` runs them); an unreadable or absent config gives
the defaults (02:30 UTC). A changed time applies after a restart of ``up``.
"""

from __future__ import annotations

import dagster as dg

from trading_brain.defs.evolution.assets import GROUP
from trading_brain.settings import EvolutionSettings

evolution_job = dg.define_asset_job(
    "evolution_job", selection=dg.AssetSelection.groups(GROUP),
    executor_def=dg.in_process_executor, tags={"trading_brain/kind": "evolution"},
    description="The nightly evolution cycle: benchmarks, analyses, decision, candidates,"
                " paper tests, deployments, promotion reviews.")


def evolution_settings() -> EvolutionSettings:
    """The home's ``[evolution]`` settings, or the defaults when they cannot be read."""
    from trading_brain.errors import TradingBrainError
    from trading_brain.settings import Home, load_settings

    try:
        return load_settings(Home()).evolution
    except (TradingBrainError, OSError):
        return EvolutionSettings()


def cron_of(es: EvolutionSettings) -> str:
    hour, minute = es.schedule_time.split(":")
    return f"{int(minute)} {int(hour)} * * *"


def build_schedule(es: EvolutionSettings) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="evolution_schedule", job=evolution_job, cron_schedule=cron_of(es),
        execution_timezone=es.timezone, default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Nightly at {es.schedule_time} {es.timezone}: evolution_job.")


evolution_schedule = build_schedule(evolution_settings())
