"""The `reports` group (trading_brain/defs/reports) materialised with ``dg.materialize`` on a
simulated home (2 days, 3 symbols), and ``report_schedule`` evaluated with a schedule context.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.defs.reports import REPORT_ASSETS, daily_report, report_schedule
from trading_brain.defs.reports.jobs import build_schedule, cron_of
from trading_brain.defs.resources import TradingBrainResource
from trading_brain.settings import Home, ReportSettings
from trading_brain_tests.conftest import two_day_sim

NOW = "2026-10-03T07:00:00+00:00"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return two_day_sim(tmp_path_factory, tmp_path_factory.mktemp("report_defs") / "home",
                       ("BTC/USD", "ETH/USD", "SOL/USD"))


def _run(home: Path, day: str, assets: list | None = None) -> dg.ExecuteInProcessResult:
    ops = {a.key.to_python_identifier(): {"config": {"date": day}}
           for a in (assets or REPORT_ASSETS)}
    return dg.materialize(assets or REPORT_ASSETS,
                          resources={"tb": TradingBrainResource(home=str(home), now=NOW)},
                          run_config={"ops": ops}, instance=dg.DagsterInstance.ephemeral())


def _meta(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    mats = [ev.step_materialization_data.materialization
            for ev in result.get_asset_materialization_events()]
    return {m.asset_key.to_user_string(): m.metadata for m in mats}


def test_both_reports_materialise_with_markdown_metadata_and_notify(home: Path) -> None:
    result = _run(home, "2026-10-02")
    assert result.success
    meta = _meta(result)
    assert set(meta) == {"daily_report", "weekly_report"}
    for name, m in meta.items():
        md = m["markdown"]
        assert isinstance(md, dg.MarkdownMetadataValue)
        assert "## Equity and drawdown" in md.value and "## Evolution" in md.value
        assert "![Equity and drawdown](data:image/png;base64," in md.value
        html = Path(str(m["html_path"].value))
        assert html.is_file() and html.parent == Home(home).var / "reports"
        assert Path(str(m["markdown_path"].value)).is_file()
        assert m["status"].value == "written", name
    assert meta["daily_report"]["period"].value == "2026-10-02"
    assert meta["daily_report"]["notified"].value is True
    store = Store.open(Home(home).warehouse)
    rows = store.execute("SELECT kind, subject, text FROM notifications "
                         "WHERE kind = 'daily_report'")
    assert len(rows) == 1 and rows[0][1] == "daily-2026-10-02"
    assert rows[0][2].startswith("Daily report 2026-10-02: equity ")
    assert _run(home, "2026-10-02", [daily_report]).success  # again: not notified twice
    assert store.execute("SELECT count(*) FROM notifications WHERE kind = 'daily_report'"
                         )[0][0] == 1


def test_a_failing_notifier_never_fails_the_asset(home: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import trading_brain.app.notify as notify

    def broken(*_a: object, **_k: object) -> list:
        raise ConnectionError("channel down")

    monkeypatch.setattr(notify, "build_channels", broken)
    result = _run(home, "2026-10-01", [daily_report])
    assert result.success
    assert _meta(result)["daily_report"]["notified"].value is False


def test_a_day_without_data_materialises_as_no_data(home: Path) -> None:
    result = _run(home, "2026-09-20", [daily_report])
    assert result.success
    m = _meta(result)["daily_report"]
    assert m["status"].value == "no data"
    assert "no trading data for 2026-09-20" in str(m["markdown"].value)
    assert not (Home(home).var / "reports" / "daily-2026-09-20.md").exists()


def test_the_schedule_asks_for_yesterday_and_the_week_on_mondays(home: Path) -> None:
    monday = datetime(2026, 10, 5, 7, 0, tzinfo=UTC)
    with dg.build_schedule_context(scheduled_execution_time=monday) as ctx:
        req = report_schedule.evaluate_tick(ctx).run_requests
    assert req is not None and len(req) == 1
    assert req[0].run_config == {"ops": {"daily_report": {"config": {"date": "2026-10-04"}},
                                         "weekly_report": {"config": {"date": "2026-10-04"}}}}
    assert set(req[0].asset_selection or []) == {dg.AssetKey("daily_report"),
                                                 dg.AssetKey("weekly_report")}
    saturday = datetime(2026, 10, 3, 7, 0, tzinfo=UTC)
    with dg.build_schedule_context(scheduled_execution_time=saturday) as ctx:
        req = report_schedule.evaluate_tick(ctx).run_requests
    assert req is not None and list(req[0].asset_selection or []) == [dg.AssetKey(
        "daily_report")]
    # the request's config is valid for the assets: it materialises yesterday's report
    result = dg.materialize([daily_report], run_config=req[0].run_config,
                            resources={"tb": TradingBrainResource(home=str(home), now=NOW)},
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success and _meta(result)["daily_report"]["period"].value == "2026-10-02"


def test_the_schedule_follows_the_settings() -> None:
    rs = ReportSettings(schedule_time="08:30", timezone="Europe/Paris")
    assert cron_of(rs) == "30 8 * * *"
    sched = build_schedule(rs)
    assert sched.execution_timezone == "Europe/Paris"
    assert sched.default_status == dg.DefaultScheduleStatus.RUNNING
    assert report_schedule.job_name == "report_job"
