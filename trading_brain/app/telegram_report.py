"""``/report`` and the charts of the Telegram bot, drawn with the report's chart functions
(``app.reports.charts``).

Contract:
- ``report(ctx, args)``: ``args`` is ``[YYYY-MM-DD] [week]`` in any order (``day``/``daily``,
  ``week``/``weekly``); without a date, the newest day holding data
  (``reports.service.latest_day``). It answers at once with the headline figures of the
  active slot's period (read and computed, nothing drawn); a period without data answers one
  line ``No trading data for …`` and nothing else; a word it does not know raises
  ``ConfigError`` (one ``error: …`` line). The report itself (Markdown, HTML and PNG charts in
  ``ctx.reports_dir``, ``build.write_report``) is written by a background job
  (``ctx.background``) whose replies are the charts as photos, the first captioned with the
  HTML file's path. Report jobs run one at a time (``_WRITING``): two asking at once must not
  read a chart file the other is rewriting.
- ``equity_photo(ctx, snaps)`` / ``pnl_photo(ctx, closed)`` queue one photo (equity and
  drawdown; net P&L per symbol of closed positions) as a background job.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta

import polars as pl

from trading_brain.adapters.duckdb import report_reads as reads
from trading_brain.app.reports import period as periods
from trading_brain.app.reports.build import describe, write_report
from trading_brain.app.reports.figures import Figures, SymbolFigures, figures
from trading_brain.app.reports.service import latest_day
from trading_brain.app.telegram_commands import BotContext, Reply, money
from trading_brain.domain.records import PositionRecord, Snapshot
from trading_brain.errors import ConfigError

SLOT = "active"
USAGE = "/report [YYYY-MM-DD] [week]"
CAPTIONS = {"equity": "Equity and drawdown", "pnl": "P&L per symbol",
            "fees": "Fees against gross profit", "exposure": "Exposure",
            "trades": "Trades on price"}
EQUITY_DAYS = 30  # /pnl's chart: the last 30 days of snapshots
_WRITING = threading.Lock()


def parse(args: Sequence[str]) -> tuple[str, str | None]:
    """(kind, ``YYYY-MM-DD`` or None) of ``/report``'s arguments."""
    kind, day = "daily", None
    for a in args:
        low = a.lower()
        if low in ("week", "weekly"):
            kind = "weekly"
        elif low in ("day", "daily"):
            kind = "daily"
        elif day is None:
            day = a
        else:
            raise ConfigError(f"{USAGE}: one date at most, got {a!r}")
    return kind, day


def report(ctx: BotContext, args: list[str]) -> list[Reply]:
    kind, text = parse(args)
    try:
        day = periods.parse_date(text) if text is not None else latest_day(ctx.store, SLOT)
    except ConfigError:
        raise ConfigError(f"{USAGE}: not a date YYYY-MM-DD: {text!r}") from None
    if day is None:
        return [Reply("No trading data in this home yet.")]
    period = periods.day(day) if kind == "daily" else periods.week(day)
    rows = reads.read_period(ctx.store, SLOT, period.start, period.end)
    if rows.snapshots.height == 0:
        return [Reply(f"No trading data for {describe(period)}.")]
    out_dir = ctx.reports_dir

    def charts() -> list[Reply]:
        if out_dir is None:
            return []
        photos: list[Reply] = []
        with _WRITING:
            rep = write_report(ctx.store, period, out_dir, now=ctx.clock.now(), slot=SLOT)
            for path in rep.chart_paths:
                key = path.stem.removeprefix(f"{period.name}-")
                caption = CAPTIONS.get(key, key)
                if not photos:
                    caption += f"\nfull report: {rep.html_path}"
                photos.append(Reply(caption, photo=path.read_bytes()))
        return photos

    ctx.background(charts)
    return [Reply(headline(period.title, figures(rows, period.start)))]


def headline(title: str, f: Figures) -> str:
    """The report's figures as a few lines of text (then one line per symbol)."""
    ret = f"{f.return_pct:+.2f}%" if f.return_pct is not None else "n/a"
    won = f", {f.wins} won ({f.win_rate:.0%})" if f.win_rate is not None else ""
    lines = [f"{title} (slot {SLOT})",
             f"equity {money(f.final_equity)} ({ret}; opening {money(f.opening_equity)})",
             f"trades: {f.trades_opened} opened, {f.trades_closed} closed{won}",
             f"closed trades: net {money(f.net_pnl)}, gross {money(f.gross_pnl)}, "
             f"fees {money(f.fees)}",
             f"max drawdown {f.max_drawdown:.2%}; exposure mean {f.exposure_mean:.1%}, "
             f"max {f.exposure_max:.1%}"]
    if f.by_symbol:
        lines.append("per symbol (closed, net P&L, fees):")
        lines += [f"  {s.symbol}: {s.closed}, {money(s.net_pnl)}, {money(s.fees)}"
                  for s in f.by_symbol]
    return "\n".join(lines)


def equity_photo(ctx: BotContext, snaps: Sequence[Snapshot]) -> None:
    """Queue the equity-and-drawdown chart of the last ``EQUITY_DAYS`` of ``snaps``."""
    from trading_brain.app.reports import charts

    end = snaps[-1].ts
    recent = [s for s in snaps if s.ts >= end - timedelta(days=EQUITY_DAYS)]
    frame = pl.DataFrame({"ts": [s.ts for s in recent],
                          "equity": [float(s.equity) for s in recent],
                          "drawdown": [float(s.drawdown) for s in recent]})
    start = recent[0].ts
    stop = end if end > start else end + timedelta(hours=1)
    ctx.background(lambda: [Reply(f"equity (slot {SLOT})", photo=charts.equity_chart(
        frame, float(recent[0].equity), start, stop))])


def pnl_photo(ctx: BotContext, closed: Sequence[PositionRecord]) -> None:
    """Queue the net P&L per symbol of ``closed`` positions (after fees) as a bar chart."""
    from trading_brain.app.reports import charts

    per: dict[str, list[float]] = {}  # symbol -> [closed, gross, fees, net]
    for p in closed:
        fees, net = float(p.entry_fee + p.exit_fee), float(p.realized_pnl or 0)
        v = per.setdefault(p.symbol, [0, 0.0, 0.0, 0.0])
        v[0] += 1
        v[1] += net + fees
        v[2] += fees
        v[3] += net
    rows = sorted((SymbolFigures(s, int(v[0]), v[1], v[2], v[3]) for s, v in per.items()),
                  key=lambda s: (-s.closed, -abs(s.net_pnl), s.symbol))
    ctx.background(lambda: [Reply("net P&L per symbol (closed trades, after fees)",
                                  photo=charts.pnl_chart(rows))])
