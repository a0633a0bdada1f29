"""The single ``dg.Definitions`` of Trading Brain (loaded by `dagster dev`, tests and
`dg check defs`).

Groups live in ``defs/<group>/``; this module only merges them and binds the resources
(``defs.resources``: ``tb``, the home, and ``warehouse``, its DuckDB file).
"""

from __future__ import annotations

import dagster as dg

from trading_brain.defs.alerts import alert_sensor
from trading_brain.defs.evolution import EVOLUTION_ASSETS, evolution_job, evolution_schedule
from trading_brain.defs.market.jobs import MARKET_ASSETS, bootstrap_job, scan_job, scan_schedule
from trading_brain.defs.operations.backup import backup_job, backup_schedule, warehouse_backup
from trading_brain.defs.reports import REPORT_ASSETS, report_job, report_schedule
from trading_brain.defs.research.backtests import backtest_job, backtests
from trading_brain.defs.research.sweep import sweep_job
from trading_brain.defs.research.versions import strategy_versions
from trading_brain.defs.resources import resources
from trading_brain.defs.trading.assets import scan
from trading_brain.defs.trading.checks import (
    portfolio_checks_job,
    portfolio_checks_schedule,
    trading_checks,
)
from trading_brain.defs.trading.executor import executor_sensor, trading_records

defs = dg.Definitions(
    assets=[*MARKET_ASSETS, scan, *trading_records, strategy_versions, backtests,
            warehouse_backup, *EVOLUTION_ASSETS, *REPORT_ASSETS],
    asset_checks=trading_checks,
    jobs=[scan_job, bootstrap_job, backtest_job, portfolio_checks_job, backup_job,
          evolution_job, report_job, sweep_job],
    schedules=[scan_schedule, portfolio_checks_schedule, backup_schedule,
               evolution_schedule, report_schedule],
    sensors=[executor_sensor, alert_sensor],
    resources=resources(),
)
