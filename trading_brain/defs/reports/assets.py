"""The `reports` group: ``daily_report`` and ``weekly_report``, thin assets over
``trading_brain.app.reports`` (issue 13).

Contract:
- config ``date`` (``YYYY-MM-DD``, a UTC day): the day reported (daily) or the last of the 7
  days reported (weekly); empty means the newest day holding trading data. ``report_schedule``
  passes the day before its local date;
- the files go to ``<home>/var/reports/`` (Markdown, self-contained HTML, PNG charts); the
  materialization's metadata carries the report as Markdown with its charts inlined
  (``MetadataValue.md``: it renders in the Dagster UI), the file paths and the headline
  figures;
- a day without trading data is no failure: the asset materializes with ``status`` ``no data``
  and says so in its Markdown; nothing is written or sent;
- ``daily_report`` sends its summary through the notifier (event type ``daily_report``, once per
  report); a notification failure is logged and never fails the asset.
"""


from datetime import date

import dagster as dg

from trading_brain.defs.resources import WAREHOUSE_POOL, TradingBrainResource

GROUP = "reports"


class ReportConfig(dg.Config):
    date: str = ""  # YYYY-MM-DD (UTC day); empty: the newest day with trading data


def _materialize(context: dg.AssetExecutionContext, tb: TradingBrainResource, kind: str,
                 day_text: str) -> dg.MaterializeResult:
    from trading_brain.app.reports.build import describe
    from trading_brain.app.reports.period import day as day_period
    from trading_brain.app.reports.period import parse_date, week
    from trading_brain.app.reports.service import report, send_report
    from trading_brain.errors import DataError

    rt = tb.runtime
    now = rt.clock.now()
    day: date | None = parse_date(day_text, "config date") if day_text else None
    try:
        rep = report(rt.home, rt.store, kind, day, now)
    except DataError as e:
        label = describe(day_period(day) if kind == "daily" else week(day)) if day else "-"
        context.log.info(f"{kind} report: {e}")
        return dg.MaterializeResult(metadata={
            "status": "no data", "period": label, "markdown": dg.MetadataValue.md(f"_{e}._")})
    sent = send_report(rep, rt.home, rt.settings, rt.store, now, context.log) \
        if kind == "daily" else None
    f = rep.figures
    meta: dict[str, dg.RawMetadataValue] = {
        "status": "written", "period": rep.period.label,
        "markdown": dg.MetadataValue.md(rep.inline_markdown),
        "html_path": dg.MetadataValue.path(str(rep.html_path)),
        "markdown_path": dg.MetadataValue.path(str(rep.markdown_path)),
        "final_equity": f.final_equity, "return_pct": f.return_pct,
        "trades_opened": f.trades_opened, "trades_closed": f.trades_closed,
        "fees": round(f.fees, 2), "max_drawdown": round(f.max_drawdown, 6),
    }
    if sent is not None:
        meta["notified"] = sent
    context.log.info(f"{kind} report written: {rep.html_path}")
    return dg.MaterializeResult(metadata=meta)


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"duckdb", "markdown"},
          description="One UTC day of trading as Markdown + HTML with charts (equity and "
                      "drawdown, P&L, fees, exposure, trades, risk, candidates, evolution); "
                      "sent through the notifier.")
def daily_report(context: dg.AssetExecutionContext, config: ReportConfig,
                 tb: TradingBrainResource) -> dg.MaterializeResult:
    return _materialize(context, tb, "daily", config.date)


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"duckdb", "markdown"},
          description="The 7 days ending with the configured day, as Markdown + HTML with "
                      "charts.")
def weekly_report(context: dg.AssetExecutionContext, config: ReportConfig,
                  tb: TradingBrainResource) -> dg.MaterializeResult:
    return _materialize(context, tb, "weekly", config.date)


REPORT_ASSETS = [daily_report, weekly_report]
