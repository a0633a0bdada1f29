"""Build one report: read the period, compute its figures, draw its charts, write its files.

Contract of ``write_report(store, period, out_dir, now=…, slot="active") -> Report``:
- reads through ``adapters.duckdb.report_reads`` (short connections; nothing is written to the
  warehouse);
- a period without any portfolio snapshot of the slot raises ``DataError("no trading data for
  <period>")`` and writes nothing;
- writes into ``out_dir`` (created): ``<name>.md`` (charts referenced by file name),
  ``<name>.html`` (self-contained: charts embedded base64) and the charts as
  ``<name>-<chart>.png`` beside them; an existing report of the same name is replaced;
- sections, in order: Summary, Equity and drawdown, P&L per symbol, Fees against gross profit,
  Exposure, Trades, Risk state, Candidates, Evolution (a section without data says so);
- ``Report.inline_markdown`` is the same Markdown with the charts inlined as data URIs (what a
  Dagster ``MetadataValue.md`` renders), ``Report.summary`` a few lines for a notification,
  ``Report.as_dict()`` the paths and figures for ``--json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from trading_brain.adapters.duckdb import report_reads as reads
from trading_brain.app.reports import charts
from trading_brain.app.reports.figures import Figures, figures
from trading_brain.app.reports.period import Period
from trading_brain.app.reports.render import Chart, Heading, Para, html, markdown
from trading_brain.app.reports.sections import (
    candidates_section,
    evolution_section,
    risk_section,
    summary_table,
    symbol_table,
    trades_table,
)
from trading_brain.errors import DataError

if TYPE_CHECKING:
    from trading_brain.adapters.duckdb.store import Store
    from trading_brain.app.reports.render import Block


@dataclass(frozen=True)
class Report:
    period: Period
    markdown_path: Path
    html_path: Path
    chart_paths: tuple[Path, ...]
    markdown: str
    inline_markdown: str
    figures: Figures

    @property
    def summary(self) -> str:
        f = self.figures
        ret = f"{f.return_pct:+.2f} %" if f.return_pct is not None else "n/a"
        equity = f"{f.final_equity:,.2f}" if f.final_equity is not None else "n/a"
        return (f"{self.period.title}: equity {equity} ({ret}), {f.trades_opened} trades "
                f"opened, {f.trades_closed} closed, fees {f.fees:,.2f}, max drawdown "
                f"{f.max_drawdown:.2%}.\n{self.html_path}")

    def as_dict(self) -> dict[str, Any]:
        figs = asdict(self.figures)
        figs["by_symbol"] = [asdict(s) for s in self.figures.by_symbol]
        return {"kind": self.period.kind, "label": self.period.label,
                "start": self.period.start, "end": self.period.end,
                "markdown": str(self.markdown_path), "html": str(self.html_path),
                "charts": [str(p) for p in self.chart_paths], "figures": figs}


def write_report(store: Store, period: Period, out_dir: Path, *, now: datetime,
                 slot: str = "active") -> Report:
    """Build the report of ``period`` and write its files (see the module contract)."""
    rows = reads.read_period(store, slot, period.start, period.end)
    if rows.snapshots.height == 0:
        raise DataError(f"no trading data for {describe(period)}")
    figs = figures(rows, period.start)
    traded = _traded(rows.trades, period)
    pngs = {
        "equity": charts.equity_chart(rows.snapshots, figs.opening_equity, period.start,
                                      period.end),
        "pnl": charts.pnl_chart(figs.by_symbol),
        "fees": charts.fees_chart(figs.by_symbol),
        "exposure": charts.exposure_chart(rows.snapshots, period.start, period.end),
    }
    if traded:
        prices = reads.candles(store, traded[:charts.MAX_TRADE_PANELS], period.start, period.end)
        pngs["trades"] = charts.trades_chart(prices, rows.trades, traded, period.start,
                                             period.end)
    named = {k: (f"{period.name}-{k}.png", v) for k, v in pngs.items()}
    blocks = _blocks(period, rows, figs, traded, now, slot)
    md = markdown(blocks, named)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for file, png in named.values():
        (out_dir / file).write_bytes(png)
        paths.append(out_dir / file)
    md_path, html_path = out_dir / f"{period.name}.md", out_dir / f"{period.name}.html"
    md_path.write_text(md, encoding="utf-8")
    html_path.write_text(html(period.title, blocks, named), encoding="utf-8")
    return Report(period, md_path, html_path, tuple(paths), md,
                  markdown(blocks, named, inline=True), figs)


def describe(period: Period) -> str:
    last = period.label.split("_")[-1]
    if period.kind == "daily":
        return period.label
    if period.kind == "weekly":
        return f"the week ending {last}"
    return f"{period.start:%Y-%m-%d %H:%M} to {period.end:%Y-%m-%d %H:%M} UTC"


def _traded(trades: pl.DataFrame, period: Period) -> list[str]:
    """Symbols with an entry or an exit in the period, most active first."""
    inside = trades.filter(
        ((pl.col("entry_time") >= period.start) & (pl.col("entry_time") < period.end))
        | (pl.col("exit_time").is_not_null() & (pl.col("exit_time") >= period.start)
           & (pl.col("exit_time") < period.end)))
    if not inside.height:
        return []
    counts = inside.group_by("symbol").len().sort(["len", "symbol"], descending=[True, False])
    return counts["symbol"].to_list()


def _blocks(period: Period, rows: reads.PeriodRows, figs: Figures, traded: list[str],
            now: datetime, slot: str) -> list[Block]:
    shown = traded[:charts.MAX_TRADE_PANELS]
    more = f" (the {len(shown)} most active of {len(traded)} symbols)" if len(traded) > len(
        shown) else ""
    return [
        Heading(period.title, 1),
        Para(f"Slot {slot}, {period.start:%Y-%m-%d %H:%M} to {period.end:%Y-%m-%d %H:%M} UTC;"
             f" generated {now:%Y-%m-%d %H:%M} UTC."),
        Heading("Summary"), summary_table(figs),
        Heading("Equity and drawdown"), Chart("equity", "Equity and drawdown"),
        Heading("P&L per symbol"), symbol_table(figs), Chart("pnl", "P&L per symbol"),
        Heading("Fees against gross profit"), Para(_fees_line(figs)),
        Chart("fees", "Fees against gross profit"),
        Heading("Exposure"),
        Para(f"Mean {figs.exposure_mean:.1%}, highest {figs.exposure_max:.1%} of equity."),
        Chart("exposure", "Exposure"),
        Heading("Trades"),
        *([Para(f"Entries and exits on the 5-minute closes{more}."),
           Chart("trades", "Trades on price"), *trades_table(rows.trades, period)]
          if traded else [Para("No trade in this period.")]),
        Heading("Risk state"), *risk_section(rows.risk_state, rows.risk_events),
        Heading("Candidates"), *candidates_section(rows.candidates),
        Heading("Evolution"), *evolution_section(rows.cycle),
    ]


def _fees_line(f: Figures) -> str:
    if f.gross_pnl > 0:
        return (f"Fees {f.fees:,.2f} against a gross profit of {f.gross_pnl:,.2f} "
                f"({f.fees / f.gross_pnl:.0%} of it).")
    return (f"Fees {f.fees:,.2f}; the closed trades made no gross profit "
            f"({f.gross_pnl:,.2f} before fees).")
