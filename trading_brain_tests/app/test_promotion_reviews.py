"""Promotion reviews with the exact engine, the scorecard, `evolution_adds_value`, the CLI
(`candidates`, `evolution scorecard`, `strategies promote|cancel|list`) and the Dagster assets
``paper_tests``, ``deployments``, ``promotion_reviews`` — on a real simulated home."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from trading_brain.app import promotion
from trading_brain.app.promotion_reviews import adds_value, review_costs, review_promotions
from trading_brain.app.research import backtest as bt
from trading_brain.app.runtime import Runtime, build_runtime
from trading_brain.defs.evolution.promotion import PROMOTION_ASSETS
from trading_brain.defs.resources import TradingBrainResource
from trading_brain.domain.candles import BARS_COLUMNS
from trading_brain.engine.backtest.exact import run_exact_portfolio
from trading_brain_tests.app.test_promotion import PROMO_HOME, build_promo_home
from trading_brain_tests.conftest import built_once
from trading_brain_tests.test_cli import assert_one_line_error, tb

PROMOTED_AT = datetime(2026, 10, 2, 0, 0, tzinfo=UTC)
NOW = datetime(2026, 10, 3, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sim_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """test_promotion's simulated home (2 symbols, 2 days, strategies registered), built once."""
    return built_once(tmp_path_factory, PROMO_HOME, build_promo_home)


@pytest.fixture
def home(sim_home: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "home"
    shutil.copytree(sim_home, dst)
    return dst


def pending(rt: Runtime, ref: str = "ema_rsi_volume@1", incumbent: tuple[str, int] = (
        "ema_cross", 1), at: datetime = PROMOTED_AT) -> None:
    sid, ver = ref.split("@")
    rt.store.save_evolution_row("promotion_reviews", {
        "promotion_id": ref, "strategy_id": sid, "version": int(ver),
        "incumbent_strategy_id": incumbent[0], "incumbent_version": incumbent[1],
        "promoted_at": at, "verdict": "pending", "details": {}})


def with_review_days(rt: Runtime, days: int) -> Runtime:
    es = rt.settings.evolution.model_copy(update={"review_days": days})
    return replace(rt, settings=rt.settings.model_copy(update={"evolution": es}))


def exact_return(rt: Runtime, sid: str, ver: int, start: datetime, end: datetime) -> float:
    """An independent replay: in-process strategy, exact engine, signals before start held."""
    from trading_brain.app.research.strategy_files import InProcessStrategy

    row = rt.store.strategy_version(sid, ver)
    assert row is not None
    got = rt.store.read_candles(rt.settings.symbols, "5m",
                                start - timedelta(minutes=5 * row["warmup_bars"]), end)
    bars = {str(s): p.sort("ts").select(BARS_COLUMNS)
            for (s,), p in got.partition_by("symbol", as_dict=True).items()}
    src = InProcessStrategy(row["path"])
    sig = {s: src.generate(b, row["params_default"]) for s, b in bars.items()}
    sig = {s: f.with_columns(pl.when(pl.col("ts") < start).then(pl.lit("hold"))
                             .otherwise(pl.col("action")).alias("action"))
           for s, f in sig.items()}
    c = review_costs(rt)
    res = run_exact_portfolio(bars, sig, c.cash, c.fee, c.slippage, order=sorted(bars))
    return float(res.metrics.total_return)


def test_a_due_review_replays_both_versions_with_the_exact_engine(home: Path) -> None:
    rt = with_review_days(build_runtime(home, now=NOW), 1)
    pending(rt)
    assert review_promotions(with_review_days(rt, 2), NOW) == []  # not due yet
    [row] = review_promotions(rt, NOW)
    assert row["bars_start"] == PROMOTED_AT and row["bars_end"] == NOW
    assert row["bars"] == 288 and row["details"]["engine"] == "exact"
    assert row["details"]["fee"] == review_costs(rt).fee == bt.Costs(
        fee=row["details"]["fee"]).fee
    mine = exact_return(rt, "ema_rsi_volume", 1, PROMOTED_AT, NOW)
    theirs = exact_return(rt, "ema_cross", 1, PROMOTED_AT, NOW)
    assert row["promoted_return"] == pytest.approx(mine, abs=1e-12)
    assert row["incumbent_return"] == pytest.approx(theirs, abs=1e-12)
    assert row["edge"] == pytest.approx(mine - theirs, abs=1e-12)
    assert row["verdict"] == ("won" if mine > theirs else "lost" if mine < theirs else "tie")
    stored = rt.store.evolution_rows("promotion_reviews")[0]
    assert stored["verdict"] == row["verdict"] and stored["reviewed_at"] == NOW
    assert review_promotions(rt, NOW) == []  # graded once


def test_a_version_that_cannot_be_replayed_stays_pending_with_the_error(home: Path) -> None:
    rt = with_review_days(build_runtime(home, now=NOW), 1)
    pending(rt, "ghost@7")
    assert review_promotions(rt, NOW) == []
    row = rt.store.evolution_rows("promotion_reviews")[0]
    assert row["verdict"] == "pending" and "not registered" in row["details"]["error"]


def graded(rt: Runtime, verdicts: list[str]) -> None:
    for i, v in enumerate(verdicts):
        rt.store.save_evolution_row("promotion_reviews", {
            "promotion_id": f"x@{i}", "strategy_id": "x", "version": i,
            "incumbent_strategy_id": "y", "incumbent_version": 1,
            "promoted_at": PROMOTED_AT + timedelta(hours=i), "verdict": v,
            "edge": {"won": 0.01, "lost": -0.02, "tie": 0.0}[v]})


def test_evolution_adds_value_check_over_the_recent_reviews(home: Path) -> None:
    rt = build_runtime(home, now=NOW)
    assert adds_value(rt.store).passed and "no promotion graded" in adds_value(rt.store).description
    graded(rt, ["lost", "lost", "won"])
    check = adds_value(rt.store)
    assert not check.passed and check.metrics["lost"] == 2 and "not adding value" in \
        check.description
    result = dg.materialize(PROMOTION_ASSETS, resources={
        "tb": TradingBrainResource(home=str(home), now=NOW.isoformat())},
        instance=dg.DagsterInstance.ephemeral())
    assert result.success
    [ev] = result.get_asset_check_evaluations()
    assert ev.check_name == "evolution_adds_value" and not ev.passed
    assert ev.severity == dg.AssetCheckSeverity.WARN
    mats = {m.step_materialization_data.materialization.asset_key.to_user_string():
            m.step_materialization_data.materialization.metadata
            for m in result.get_asset_materialization_events()}
    assert set(mats) == {"paper_tests", "deployments", "promotion_reviews"}
    assert "x@2" in str(mats["promotion_reviews"]["scorecard"].value)
    assert mats["deployments"]["active"].value == "ema_cross@1"


def test_cli_candidates_scorecard_promote_cancel_and_list(home: Path) -> None:
    rt = build_runtime(home, now=NOW)
    rt.store.set_version_status("ema_rsi_volume", 1, "candidate", "tier 1: test", NOW)
    rt.store.set_version_status("trend_pullback", 1, "candidate", "tier 2: test", NOW)
    promotion.start_paper_tests(rt, NOW)
    graded(rt, ["won"])
    out = json.loads(tb(home, "candidates", "--json").stdout)
    assert [s["candidate"] for s in out["slots"]] == ["ema_rsi_volume@1", "trend_pullback@1",
                                                      None]
    tests = {c["candidate"]: c["paper_test"] for c in out["candidates"]}
    assert tests["trend_pullback@1"]["tier"] == 2 and tests["trend_pullback@1"]["status"] == \
        "running"
    assert "ema_rsi_volume@1" in tb(home, "candidates").stdout
    card = json.loads(tb(home, "evolution", "scorecard", "--json").stdout)
    assert card["adds_value"]["passed"] and card["promotions"][0]["verdict"] == "won"
    assert "evolution adds value: yes" in tb(home, "evolution", "scorecard").stdout
    refused = tb(home, "strategies", "promote", "ema_rsi_volume@1", check=False)
    assert_one_line_error(refused, "paper test is running")
    assert_one_line_error(tb(home, "strategies", "cancel", "ema_cross@1", check=False),
                          "not a candidate")
    assert "cancelled trend_pullback@1" in tb(home, "strategies", "cancel",
                                              "trend_pullback@1").stdout
    listed = {f"{r['strategy']}@{r['version']}": r["status"]
              for r in json.loads(tb(home, "strategies", "list", "--json").stdout)}
    assert listed == {"ema_cross@1": "active", "ema_rsi_volume@1": "candidate",
                      "trend_pullback@1": "cancelled"}
