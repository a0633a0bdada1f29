"""Reports (trading_brain/app/reports, `trading-brain report`) on a real simulated home.

One home per module: `simulate` over 2 days of the 9 default symbols (sim market, seed 7),
written exactly as live trading writes; the reports are checked against the ledger it left.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import webbrowser
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from trading_brain.adapters.duckdb import Store
from trading_brain.app.reports.build import Report
from trading_brain.app.reports.service import report
from trading_brain.app.simulate.loop import Plan, simulate
from trading_brain.cli import cli
from trading_brain.errors import ConfigError, DataError
from trading_brain.settings import Home

START = "2026-10-01T00:00:00+00:00"
NOW = datetime(2026, 10, 3, 6, 0, tzinfo=UTC)
DAY = date(2026, 10, 2)
SECTIONS = ["Summary", "Equity and drawdown", "P&L per symbol", "Fees against gross profit",
            "Exposure", "Trades", "Risk state", "Candidates", "Evolution"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    h = Home(tmp_path_factory.mktemp("reports") / "home")
    simulate(h, Plan(market="sim", days=2, seed=7, start=START))
    return h


@pytest.fixture(scope="module")
def daily(home: Home) -> Report:
    return report(home, Store.open(home.warehouse), "daily", DAY, NOW)


def _q(home: Home, sql: str, params: list | None = None) -> list:
    return Store.open(home.warehouse).execute(sql, params)


def _cents(x: Decimal) -> str:
    return f"{x.quantize(Decimal('0.01')):,.2f}"


def test_daily_report_files_sections_and_self_contained_html(home: Home, daily: Report
                                                             ) -> None:
    rep = daily
    out = home.var / "reports"
    assert rep.markdown_path == out / "daily-2026-10-02.md"
    assert rep.html_path == out / "daily-2026-10-02.html"
    names = {p.name for p in rep.chart_paths}
    assert names == {f"daily-2026-10-02-{k}.png" for k in
                     ("equity", "pnl", "fees", "exposure", "trades")}
    for p in rep.chart_paths:
        assert p.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    md = rep.markdown_path.read_text()
    assert [h for h in re.findall(r"^## (.+)$", md, re.M)] == SECTIONS
    for name in names:  # the Markdown references the charts beside it
        assert f"]({name})" in md
    page = rep.html_path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == 5 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r"(src|href)=\"?https?:", page) and "<script" not in page
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert "data:image/png;base64," in rep.inline_markdown and ".png)" not in \
        rep.inline_markdown


def test_figures_match_the_ledger(home: Home, daily: Report) -> None:
    rep = daily
    f, md = rep.figures, rep.markdown_path.read_text()
    day0, day1 = datetime(2026, 10, 2, tzinfo=UTC), datetime(2026, 10, 3, tzinfo=UTC)
    last = _q(home, "SELECT equity FROM portfolio_snapshots WHERE slot = 'active' AND ts < ? "
                    "ORDER BY ts DESC LIMIT 1", [day1])[0][0]
    before = _q(home, "SELECT equity FROM portfolio_snapshots WHERE slot = 'active' AND ts < ? "
                      "ORDER BY ts DESC LIMIT 1", [day0])[0][0]
    assert f"| Final equity | {_cents(last)} |" in md
    assert f"| Opening equity | {_cents(before)} |" in md
    fees = _q(home, "SELECT -sum(amount) FROM cash_ledger WHERE cause = 'fee' AND ts >= ? "
                    "AND ts < ?", [day0, day1])[0][0]
    assert f.fees == pytest.approx(float(fees), abs=1e-6)
    opened = _q(home, "SELECT count(*) FROM positions WHERE entry_time >= ? AND entry_time < ?",
                [day0, day1])[0][0]
    closed = _q(home, "SELECT count(*), sum(realized_pnl) FROM positions WHERE exit_time >= ? "
                      "AND exit_time < ?", [day0, day1])[0]
    assert (f.trades_opened, f.trades_closed) == (opened, closed[0]) and opened > 0
    assert f.net_pnl == pytest.approx(float(closed[1]), abs=1e-6)
    # the week ending with the simulation's last day: its final equity is the portfolio's
    week = report(home, Store.open(home.warehouse), "weekly", date(2026, 10, 3), NOW)
    equity = Store.open(home.warehouse).slot_figures("active").snapshot
    assert equity is not None and week.figures.final_equity == float(_cents(equity[0])
                                                                      .replace(",", ""))
    assert week.markdown_path.name == "weekly-2026-10-03.md"
    assert week.figures.opening_equity == 10_000.0  # nothing before: the deposit


def test_the_trade_panels_are_bounded(home: Home, daily: Report) -> None:
    traded = _q(home, "SELECT count(DISTINCT symbol) FROM positions WHERE entry_time >= ? "
                      "OR exit_time >= ?", [datetime(2026, 10, 2, tzinfo=UTC)] * 2)[0][0]
    assert traded > 4
    md = daily.markdown_path.read_text()
    assert f"(the 4 most active of {traded} symbols)" in md


def test_evolution_and_candidates_show_when_they_exist(tmp_path: Path, home: Home) -> None:
    copy = Home(tmp_path / "copy")
    copy.var.mkdir(parents=True)
    copy.warehouse.write_bytes(home.warehouse.read_bytes())
    decision = {"action": "create_candidate", "tier": 1, "reasoning": "fees eat the edge",
                "params": {"fast": 12}}
    store = Store.open(copy.warehouse)
    store.execute("INSERT INTO evolution_cycles (cycle_id, night, home, started_at, status, "
                  "advisor, decision) VALUES ('c1', DATE '2026-10-02', 'h', ?, 'done', "
                  "'offline', ?)", [datetime(2026, 10, 2, 2, tzinfo=UTC), json.dumps(decision)])
    store.execute("CREATE TEMP TABLE v AS SELECT * FROM strategy_versions WHERE strategy_id = "
                  "'ema_cross' AND version = 1; UPDATE v SET version = 2, sha256 = 'x', "
                  "status = 'candidate', reason = 'tweak'; INSERT INTO strategy_versions "
                  "SELECT * FROM v")
    md = report(copy, store, "daily", DAY, NOW).markdown_path.read_text()
    evo = md.split("## Evolution")[1]
    assert "decision: create_candidate (tier 1)" in evo and "fees eat the edge" in evo
    assert "| ema_cross@2 | waiting |" in md.split("## Candidates")[1]


def test_cli_prints_the_paths_and_json(home: Home) -> None:
    res = CliRunner().invoke(cli, ["--home", str(home.root), "report", "--date", "2026-10-02"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[:2] == [str(home.var / "reports" / "daily-2026-10-02.md"),
                         str(home.var / "reports" / "daily-2026-10-02.html")]
    assert all(Path(p).is_file() for p in lines)
    res = CliRunner().invoke(cli, ["--home", str(home.root), "report", "--week", "--json"])
    out = json.loads(res.stdout)
    assert out["kind"] == "weekly" and out["label"] == "2026-10-02"  # newest day with data
    assert {"markdown", "html", "charts", "figures", "start", "end"} <= set(out)
    assert out["figures"]["final_equity"] > 0


def test_open_uses_a_browser_and_skips_silently_without_one(home: Home,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    args = ["--home", str(home.root), "report", "--date", "2026-10-02", "--open"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert opened == [(home.var / "reports" / "daily-2026-10-02.html").as_uri()]

    def no_browser(url: str) -> bool:
        raise webbrowser.Error("could not locate runnable browser")

    monkeypatch.setattr(webbrowser, "open", no_browser)
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0 and res.stderr == ""


def test_a_date_without_data_is_one_line_and_writes_nothing(home: Home) -> None:
    before = sorted((home.var / "reports").iterdir()) if (home.var / "reports").exists() else []
    proc = subprocess.run([sys.executable, "-c", "from trading_brain.cli import main; main()",
                           "--home", str(home.root), "report", "--date", "2026-10-05"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["error: no trading data for 2026-10-05"]
    assert proc.stdout == ""
    after = sorted((home.var / "reports").iterdir()) if (home.var / "reports").exists() else []
    assert after == before
    with pytest.raises(DataError, match="no trading data for the week ending 2026-09-20"):
        report(home, Store.open(home.warehouse), "weekly", date(2026, 9, 20), NOW)


def test_bad_input_and_an_empty_home(tmp_path: Path, home: Home) -> None:
    res = CliRunner().invoke(cli, ["--home", str(home.root), "report", "--date", "10/02/2026"])
    assert isinstance(res.exception, ConfigError)
    assert "--date must be a date YYYY-MM-DD" in str(res.exception)
    empty = Home(tmp_path / "empty")
    with pytest.raises(DataError, match="no trading data in this home yet"):
        report(empty, Store.open(empty.warehouse), "daily", None, NOW)
    assert not (empty.var / "reports").exists()
