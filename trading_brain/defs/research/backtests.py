"""`backtests`: one dynamic partition per strategy version; data range, symbols and costs via
config."""

import json

import dagster as dg

from trading_brain.adapters.charts import equity_png, markdown_image, markdown_table
from trading_brain.app.research.version_backtest import run_version_backtest
from trading_brain.defs.research.partitions import strategy_version_partitions
from trading_brain.defs.research.versions import strategy_versions
from trading_brain.defs.resources import WAREHOUSE_POOL, TradingBrainResource
from trading_brain.domain.fees import DEFAULT_TAKER_FEE


class BacktestConfig(dg.Config):
    """Which data and costs the partition's version is backtested on (empty = defaults)."""

    start: str = ""  # ISO-8601 date/time (UTC); empty = the oldest stored candle
    end: str = ""  # exclusive; empty = the newest stored candle
    symbols: list[str] = []  # empty = the home's symbols
    timeframe: str = "5m"
    engine: str = "fast"
    params_json: str = ""  # JSON object overriding the version's default params
    cash: float = 10_000.0
    fee: float = DEFAULT_TAKER_FEE
    slippage: float = 0.0005


@dg.asset(group_name="research", pool=WAREHOUSE_POOL, partitions_def=strategy_version_partitions,
          deps=[strategy_versions,  # a version's backtest reads candles from every day
                dg.AssetDep("candles_5m", partition_mapping=dg.AllPartitionMapping())],
          kinds={"duckdb", "vectorbt"},
          check_specs=[
              dg.AssetCheckSpec("backtest_no_lookahead", asset="backtests", blocking=True,
                                description="generate gives the same decisions on truncated "
                                            "histories of the backtest data"),
              dg.AssetCheckSpec("backtest_sandbox_validated", asset="backtests", blocking=True,
                                description="the version passed registration gates and ran in "
                                            "a worker with seccomp and Landlock"),
          ])
def backtests(context: dg.AssetExecutionContext, config: BacktestConfig,
              tb: TradingBrainResource) -> dg.MaterializeResult:
    """Backtest of one strategy version over warehouse candles: metrics, equity curve, trades."""
    rt = tb.runtime
    out = run_version_backtest(rt, context.partition_key, config.model_dump())
    png = equity_png(out["equity"], context.partition_key)
    chart = rt.home.var / "reports" / "backtests" / f"{context.partition_key}.png"
    chart.parent.mkdir(parents=True, exist_ok=True)
    chart.write_bytes(png)
    trades = out["json"]["trades"]
    cols = ["symbol", "entry_time", "exit_time", "entry_price", "exit_price", "pnl", "exit_reason"]
    meta = {**{k: v for k, v in out["json"]["metrics"].items() if v is not None},
            "backtest_id": out["backtest_id"], "engine": config.engine,
            "params": json.dumps(out["json"]["params"]), "symbols": ", ".join(out["symbols"]),
            "equity_curve": dg.MetadataValue.md(markdown_image(png, "equity curve")),
            "equity_png": dg.MetadataValue.path(str(chart)),
            "trades": dg.MetadataValue.md(markdown_table(trades, cols))}
    look, valid = out["lookahead"], out["validation"]
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(check_name="backtest_no_lookahead", passed=look["passed"],
                            severity=dg.AssetCheckSeverity.ERROR, description=look["summary"],
                            metadata={"points": look["points"], "first_bar": look["first_bar"]}),
        dg.AssetCheckResult(check_name="backtest_sandbox_validated", passed=valid["passed"],
                            severity=dg.AssetCheckSeverity.ERROR, description=valid["summary"]),
    ])


backtest_job = dg.define_asset_job("backtest_job", selection=[backtests],
                                   description="Backtest strategy versions (one run per version).")
