"""Real-data tests skip locally without ../shared/data but fail under CI=true (one helper)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trading_brain_tests.conftest import REPO, SHARED_DATA, require_shared

TESTS = REPO / "trading_brain_tests"


def test_missing_data_skips_locally(tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not found"):
        require_shared(tmp_path / "absent.csv.gz")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        require_shared(tmp_path / "absent.csv.gz")


@pytest.mark.parametrize("value", ["true", "TRUE", " true "])
def test_missing_data_fails_under_ci(tmp_path, monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_shared(tmp_path / "absent.csv.gz", "real candles")


def test_present_data_is_returned(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "true")
    f = tmp_path / "here.csv"
    f.write_text("x\n")
    assert require_shared(f) == f
    assert require_shared(tmp_path) == tmp_path


def test_every_real_data_skip_goes_through_the_helper():
    """No test skips on missing shared data by itself (it would skip silently under CI too)."""
    raw = re.compile(r"pytest\.skip\([^)]*(shared|not found|real (candle|Kraken))", re.S)
    offenders = [str(p.relative_to(REPO)) for p in TESTS.rglob("*.py")
                 if p.name != "conftest.py" or p.parent != TESTS
                 if raw.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_shared_data_is_where_the_tests_look():
    assert SHARED_DATA == Path(__file__).resolve().parents[1].parent / "shared" / "data"
